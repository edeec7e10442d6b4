"""Parse untrusted YAML into plain data, remembering the line of every value.

The fleet repo is untrusted input, so parsing is bounded before it is clever:
the file size is checked before reading, text must be UTF-8 without NUL bytes, only the
safe YAML tags are constructed, nesting depth is limited while composing (so a 10,000-deep
document fails fast instead of exhausting the stack), the size of the document *after alias
expansion* is computed on the node graph (linear time, so a "billion laughs" bomb is refused
before anything is expanded), and duplicate mapping keys are errors rather than silent
overrides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_FILE_BYTES = 1 << 20  # 1 MiB: far above any hand-written fleet file
MAX_DEPTH = 64
MAX_NODES = 200_000  # after alias expansion
MAX_DOCUMENTS = 16

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

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:  # type: ignore[override]
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise YamlProblem(
                    f"nesting deeper than {MAX_DEPTH} levels", mark.line + 1,
                    "fleet files are shallow; this looks like a malformed or hostile file",
                )
            return super().compose_node(parent, index)  # type: ignore[no-any-return]
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
            0,
            "split it into several files; fleet files are small",
        )
    if b"\x00" in data:
        raise YamlProblem("file is binary (contains NUL bytes), not YAML text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise YamlProblem("file is not valid UTF-8 text", line) from None


def parse_documents(text: str) -> list[Document]:
    """Parse every document of a YAML stream into plain data with line numbers."""
    loader = _BoundedLoader(text)
    docs: list[Document] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            if len(docs) >= MAX_DOCUMENTS:
                raise YamlProblem(f"more than {MAX_DOCUMENTS} documents in one file")
            _check_expanded_size(node)
            doc = Document(data=None, start_line=node.start_mark.line + 1)
            doc.data = _construct(loader, node, (), doc.lines)
            docs.append(doc)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else 0
        msg = " ".join(s for s in (e.context, e.problem) if s) or "invalid YAML"
        raise YamlProblem(f"invalid YAML: {msg}", line) from None
    except yaml.YAMLError as e:
        raise YamlProblem(f"invalid YAML: {e}") from None
    except RecursionError:
        raise YamlProblem(f"nesting deeper than {MAX_DEPTH} levels") from None
    finally:
        loader.dispose()
    return docs


def _check_expanded_size(root: Node) -> None:
    """Refuse documents whose alias-expanded size exceeds ``MAX_NODES``, in linear time."""
    sizes: dict[int, int] = {}
    # Iterative post-order over the node graph; aliases make it a DAG (cycles are refused).
    stack: list[tuple[Node, bool]] = [(root, False)]
    on_path: set[int] = set()
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            total = 1
            for child in _children(node):
                total += sizes[id(child)]
                if total > MAX_NODES:
                    raise YamlProblem(
                        f"document expands to more than {MAX_NODES} values (alias bomb?)",
                        node.start_mark.line + 1,
                        "YAML anchors and aliases may not multiply a document",
                    )
            sizes[key] = total
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise YamlProblem("recursive YAML alias", node.start_mark.line + 1)
        on_path.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) not in sizes:
                stack.append((child, False))


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _construct(loader: yaml.SafeLoader, node: Node, path: Path, lines: dict[Path, int]) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, ScalarNode):
        return loader.construct_object(node)
    if isinstance(node, SequenceNode):
        return [
            _construct(loader, child, (*path, i), lines) for i, child in enumerate(node.value)
        ]
    if isinstance(node, MappingNode):
        loader.flatten_mapping(node)  # resolves '<<' merge keys, as SafeLoader does
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                raise YamlProblem("a mapping key must be a plain value", key_node.start_mark.line + 1)
            # Keys are names, read as written: YAML 1.1 would turn `no:` or `on:` into booleans.
            key = str(key_node.value)
            if key in out:
                raise YamlProblem(
                    f"duplicate key {key!r} (first on line {lines[(*path, key)]})",
                    key_node.start_mark.line + 1,
                    "YAML would silently keep only the last one; remove one of them",
                )
            lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = _construct(loader, value_node, (*path, key), lines)
        return out
    raise YamlProblem(f"unsupported YAML node {node.tag}", node.start_mark.line + 1)
