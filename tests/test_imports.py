"""Third-party client libraries are imported only by their one client module, in every module of
the product, including modules added after the import-linter contracts were written (those list
the packages that exist; this walks the files)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

CONFINED = {
    "transmission_rpc": ("controller/clients/transmission.py", "controller/lab/"),
    "git": ("controller/clients/git.py",),
    "gitdb": ("controller/clients/git.py",),
    "mpv": ("controller/player/host.py",),
    "httpx": ("controller/clients/peers.py", "controller/clients/torznab.py",
              "controller/clients/forge.py"),
    "defusedxml": ("controller/clients/torznab.py",),
    "apprise": ("controller/clients/notify.py",),
}


def _modules() -> list[Path]:
    return sorted(p for pkg in ("controller", "schemas") for p in (REPO_ROOT / pkg).rglob("*.py"))


def _imported(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("library", sorted(CONFINED))
def test_library_is_imported_only_by_its_client(library: str) -> None:
    allowed = CONFINED[library]
    offenders = [
        str(path.relative_to(REPO_ROOT)) for path in _modules()
        if library in _imported(path)
        and not str(path.relative_to(REPO_ROOT)).startswith(allowed)
    ]
    assert offenders == [], f"{library} imported outside {allowed}: {offenders}"


def test_the_check_sees_an_offender(tmp_path: Path) -> None:
    """The walk finds an import wherever it is written (in a function, as a from-import)."""
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from git import Repo\n    import transmission_rpc.error\n")
    assert {"git", "transmission_rpc"} <= _imported(module)
