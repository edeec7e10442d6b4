"""Every module of the product says what it exports (``__all__``), and every exported name
exists (as httpx guards its public surface)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT


def _modules() -> list[str]:
    names = []
    for pkg in ("controller", "schemas"):
        for path in sorted((REPO_ROOT / pkg).rglob("*.py")):
            tree = ast.parse(path.read_text())
            code = [n for n in tree.body if not (isinstance(n, ast.Expr)
                                                 and isinstance(n.value, ast.Constant))]
            if path.name == "__init__.py" and not code:
                continue  # a package with only a docstring exports nothing
            names.append(".".join(path.relative_to(REPO_ROOT).with_suffix("").parts)
                         .removesuffix(".__init__"))
    return names


@pytest.mark.parametrize("name", _modules())
def test_module_declares_and_defines_its_exports(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    missing = [n for n in exported if not hasattr(module, n)]
    assert missing == [], f"{name}.__all__ names what it does not define: {missing}"
    assert len(set(exported)) == len(exported), f"{name}.__all__ repeats a name"


def test_the_walk_finds_the_modules() -> None:
    found = _modules()
    assert "controller.clients.transmission" in found and "schemas.desired" in found
    assert not any(Path(n).name == "__main__" for n in found)
