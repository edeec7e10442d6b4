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
import hashlib
import os
import re
import stat
import time
from collections.abc import Callable
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
    "MAX_REVISION_BYTES",
    "MAX_VALIDATION_SECONDS",
    "YAML_SUFFIXES",
    "Budget",
    "LoadResult",
    "Reader",
    "discover",
    "load_files",
    "load_fleet",
]

INTERNAL = "internal error while validating"
"""Prefix of a problem that means a bug in a validator, not in the fleet repo."""

MAX_FILES = 20_000
MAX_REVISION_BYTES = 64 << 20
"""All files one revision reads (YAML and committed .torrent files), each path counted once."""
MAX_VALIDATION_SECONDS = 60.0
YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Budget:
    """What validating one revision may cost, the same for a checkout and a git commit.

    Anyone who can push chooses the input, so its cost is bounded as a whole, not per file only:
    N paths to one large blob are read and parsed once, and the bytes of every distinct path,
    the number of files and the time spent all count against one budget. A revision over it is
    invalid, with one problem saying which limit it crossed.
    """

    files: int = MAX_FILES
    bytes: int = MAX_REVISION_BYTES
    seconds: float = MAX_VALIDATION_SECONDS


@dataclass
class LoadResult:
    desired: DesiredState
    files: list[str] = field(default_factory=list)
    """The files read, relative to the repo root, sorted."""
    warnings: list[Problem] = field(default_factory=list)
    """Valid, but will not work as expected (``checks.warnings``); shown, never refused."""
    origins: dict[tuple[str, str], tuple[str, int]] = field(default_factory=dict)
    """(kind, name) -> (file, line) where each resource is declared (the dashboard's links)."""


def discover(root: str, *, limit: int = MAX_FILES) -> list[str]:
    """Every YAML file of the repo, relative to ``root``, sorted; dot-folders are skipped
    (``schemas.repopath.hidden``, the rule the git reader applies too)."""
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.startswith(".") or not name.endswith(YAML_SUFFIXES):
                continue
            found.append(os.path.relpath(os.path.join(dirpath, name), root))
            if len(found) > limit:
                raise ValidationFailed([_too_many_files(root, limit)])
    return sorted(found)


def _too_many_files(root: str, limit: int) -> Problem:
    return Problem(root, 0, "", f"more than {limit} YAML files", "is this a fleet repo?")


def load_fleet(root: str, *, revision: str | None = None, budget: Budget | None = None) -> LoadResult:
    """Load and validate the fleet repo checked out at ``root``.

    Raises ``ValidationFailed`` with every problem found.
    """
    if not os.path.isdir(root):
        raise ValidationFailed([Problem(root, 0, "", "not a directory", "give the fleet repo's path")])
    budget = budget or Budget()
    return load_files(root, discover(root, limit=budget.files), _FsReader(root), revision=revision,
                      budget=budget)


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


class _OverBudget(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


class _Metered:
    """The one reader every load goes through: each path is read once, and the bytes read and
    the time spent are checked against the revision's budget at every read."""

    def __init__(self, reader: Reader, budget: Budget, root: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.reader = reader
        self.budget = budget
        self.root = root
        self.clock = clock
        self.deadline = clock() + budget.seconds
        self.used = 0
        self._read: dict[tuple[str, int], bytes] = {}

    def check_time(self) -> None:
        if self.clock() >= self.deadline:
            raise _OverBudget(Problem(
                self.root, 0, "", f"validating this revision took longer than {self.budget.seconds:g} s",
                "make the fleet files smaller or fewer; see docs/fleet-repo.md, Limits"))

    def __call__(self, rel: str, limit: int) -> bytes:
        known = self._read.get((rel, limit))
        if known is not None:
            return known
        self.check_time()
        data = self.reader(rel, limit)
        self.used += len(data)
        if self.used > self.budget.bytes:
            raise _OverBudget(Problem(
                self.root, 0, "", f"the revision's fleet files hold more than "
                f"{self.budget.bytes >> 20} MiB", "see docs/fleet-repo.md, Limits"))
        self._read[(rel, limit)] = data
        return data


def load_files(
    root: str, files: list[str], reader: Reader, *, revision: str | None = None,
    budget: Budget | None = None,
) -> LoadResult:
    """Load the given repo files through ``reader`` (the filesystem, or a git tree), within
    ``budget`` (the default one when None).

    ``root`` only names the files in messages. Any failure, even a bug in a check, is a
    problem of the revision (``ValidationFailed``), never another exception.
    """
    budget = budget or Budget()
    where = root or "."
    if len(files) > budget.files:
        raise ValidationFailed([_too_many_files(where, budget.files)])
    metered = _Metered(reader, budget, where)
    problems: list[Problem] = []
    try:
        loaded = _load(root, files, metered, problems, revision)
    except _OverBudget as e:
        raise ValidationFailed([*problems, e.problem]) from None
    except RecursionError:
        problems.append(Problem(where, 0, "", "a file is nested too deeply to read"))
        loaded = None
    except Exception as e:  # a bug must not become a traceback, nor stop the daemon's loop
        problems.append(Problem(where, 0, "", f"{INTERNAL}: {type(e).__name__}: {e}",
                                "this is a bug in tva; please report it"))
        loaded = None
    if loaded is not None and not problems:
        return LoadResult(desired=loaded[0], files=files, warnings=loaded[1], origins=loaded[2])
    raise ValidationFailed(problems)


def _load(
    root: str, files: list[str], reader: _Metered, problems: list[Problem], revision: str | None
) -> tuple[DesiredState, list[Problem], dict[tuple[str, str], tuple[str, int]]] | None:
    """The desired state, the warnings (``checks.warnings``) and where each resource is
    declared, or None with ``problems``."""
    resources = Resources()
    parsed: dict[bytes, list[Document] | YamlProblem] = {}
    """Parsed once per distinct content: one blob behind N paths costs one parse."""
    validated: dict[int, Model | Exception] = {}
    for rel in files:
        shown = _shown(root, rel)
        try:
            data = reader(rel, MAX_FILE_BYTES)
        except OSError as e:
            problems.append(Problem(shown, 0, "", f"cannot read: {e.strerror or e}"))
            continue
        digest = hashlib.sha256(data).digest()
        if digest not in parsed:
            try:
                parsed[digest] = parse_documents(read_text(shown, data))
            except YamlProblem as e:
                parsed[digest] = e
        docs = parsed[digest]
        if isinstance(docs, YamlProblem):
            problems.append(Problem(shown, docs.line, "", docs.message, docs.hint))
            if b"\x00" not in data:  # text, though not valid YAML: what does it define?
                for kind, name in guess_identities(data.decode("utf-8", "replace")):
                    resources.add_broken(_known_kind(kind), name)
            continue
        for doc in docs:
            reader.check_time()
            model = _validate(doc, shown, problems, resources, validated)
            if model is not None:
                resources.add(model, Origin(shown, doc))
    desired = check_and_resolve(resources, problems, root=root, reader=reader, revision=revision)
    if desired is None:
        return None
    origins = {(kind, str(getattr(model, "name", ""))): (origin.file, origin.doc.start_line)
               for kind, found in resources.by_kind.items() for model, origin in found}
    return desired, warnings(resources), origins


def _shown(root: str, rel: str) -> str:
    return os.path.normpath(os.path.join(root, rel)) if root not in ("", ".") else rel


def _validate(
    doc: Document, file: str, problems: list[Problem], resources: Resources,
    memo: dict[int, Model | Exception] | None = None,
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
        # A document shared by several paths (one blob, parsed once) is validated once too.
        known = memo.get(id(data)) if memo is not None else None
        if known is None:
            try:
                known = model_cls.model_validate(data)
            except Exception as e:  # kept, then raised again for each path that holds it
                known = e
            if memo is not None:
                memo[id(data)] = known
        if isinstance(known, Exception):
            raise known
        return known
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
