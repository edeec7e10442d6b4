"""Parse untrusted YAML into plain data, remembering the line of every value.

The fleet repo is untrusted input, so parsing is bounded before it is clever:
the file size is checked before reading, text must be UTF-8 without NUL bytes, only the
safe YAML tags are constructed, nesting depth is limited while composing (so a 10,000-deep
document fails fast instead of exhausting the stack), the size and depth of every document
*after alias expansion* are computed on the node graph (linear time, so a "billion laughs" bomb
is refused before anything is expanded; the node budget is per file, not per document), aliased
values are built once and shared (memory follows the text, not its expansion), explicit tags
other than YAML's plain-data ones (``!!python/...``, ``!!binary``, ``!custom``) are refused on
every node, and duplicate mapping keys are errors rather than silent overrides (``<<`` merge keys
still work, and a key written next to a merge overrides the merged one, as YAML says).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from controller.display import first_control

__all__ = [
    "ALLOWED_TAGS",
    "MAX_DEPTH",
    "MAX_DOCUMENTS",
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "Document",
    "Path",
    "YamlProblem",
    "guess_identities",
    "parse_documents",
    "read_text",
]

MAX_FILE_BYTES = 1 << 20  # 1 MiB: far above any hand-written fleet file
MAX_DEPTH = 64
MAX_NODES = 200_000  # per file, after alias expansion
MAX_DOCUMENTS = 16

_STD = "tag:yaml.org,2002:"
ALLOWED_TAGS = frozenset(
    _STD + t for t in ("null", "bool", "int", "float", "str", "timestamp", "seq", "map")
)
"""Tags a node may carry, implicitly or explicitly: plain data only."""
_MERGE_TAG = _STD + "merge"

Path = tuple[str | int, ...]


class YamlProblem(Exception):
    """A file could not be read as safe YAML; ``line`` is 1-based (0 when unknown)."""

    def __init__(self, message: str, line: int = 0, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.hint = hint


@dataclass
class Document:
    """One YAML document: its data and a map from each value's path to its line."""

    data: Any
    lines: dict[Path, int] = field(default_factory=dict)
    start_line: int = 1

    def line_of(self, path: Path) -> int:
        """The line of the deepest known prefix of ``path`` (a missing field points at its parent)."""
        for n in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:n]))
            if line is not None:
                return line
        return self.start_line


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses deep nesting while composing (before recursion gets deep)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise YamlProblem(
                    f"nesting deeper than {MAX_DEPTH} levels", mark.line + 1,
                    "fleet files are shallow; this looks like a malformed or hostile file",
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def read_text(path: str, data: bytes | None = None) -> str:
    """Read a file as bounded UTF-8 text (``data`` when already read)."""
    if data is None:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise YamlProblem(
            f"file is larger than {MAX_FILE_BYTES // 1024} KiB",
            data[:MAX_FILE_BYTES].count(b"\n") + 1,  # where the limit is crossed
            "split it into several files; fleet files are small",
        )
    nul = data.find(b"\x00")
    if nul >= 0:
        raise YamlProblem(
            "file is binary (contains NUL bytes), not YAML text", data[:nul].count(b"\n") + 1
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise YamlProblem("file is not valid UTF-8 text", line) from None


class _Fallback(Exception):
    """The fast path met something unusual: let the careful path find and locate it."""


def parse_documents(text: str) -> list[Document]:
    """Parse every document of a YAML stream into plain data with line numbers.

    With libyaml available, the text is parsed in C: a first pass over its events (iterative,
    so any depth is safe to look at) checks the nesting depth and the number of documents, then
    the C composer (recursive, hence the check first) builds the nodes, and the same bounded
    constructor as the pure-Python path turns them into data. Anything unusual — a YAML error,
    too deep, too many documents — falls back to the pure-Python path, which reports it with
    its line, so both paths give the same answers.
    """
    if getattr(yaml, "__with_libyaml__", False):
        try:
            return _parse(text, fast=True)
        except _Fallback:
            pass
    return _parse(text, fast=False)


def _scan_events(text: str) -> None:
    depth = documents = 0
    try:
        for event in yaml.parse(text, Loader=yaml.CSafeLoader):
            if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise _Fallback
            elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                depth -= 1
            elif isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > MAX_DOCUMENTS:
                    raise _Fallback
    except yaml.YAMLError:
        raise _Fallback from None


def _parse(text: str, *, fast: bool) -> list[Document]:
    if fast:
        _scan_events(text)
    docs: list[Document] = []
    budget = MAX_NODES
    loader: Any = None
    try:
        # The reader checks every character already here, so this is inside the try.
        loader = yaml.CSafeLoader(text) if fast else _BoundedLoader(text)
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            if len(docs) >= MAX_DOCUMENTS:
                raise YamlProblem(
                    f"more than {MAX_DOCUMENTS} documents in one file",
                    node.start_mark.line + 1,
                    "split it into several files",
                )
            budget -= _check_expanded_size(node, budget)
            doc = Document(data=None, start_line=node.start_mark.line + 1)
            doc.data = _Constructor(loader, doc.lines).build(node, ())
            docs.append(doc)
    except (yaml.YAMLError, RecursionError) as e:
        if fast:
            raise _Fallback from None
        raise _located(e, text) from None
    finally:
        if loader is not None:
            loader.dispose()
    return docs


def _located(e: BaseException, text: str) -> YamlProblem:
    """A parser's error as a problem with its line."""
    if isinstance(e, yaml.MarkedYAMLError):
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else 0
        msg = " ".join(s for s in (e.context, e.problem) if s) or "invalid YAML"
        return YamlProblem(f"invalid YAML: {msg}", line)
    if isinstance(e, yaml.reader.ReaderError):  # a character YAML does not allow
        line = text[: e.position].count("\n") + 1
        char = e.character if isinstance(e.character, int) else ord(str(e.character)[:1] or "?")
        return YamlProblem(
            f"invalid YAML: character U+{char:04X} is not allowed", line,
            "fleet files are plain text; remove it",
        )
    if isinstance(e, RecursionError):
        return YamlProblem(f"nesting deeper than {MAX_DEPTH} levels")
    return YamlProblem(f"invalid YAML: {e}")


def _check_expanded_size(root: Node, budget: int) -> int:
    """The alias-expanded size of a document; refuses it when it exceeds ``budget`` values or
    ``MAX_DEPTH`` levels, in time linear in the node graph (aliases make it a DAG; cycles are
    refused)."""
    sizes: dict[int, int] = {}
    depths: dict[int, int] = {}
    stack: list[tuple[Node, bool]] = [(root, False)]
    on_path: set[int] = set()
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            total, depth = 1, 1
            for child in _children(node):
                total += sizes[id(child)]
                depth = max(depth, depths[id(child)] + 1)
                if total > budget:
                    raise YamlProblem(
                        f"file expands to more than {MAX_NODES} values (alias bomb?)",
                        node.start_mark.line + 1,
                        "YAML anchors and aliases may not multiply a document",
                    )
            if depth > MAX_DEPTH:
                raise YamlProblem(
                    f"nesting deeper than {MAX_DEPTH} levels once aliases are expanded",
                    node.start_mark.line + 1,
                    "fleet files are shallow; this looks like a malformed or hostile file",
                )
            sizes[key] = total
            depths[key] = depth
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise YamlProblem("recursive YAML alias", node.start_mark.line + 1,
                              "an alias may not refer to a value that contains it")
        on_path.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) not in sizes:
                stack.append((child, False))
    return sizes[id(root)]


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    return []


class _Constructor:
    """Builds plain data from a checked node graph, recording each value's line.

    A node reached a second time (through an alias) is not built again: the first result is
    shared and its inner lines are not recorded again (a problem inside an aliased value points
    at the anchored value), so memory follows the text rather than its expansion.
    """

    def __init__(self, loader: yaml.SafeLoader, lines: dict[Path, int]) -> None:
        self.loader = loader
        self.lines = lines
        self.built: dict[int, Any] = {}

    def build(self, node: Node, path: Path) -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if node.tag not in ALLOWED_TAGS:
            raise YamlProblem(
                f"YAML tag {_shown_tag(node.tag)} is not allowed",
                node.start_mark.line + 1,
                "fleet files hold plain data: mappings, lists, strings, numbers and booleans",
            )
        if isinstance(node, ScalarNode):
            scalar = self.loader.construct_object(node)
            if isinstance(scalar, str) and (bad := first_control(scalar)) is not None:
                # YAML refuses these raw, but a quoted "\e" or "\u202e" writes them anyway.
                raise YamlProblem(
                    f"character U+{ord(bad):04X} is not allowed in text",
                    node.start_mark.line + 1,
                    "fleet files are plain text: no control or bidirectional-override characters",
                )
            return scalar
        key = id(node)
        if key in self.built:
            return self.built[key]
        if isinstance(node, SequenceNode):
            value: Any = [self.build(child, (*path, i)) for i, child in enumerate(node.value)]
        elif isinstance(node, MappingNode):
            value = self._mapping(node, path)
        else:  # pragma: no cover - the composer makes only these three node types
            raise YamlProblem(f"unsupported YAML node {node.tag}", node.start_mark.line + 1)
        self.built[key] = value
        return value

    def _mapping(self, node: MappingNode, path: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        merged: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                # '<<: *base' or '<<: [*a, *b]': keys written here win, then earlier merges.
                for source in self._merge_sources(value_node):
                    for k, v in self.build(source, (*path, "<<")).items():
                        merged.setdefault(k, v)
                        self.lines.setdefault((*path, k), key_node.start_mark.line + 1)
                continue
            if not isinstance(key_node, ScalarNode):
                raise YamlProblem("a mapping key must be a plain value", key_node.start_mark.line + 1)
            # Keys are names, read as written: YAML 1.1 would turn `no:` or `on:` into booleans.
            key = str(key_node.value)
            if key in out:
                raise YamlProblem(
                    f"duplicate key {key!r} (first on line {self.lines[(*path, key)]})",
                    key_node.start_mark.line + 1,
                    "YAML would silently keep only the last one; remove one of them",
                )
            self.lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = self.build(value_node, (*path, key))
        for k, v in merged.items():
            out.setdefault(k, v)
        return out

    @staticmethod
    def _merge_sources(node: Node) -> list[MappingNode]:
        if isinstance(node, MappingNode):
            return [node]
        if isinstance(node, SequenceNode) and all(isinstance(n, MappingNode) for n in node.value):
            return list(node.value)
        raise YamlProblem(
            "a merge key '<<' takes a mapping or a list of mappings",
            node.start_mark.line + 1,
        )


def _shown_tag(tag: str) -> str:
    return "!!" + tag[len(_STD):] if tag.startswith(_STD) else tag


_TOP_LINE = re.compile(r"""^(?:(---)|kind:[ \t]*(\S.*)|name:[ \t]*(\S.*))$""", re.MULTILINE)
_WORD = re.compile(r"""^["']?([^\s"'#]+)["']?[ \t]*(?:#.*)?$""")


def guess_identities(text: str) -> list[tuple[str, str | None]]:
    """``(kind, name)`` of each document of a file that could not be parsed, read from its
    top-level ``kind:`` and ``name:`` lines (best effort).

    Other files' references to names defined in a broken file then count as known, so one
    syntax error does not also cause "unknown device" errors everywhere else.
    """
    found: list[tuple[str, str | None]] = []
    kind: str | None = None
    name: str | None = None
    for m in _TOP_LINE.finditer(text):  # only the matching lines are materialised
        if m.group(1):
            if kind is not None:
                found.append((kind, name))
            kind = name = None
            continue
        word = _WORD.match((m.group(2) or m.group(3)).rstrip())
        if word is None:
            continue
        if m.group(2) is not None and kind is None:
            kind = word.group(1)
        elif m.group(3) is not None and name is None:
            name = word.group(1)
    if kind is not None:
        found.append((kind, name))
    return found
