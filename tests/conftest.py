"""Shared fixtures. The real-parts fixtures live in tests/support/ (one module per system)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = [
    "tests.support.transmission",
    "tests.support.media",
    "tests.support.gitrepo",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
REFERENCE_FLEET = REPO_ROOT / "fleet-state"


def _run_slow() -> bool:
    return bool(os.environ.get("CI") or os.environ.get("TVA_SLOW"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave the ``slow`` lab tests out of a local run; CI (``CI`` set) and ``TVA_SLOW=1`` run them.

    The whole suite stays within ten minutes on two cores on a developer's machine, and CI, which
    has the time, still proves the slowest stories end to end.
    """
    if _run_slow():
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]


def pytest_report_header(config: pytest.Config) -> str:
    if _run_slow():
        return "slow lab tests: included (CI or TVA_SLOW set)"
    return "slow lab tests: left out (CI runs them; set TVA_SLOW=1 to include them)"


@pytest.fixture
def reference_fleet(tmp_path: Path) -> Path:
    """A writable copy of the reference fleet repo in fleet-state/."""
    dst = tmp_path / "fleet"
    shutil.copytree(REFERENCE_FLEET, dst)
    return dst


@pytest.fixture(autouse=True)
def _no_user_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep tests independent of the developer's environment."""
    for name in list(os.environ):
        if name.startswith("TVA_"):
            monkeypatch.delenv(name)


@pytest.fixture
def short_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory short enough for a unix socket path (removed afterwards when made in /tmp)."""
    from tests.support.media import socket_dir

    where, remove = socket_dir(tmp_path)
    yield where
    if remove:
        shutil.rmtree(where, ignore_errors=True)
