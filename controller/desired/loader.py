"""Load a fleet repo directory into one validated ``DesiredState``.

Layout (documented in docs/fleet-repo.md): every ``*.yaml``/``*.yml`` file outside dot-folders
is one or more resources, each naming its ``apiVersion`` and ``kind``. The conventional places
are ``fleet.yaml``, ``duties.yaml``, ``devices/``, ``custody/``, ``items/``, ``watchlists/``,
``vpn/``, ``sources/`` and ``torrents/`` (committed metainfo), but the kind decides, not the
folder, so a repo can be organised as its owner likes.

Every problem in every file is collected and reported at once, each with file, line and field.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from controller.desired.checks import Origin, Resources, check_and_resolve
from controller.desired.yamlsafe import (
    MAX_FILE_BYTES,
    Document,
    YamlProblem,
    parse_documents,
    read_text,
)
from controller.errors import Problem, ValidationFailed
from schemas.desired import KINDS, SUPPORTED_API_VERSIONS, DesiredState, Model

MAX_FILES = 20_000
YAML_SUFFIXES = (".yaml", ".yml")


@dataclass
class LoadResult:
    desired: DesiredState
    files: list[str] = field(default_factory=list)
    """The files read, relative to the repo root, sorted."""


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
    def __init__(self, root: str) -> None:
        self.root = root

    def __call__(self, rel: str, limit: int) -> bytes:
        path = os.path.join(self.root, rel)
        with open(path, "rb") as f:
            return f.read(limit + 1)


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
            text = read_text(shown, reader(rel, MAX_FILE_BYTES))
            docs = parse_documents(text)
        except YamlProblem as e:
            problems.append(Problem(shown, e.line, "", e.message, e.hint))
            continue
        except OSError as e:
            problems.append(Problem(shown, 0, "", f"cannot read: {e.strerror}"))
            continue
        for doc in docs:
            model = _validate(doc, shown, problems)
            if model is not None:
                resources.add(model, Origin(shown, doc))
    if not problems:
        desired = check_and_resolve(resources, problems, root=root, reader=reader, revision=revision)
        if desired is not None and not problems:
            return LoadResult(desired=desired, files=files)
    raise ValidationFailed(problems)


def _shown(root: str, rel: str) -> str:
    return os.path.normpath(os.path.join(root, rel)) if root not in ("", ".") else rel


def _validate(doc: Document, file: str, problems: list[Problem]) -> Model | None:
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
    if api is None:
        problems.append(Problem(file, doc.start_line, "apiVersion", "missing",
                                f"add apiVersion: {SUPPORTED_API_VERSIONS[-1]}"))
        return None
    if api not in SUPPORTED_API_VERSIONS:
        problems.append(Problem(file, doc.line_of(("apiVersion",)), "apiVersion",
                                f"unsupported version {api!r}",
                                f"this tva reads {', '.join(SUPPORTED_API_VERSIONS)}; upgrade tva "
                                "or use a supported version"))
        return None
    model_cls = KINDS.get(kind) if isinstance(kind, str) else None
    if model_cls is None:
        problems.append(Problem(file, doc.line_of(("kind",)), "kind",
                                f"unknown kind {kind!r}", "one of " + ", ".join(sorted(KINDS))))
        return None
    try:
        return model_cls.model_validate(data)
    except ValidationError as e:
        for err in e.errors():
            problems.append(_problem_from(err, model_cls, doc, file))
        return None


def _field_path(loc: tuple[Any, ...]) -> tuple[tuple[str | int, ...], str]:
    path: list[str | int] = []
    shown = ""
    for part in loc:
        if part == "[key]" or (isinstance(part, str) and part[:1].isupper() and part != "class"):
            continue  # union-member or key markers from pydantic, not part of the YAML path
        path.append(part)
        if isinstance(part, int):
            shown += f"[{part}]"
        else:
            shown += ("." if shown else "") + str(part)
    return tuple(path), shown


def _problem_from(err: Any, model_cls: type[BaseModel], doc: Document, file: str) -> Problem:
    path, shown = _field_path(tuple(err["loc"]))
    line = doc.line_of(path)
    kind = err["type"]
    msg = str(err["msg"])
    hint = ""
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    if kind == "extra_forbidden":
        msg = "unknown field"
        name = str(path[-1]) if path else ""
        close = difflib.get_close_matches(name, _all_field_names(), n=1, cutoff=0.75)
        hint = f"did you mean {close[0]!r}?" if close else "see docs/reference.md for the fields"
    elif kind == "missing":
        msg = "required field is missing"
    elif kind == "string_pattern_mismatch" and path and path[-1] == "name":
        hint = "names are lower-case letters, digits, '.', '_' and '-'"
    return Problem(file, line, shown, msg, hint)


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
