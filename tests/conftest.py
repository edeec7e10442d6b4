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
