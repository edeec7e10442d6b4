"""``tva schema [--check] [--out DIR]``: write (or check) the generated JSON Schemas and reference.

Without ``--out`` the targets are tva's own ``schemas/json/*.schema.json`` and
``docs/reference.md`` (when tva runs from a source tree that has ``docs/``). With ``--out DIR``
only the JSON Schema files are written, into DIR: that is how a fleet repo refreshes its
``.tva/schemas/`` copies after tva is upgraded.

``--check`` writes nothing and exits 1 naming every stale, missing or obsolete file, so CI
catches a model change that was not regenerated. Files are written atomically (temp file and
``os.replace``) and only when their content changes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import schemas
from controller.atomic import write_atomic
from controller.cli.output import err, esc, out
from controller.errors import PermanentError
from controller.generate.json_schema import render_all
from controller.generate.reference import render_reference

__all__ = [
    "SCHEMA_GLOB",
    "Difference",
    "Targets",
    "default_targets",
    "differences",
    "expected",
    "run",
]

SCHEMA_GLOB = "*.schema.json"


@dataclass(frozen=True)
class Targets:
    """Where the generated files go."""

    schema_dir: Path
    reference: Path | None


def default_targets() -> Targets:
    """tva's own tree: ``schemas/json/`` and, in a source checkout, ``docs/reference.md``."""
    package = Path(schemas.__file__).resolve().parent
    docs = package.parent / "docs"
    return Targets(package / "json", docs / "reference.md" if docs.is_dir() else None)


def expected(targets: Targets) -> dict[Path, str]:
    """Every generated file's path and text."""
    files = {targets.schema_dir / name: text for name, text in render_all().items()}
    if targets.reference is not None:
        files[targets.reference] = render_reference()
    return files


@dataclass(frozen=True)
class Difference:
    path: Path
    why: str  # "stale", "missing" or "obsolete"


def differences(targets: Targets) -> list[Difference]:
    """Generated files whose committed content differs from what the models produce."""
    want = expected(targets)
    found: list[Difference] = []
    for path, text in sorted(want.items()):
        try:
            have = path.read_bytes()
        except FileNotFoundError:
            found.append(Difference(path, "missing"))
            continue
        except OSError as e:
            raise PermanentError(f"cannot read {path}: {e.strerror}") from e
        if have != text.encode("utf-8"):
            found.append(Difference(path, "stale"))
    found += [Difference(p, "obsolete") for p in _obsolete(targets.schema_dir, want)]
    return found


def _obsolete(schema_dir: Path, want: dict[Path, str]) -> list[Path]:
    """Schema files in the directory that no model produces any more."""
    if not schema_dir.is_dir():
        return []
    return sorted(p for p in schema_dir.glob(SCHEMA_GLOB) if p not in want)


def run(check: bool, out_dir: str | None) -> int:
    targets = Targets(Path(out_dir), None) if out_dir is not None else default_targets()
    if check:
        return _check(targets)
    return _write(targets)


def _check(targets: Targets) -> int:
    diffs = differences(targets)
    if not diffs:
        out.print(f"[green]up to date[/green] ({len(expected(targets))} generated files)",
                  markup=True)
        return 0
    for d in diffs:
        err.print(f"{_shown(d.path)}: {d.why}", markup=False)
    fix = "tva schema" if targets.reference is not None else f"tva schema --out {_shown(targets.schema_dir)}"
    err.print(f"[red]{len(diffs)} generated file(s) out of date[/red]; run `{esc(fix)}` to "
              "regenerate", markup=True)
    return 1


def _write(targets: Targets) -> int:
    written: list[Path] = []
    want = expected(targets)
    for path, text in sorted(want.items()):
        data = text.encode("utf-8")
        try:
            if path.is_file() and path.read_bytes() == data:
                continue
            write_atomic(path, data)
        except OSError as e:
            raise PermanentError(f"cannot write {path}: {e.strerror or e}") from e
        written.append(path)
    removed = _obsolete(targets.schema_dir, want)
    for path in removed:
        try:
            path.unlink()
        except OSError as e:
            raise PermanentError(f"cannot remove {path}: {e.strerror or e}") from e
    for path in written:
        out.print(f"wrote {_shown(path)}", markup=False)
    for path in removed:
        out.print(f"removed {_shown(path)} (no model produces it any more)", markup=False)
    unchanged = len(want) - len(written)
    out.print(f"{len(written)} written, {unchanged} unchanged, {len(removed)} removed")
    return 0


def _shown(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)
