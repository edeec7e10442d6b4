"""Load a fleet repo directory into one validated ``DesiredState``.

Layout (documented in docs/fleet-repo.md): every ``*.yaml``/``*.yml`` file outside dot-folders
is one or more resources, each naming its ``apiVersion`` and ``kind``. The conventional places
are ``fleet.yaml``, ``duties.yaml``, ``devices/``, ``custody/``, ``items/``, ``watchlists/``,
``vpn/``, ``sources/`` and ``torrents/`` (committed metainfo), but the kind decides, not the
folder, so a repo can be organised as its owner likes.

Every problem in every file is collected and reported at once, each with file, line and field.
The cross-file checks run even when some files failed: a resource that failed validation
still counts as *defined* (its ``kind`` and ``name`` are usually readable in the raw data, or,
for a file that is not even YAML, in its top-level ``kind:``/``name:`` lines), so one broken
device file is reported once, not again as "unknown device" in every file that names it.
"""

from __future__ import annotations

import difflib
import os
import re
import stat
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from controller.desired.checks import Origin, Resources, check_and_resolve, warnings
from controller.desired.yamlsafe import (
    MAX_FILE_BYTES,
    Document,
    YamlProblem,
    guess_identities,
    parse_documents,
    read_text,
)
from controller.errors import Problem, ValidationFailed
from schemas.desired import KINDS, SUPPORTED_API_VERSIONS, DesiredState, Model

__all__ = [
    "INTERNAL",
    "MAX_FILES",
    "YAML_SUFFIXES",
    "LoadResult",
    "Reader",
    "discover",
    "load_files",
    "load_fleet",
]

INTERNAL = "internal error while validating"
"""Prefix of a problem that means a bug in a validator, not in the fleet repo."""

MAX_FILES = 20_000
YAML_SUFFIXES = (".yaml", ".yml")


@dataclass
class LoadResult:
    desired: DesiredState
    files: list[str] = field(default_factory=list)
    """The files read, relative to the repo root, sorted."""
    warnings: list[Problem] = field(default_factory=list)
    """Valid, but will not work as expected (``checks.warnings``); shown, never refused."""


def discover(root: str) -> list[str]:
    """Every YAML file of the repo, relative to ``root``, sorted; dot-folders are skipped."""
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.startswith(".") or not name.endswith(YAML_SUFFIXES):
                continue
            found.append(os.path.relpath(os.path.join(dirpath, name), root))
            if len(found) > MAX_FILES:
                raise ValidationFailed(
                    [Problem(root, 0, "", f"more than {MAX_FILES} YAML files", "is this a fleet repo?")]
                )
    return sorted(found)


def load_fleet(root: str, *, revision: str | None = None) -> LoadResult:
    """Load and validate the fleet repo checked out at ``root``.

    Raises ``ValidationFailed`` with every problem found.
    """
    if not os.path.isdir(root):
        raise ValidationFailed([Problem(root, 0, "", "not a directory", "give the fleet repo's path")])
    return load_files(root, discover(root), _FsReader(root), revision=revision)


class Reader(Protocol):
    """Reads a repo file by relative path, at most ``limit + 1`` bytes (to detect oversize)."""

    def __call__(self, rel: str, limit: int) -> bytes: ...


class _FsReader:
    """Reads regular files inside the repo only: a symlink out of the checkout (to
    ``/etc/shadow``) or a FIFO (which would block forever) is refused, not followed."""

    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)

    def __call__(self, rel: str, limit: int) -> bytes:
        path = os.path.join(self.root, rel)
        real = os.path.realpath(path)
        if os.path.commonpath([real, self.root]) != self.root:
            raise OSError(0, "it is a link that points outside the repo")
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise OSError(0, "not a regular file")
            # read(n) allocates n bytes up front: ask for what is there, capped at limit + 1.
            return f.read(min(st.st_size, limit) + 1)


def load_files(
    root: str, files: list[str], reader: Reader, *, revision: str | None = None
) -> LoadResult:
    """Load the given repo files through ``reader`` (the filesystem, or a git tree).

    ``root`` only names the files in messages.
    """
    problems: list[Problem] = []
    resources = Resources()
    for rel in files:
        shown = _shown(root, rel)
        try:
            data = reader(rel, MAX_FILE_BYTES)
        except OSError as e:
            problems.append(Problem(shown, 0, "", f"cannot read: {e.strerror or e}"))
            continue
        try:
            docs = parse_documents(read_text(shown, data))
        except YamlProblem as e:
            problems.append(Problem(shown, e.line, "", e.message, e.hint))
            if b"\x00" not in data:  # text, though not valid YAML: what does it define?
                for kind, name in guess_identities(data.decode("utf-8", "replace")):
                    resources.add_broken(_known_kind(kind), name)
            continue
        for doc in docs:
            model = _validate(doc, shown, problems, resources)
            if model is not None:
                resources.add(model, Origin(shown, doc))
    desired = check_and_resolve(resources, problems, root=root, reader=reader, revision=revision)
    if desired is not None and not problems:
        return LoadResult(desired=desired, files=files, warnings=warnings(resources))
    raise ValidationFailed(problems)


def _shown(root: str, rel: str) -> str:
    return os.path.normpath(os.path.join(root, rel)) if root not in ("", ".") else rel


def _validate(
    doc: Document, file: str, problems: list[Problem], resources: Resources
) -> Model | None:
    data = doc.data
    if data is None:
        return None  # an empty document (e.g. only comments) is allowed
    if not isinstance(data, dict):
        problems.append(
            Problem(file, doc.start_line, "", "a resource must be a mapping",
                    "start with apiVersion: tva/v1 and kind: ...")
        )
        return None
    api = data.get("apiVersion")
    kind = data.get("kind")
    name = data.get("name")
    # The version first: a later version may bring kinds this tva does not know.
    if api is None or api not in SUPPORTED_API_VERSIONS:
        problems.append(Problem(
            file, doc.line_of(("apiVersion",)), "apiVersion",
            "required field is missing" if api is None else f"unsupported version {api!r}",
            f"add apiVersion: {SUPPORTED_API_VERSIONS[-1]}" if api is None else
            f"this tva reads {', '.join(SUPPORTED_API_VERSIONS)}; upgrade tva or use a "
            "supported version",
        ))
        if isinstance(kind, str):
            resources.add_broken(_known_kind(kind), name)
        return None
    model_cls = KINDS.get(kind) if isinstance(kind, str) else None
    if model_cls is None:
        close = difflib.get_close_matches(str(kind), list(KINDS), n=1, cutoff=0.6)
        problems.append(Problem(
            file, doc.line_of(("kind",)), "kind",
            f"unknown kind {kind!r}" if kind is not None else "required field is missing",
            f"did you mean {close[0]!r}?" if close else "one of " + ", ".join(sorted(KINDS)),
        ))
        if close:
            resources.add_broken(close[0], name)
        return None
    try:
        return model_cls.model_validate(data)
    except ValidationError as e:
        problems.extend(_merge_alternatives([_problem_from(err, doc, file) for err in e.errors()]))
    except Exception as e:  # a validator bug must not become a traceback for the user
        problems.append(Problem(file, doc.start_line, "", f"{INTERNAL}: {type(e).__name__}: {e}",
                                "this is a bug in tva; please report it"))
    resources.add_broken(str(kind), name)
    return None


_SHOULD = "Input should be "


def _merge_alternatives(found: list[Problem]) -> list[Problem]:
    """One problem per field for a value that fits no member of a union (an mpv option given a
    list): pydantic reports each member; they read as one, "Input should be a valid string, a
    valid integer or a valid boolean"."""
    kept: list[Problem] = []
    alternatives: dict[tuple[int, str], list[str]] = {}
    for p in found:
        if not p.message.startswith(_SHOULD):
            kept.append(p)
            continue
        alts = alternatives.setdefault((p.line, p.field), [])
        if not alts:
            kept.append(p)
        alts.append(p.message[len(_SHOULD):])
    out = []
    for p in kept:
        alts = alternatives.get((p.line, p.field), [])
        if p.message.startswith(_SHOULD) and len(alts) > 1:
            p = Problem(p.file, p.line, p.field,
                        _SHOULD + ", ".join(alts[:-1]) + " or " + alts[-1], p.hint)
        out.append(p)
    return out


def _known_kind(kind: str) -> str:
    close = difflib.get_close_matches(kind, list(KINDS), n=1, cutoff=0.6)
    return close[0] if close and kind not in KINDS else kind


def _field_path(loc: tuple[Any, ...], data: Any, missing: bool) -> tuple[tuple[str | int, ...], str]:
    """The YAML path of a pydantic error location, and how it is shown (``storage[0].path``).

    Pydantic's locations also hold union-member tags (a model or type name) and ``[key]``
    markers; only the parts that step into the data are kept (plus a missing field's name).
    """
    path: list[str | int] = []
    cur: Any = data
    for i, part in enumerate(loc):
        steps_in = (isinstance(cur, dict) and isinstance(part, str) and part in cur) or (
            isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur)
        )
        if steps_in:
            cur = cur[part]
        elif missing and i == len(loc) - 1 and isinstance(cur, dict):
            cur = None
        else:
            continue  # a union tag or [key], not a step into the data
        path.append(part)
    shown = ""
    for part in path:
        shown += f"[{part}]" if isinstance(part, int) else ("." if shown else "") + str(part)
    return tuple(path), shown


def _problem_from(err: Any, doc: Document, file: str) -> Problem:
    kind = err["type"]
    path, shown = _field_path(tuple(err["loc"]), doc.data, kind == "missing")
    msg = str(err["msg"])
    hint = ""
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    line = doc.line_of(path)
    if kind == "extra_forbidden":
        msg = "unknown field"
        name = str(path[-1]) if path else ""
        others = [f for f in _all_field_names() if f != name]
        close = difflib.get_close_matches(name, others, n=1, cutoff=0.75)
        if name in _all_field_names():
            hint = "that field belongs to another kind or place; see docs/reference.md"
        elif close:
            hint = f"did you mean {close[0]!r}?"
        else:
            hint = "see docs/reference.md for the fields"
    elif kind == "missing":
        msg = "required field is missing"
    elif kind == "string_pattern_mismatch" and path and path[-1] == "name":
        hint = "names are lower-case letters, digits, '.', '_' and '-'"
    elif kind == "string_type" and err.get("input") is None:
        hint = "the value is empty"
    elif kind == "string_type" and not isinstance(err.get("input"), dict | list):
        # YAML 1.1 reads 1984, 0123, yes/no and 2024-01-01 as numbers, booleans and dates.
        hint = "YAML did not read this as text; put it in quotes"
    elif kind == "value_error":
        # A model-level rule names the field it is about ("max (1) is below min (2)", "mpv
        # option 'script' is refused"): point at that field's line, not the model's first one.
        line = _line_of_mentioned(doc, path, msg, line)
    return Problem(file, line, shown, msg, hint)


def _line_of_mentioned(doc: Document, path: tuple[str | int, ...], msg: str, line: int) -> int:
    value: Any = doc.data
    for part in path:
        try:
            value = value[part]
        except (KeyError, IndexError, TypeError):
            return line
    if not isinstance(value, dict):
        return line
    best: tuple[int, str] | None = None
    for key in value:
        m = re.search(rf"(?<![\w-]){re.escape(str(key))}(?![\w-])", msg)
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), str(key))
    return doc.line_of((*path, best[1])) if best else line


_FIELD_NAMES: list[str] = []


def _all_field_names() -> list[str]:
    if not _FIELD_NAMES:
        seen: set[str] = set()
        todo: list[type[BaseModel]] = list(KINDS.values())
        while todo:
            cls = todo.pop()
            for fname, info in cls.model_fields.items():
                seen.add(info.alias or fname)
                for arg in _model_args(info.annotation):
                    todo.append(arg)
        _FIELD_NAMES.extend(sorted(seen))
    return _FIELD_NAMES


def _model_args(annotation: Any) -> list[type[BaseModel]]:
    out: list[type[BaseModel]] = []
    stack = [annotation]
    while stack:
        a = stack.pop()
        if isinstance(a, type) and issubclass(a, BaseModel):
            out.append(a)
        for sub in getattr(a, "__args__", ()) or ():
            stack.append(sub)
    return out
