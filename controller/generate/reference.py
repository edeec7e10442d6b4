"""Render ``docs/reference.md``, the reference of every YAML field, from the models.

The reference is generated rather than written so it cannot drift from what the loader
accepts: it is rendered from the same JSON Schema documents that editors use
(``controller.generate.json_schema``), plus the few facts that live next to the models (the supported
``apiVersion`` values, the duration and size units, the mpv allow-list). ``tva schema``
writes it and a test fails when the committed file is stale.

Pure: returns a string. Deterministic: no dates, sets are sorted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from pydantic import TypeAdapter

from controller.generate.json_schema import DOCUMENTS, KIND_FILES, SchemaDoc, build
from schemas import types as _types
from schemas.desired import (
    API_VERSION,
    KINDS,
    MPV_ALLOWED_OPTIONS,
    MPV_REFUSED_OPTIONS,
    SUPPORTED_API_VERSIONS,
    AbsPath,
)

__all__ = ["KIND_EXAMPLES", "render_reference"]

KIND_EXAMPLES: dict[str, str] = {
    "Fleet": "fleet-state/fleet.yaml",
    "Device": "fleet-state/devices/nas.yaml",
    "Duties": "fleet-state/duties.yaml",
    "CustodyRule": "fleet-state/custody/films.yaml",
    "Collection": "fleet-state/items/films.yaml",
    "Watchlist": "fleet-state/watchlists/tv-shows.yaml",
    "VpnProfile": "fleet-state/vpn/home-wg.yaml",
    "Source": "fleet-state/sources/public.yaml",
    "Fabric": "examples/travel/fabric.yaml",
}
"""A file of the reference fleet that shows each kind (a test checks they exist)."""

# --------------------------------------------------------------------------- named types

_ANNOTATION_KEYS = frozenset({"description", "default", "title", "examples"})


def _shape(schema: dict[str, Any]) -> str:
    """A schema without its annotations, as comparable text."""
    return json.dumps(
        {k: v for k, v in schema.items() if k not in _ANNOTATION_KEYS}, sort_keys=True
    )


_NAMED_TYPES: dict[str, tuple[str, str]] = {
    _shape(TypeAdapter(t).json_schema()): (label, anchor)
    for t, label, anchor in (
        (_types.Duration, "duration", "durations"),
        (_types.ByteSize, "size", "sizes"),
        (_types.Name, "name", "names"),
        (_types.Label, "label", "labels"),
        (_types.InfoHash, "info-hash", "info-hashes"),
        (AbsPath, "absolute path", "paths"),
    )
}
"""Value types documented once under "Value syntaxes", recognised by their schema."""

_MODEL_LINKS = {"SecretRef": ("secret reference", "secret-references")}
"""Models documented under "Value syntaxes" rather than under a kind."""


# --------------------------------------------------------------------------- text helpers


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _prose(text: str) -> str:
    """A docstring or description as Markdown: reST ``code`` becomes `code`."""
    return re.sub(r"``([^`]+)``", r"`\1`", text.strip())


def _cell(text: str) -> str:
    """Text that is safe inside a Markdown table cell."""
    paragraphs = [" ".join(p.split()) for p in _prose(text).split("\n\n")]
    return "<br>".join(p for p in paragraphs if p).replace("|", "\\|")


def _code(value: Any) -> str:
    """A value as YAML would spell it, in backticks (JSON flow style is valid YAML)."""
    if isinstance(value, str):
        text = value if value and re.fullmatch(r"[\w./:@-]+", value) else json.dumps(value)
    else:
        text = json.dumps(value, ensure_ascii=False)
    return f"`{text}`"


def _codes(values: list[Any]) -> str:
    return ", ".join(_code(v) for v in values)


# --------------------------------------------------------------------------- schema walking


class _Renderer:
    """Renders the fields of one schema document; remembers which objects it has described."""

    def __init__(self, documented: set[str]) -> None:
        self.documented = documented
        self.defs: dict[str, Any] = {}

    def use(self, schema: dict[str, Any]) -> None:
        self.defs = schema.get("$defs", {})

    def _target(self, ref: str) -> tuple[str, dict[str, Any]]:
        name = ref.rsplit("/", 1)[-1]
        return name, self.defs[name]

    def type_of(self, node: dict[str, Any]) -> str:
        named = _NAMED_TYPES.get(_shape(node))
        if named is not None:
            return f"[{named[0]}](#{named[1]})"
        if "$ref" in node:
            name, target = self._target(node["$ref"])
            if "enum" in target:
                return "one of " + _codes(target["enum"])
            label, anchor = _MODEL_LINKS.get(name, (name, _anchor(name)))
            return f"[{label}](#{anchor})"
        if "const" in node:
            return _code(node["const"])
        if "enum" in node:
            return "one of " + _codes(node["enum"])
        if "anyOf" in node:
            parts = [self.type_of(n) for n in node["anyOf"] if n != {"type": "null"}]
            return " or ".join(parts)
        kind = node.get("type")
        if kind == "array":
            inner = self.type_of(node.get("items", {}))
            text = f"list of {inner}"
            if inner.startswith("one of "):
                text = "list, each " + inner
            return text + self._limits(node, "maxItems", "minItems", "items")
        if kind == "object" and isinstance(node.get("additionalProperties"), dict):
            keys = self.type_of(node["propertyNames"]) if "propertyNames" in node else "string"
            value = self.type_of(node["additionalProperties"])
            return f"map of {keys} to {value}"
        base = str(kind) if kind else "any"
        return base + self._constraints(node)

    @staticmethod
    def _limits(node: dict[str, Any], hi: str, lo: str, unit: str) -> str:
        parts = []
        if lo in node:
            parts.append(f"at least {node[lo]} {unit}")
        if hi in node:
            parts.append(f"at most {node[hi]:,} {unit}")
        return f" ({', '.join(parts)})" if parts else ""

    def _constraints(self, node: dict[str, Any]) -> str:
        parts = []
        if "minimum" in node:
            parts.append(f"≥ {node['minimum']}")
        if "exclusiveMinimum" in node:
            parts.append(f"> {node['exclusiveMinimum']}")
        if "maximum" in node:
            parts.append(f"≤ {node['maximum']:,}")
        if "exclusiveMaximum" in node:
            parts.append(f"< {node['exclusiveMaximum']}")
        if "minLength" in node and node["minLength"] > 1:
            parts.append(f"at least {node['minLength']} characters")
        if "maxLength" in node:
            parts.append(f"at most {node['maxLength']:,} characters")
        if "pattern" in node:
            parts.append(f"matching `{node['pattern']}`")
        return f" ({', '.join(parts)})" if parts else ""

    def default_of(self, name: str, node: dict[str, Any], required: bool) -> str:
        if required:
            return "**required**"
        if "default" not in node:
            return ""
        value = node["default"]
        if value is None:
            return "none"
        if isinstance(value, dict) and value and "$ref" in node:
            return "all defaults"
        return _code(value)

    def description_of(self, node: dict[str, Any]) -> str:
        text = node.get("description", "")
        if "$ref" in node:
            _, target = self._target(node["$ref"])
            if "enum" in target and target.get("description") and not text:
                text = target["description"]
        return _cell(text)

    @staticmethod
    def alternatives(schema: dict[str, Any]) -> list[str]:
        """Model-level "one of these fields" rules (from ``json_schema_extra``) as prose."""
        lines = []
        for key, how in (("anyOf", "at least one of"), ("oneOf", "exactly one of")):
            options = schema.get(key, [])
            fields = [f"`{o['required'][0]}`" for o in options if len(o.get("required", [])) == 1]
            if fields and len(fields) == len(options):
                lines.append(f"Give {how} {', '.join(fields)}.")
        return lines

    def table(self, schema: dict[str, Any]) -> list[str]:
        required = set(schema.get("required", []))
        rows = ["| Field | Type | Default | Description |", "|---|---|---|---|"]
        for name, node in schema.get("properties", {}).items():
            rows.append(
                f"| `{name}` | {self.type_of(node).replace('|', chr(92) + '|')} "
                f"| {self.default_of(name, node, name in required)} "
                f"| {self.description_of(node)} |"
            )
        return rows

    def nested(self, schema: dict[str, Any]) -> Iterator[str]:
        """Names of the object definitions reachable from ``schema``, in first-use order."""
        seen: list[str] = []

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                ref = node.get("$ref")
                if isinstance(ref, str):
                    name, target = self._target(ref)
                    if "enum" not in target and name not in seen:
                        seen.append(name)
                        walk(target)
                for key, value in node.items():
                    if key != "$defs":
                        walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(schema.get("properties", {}))
        yield from seen


# --------------------------------------------------------------------------- sections


def _layout() -> list[str]:
    width = max(len(f) for f in KIND_FILES.values()) + 2
    rows = [f"{path:<{width}}# {kind}" for kind, path in KIND_FILES.items()]
    rows.append(f"{'torrents/':<{width}}# committed .torrent files that items refer to")
    rows.append(f"{'.tva/schemas/':<{width}}# JSON Schema copies for editors (tva init)")
    return [
        "## The fleet repo",
        "",
        "A fleet repo is a git repository of YAML files. Each file holds one resource (or "
        "several, separated by `---`), and each resource names its schema version and its "
        "kind. The conventional layout:",
        "",
        "```",
        *rows,
        "```",
        "",
        "The `kind:` decides what a document is, not the folder it is in, so a repo may be "
        "organised as its owner likes. Every `*.yaml` and `*.yml` file outside dot-folders is "
        "read; dot-folders such as `.tva/` and `.git/` are skipped. There is exactly one "
        "`Fleet` and at most one `Duties`; the names of devices, custody rules, collections, "
        "watchlists, VPN profiles and sources are unique per kind. See "
        "[fleet-repo.md](fleet-repo.md) for the loader's limits and the error format.",
        "",
    ]


def _api_version() -> list[str]:
    versions = ", ".join(f"`{v}`" for v in SUPPORTED_API_VERSIONS)
    return [
        "## Schema versions",
        "",
        f"Every resource starts with `apiVersion: {API_VERSION}` and its `kind:`. The "
        "`apiVersion` is the version of the schema the file follows: a later tva that "
        "introduces a new version keeps reading files that name an older one, so a repo never "
        "has to be rewritten all at once. A version this tva does not know is refused with a "
        "message that names the versions it reads.",
        "",
        f"This tva reads: {versions}.",
        "",
        "Each kind has a JSON Schema in [`schemas/json/`](../schemas/json/). A first line such "
        "as the following lets editors that speak the YAML language server complete and check "
        "the file (the path is relative to the file):",
        "",
        "```yaml",
        "# yaml-language-server: $schema=../../schemas/json/device.schema.json",
        "```",
        "",
        "A repo made by `tva init` carries its own copies in `.tva/schemas/`; "
        "`tva schema --out .tva/schemas` refreshes them after an upgrade.",
        "",
    ]


def _units(units: dict[str, int]) -> str:
    return ", ".join(f"`{u}`" for u in units)


def _value_syntaxes(renderer: _Renderer, secret_schema: dict[str, Any]) -> list[str]:
    size_units = [u for u in _types._SIZE_UNITS if u != "b"]
    si = [u.upper() for u in size_units if "i" not in u]
    binary = [u[0].upper() + "iB" for u in size_units if "i" in u]
    duration_units = ", ".join(
        f"`{u}` ({n:,} s)" for u, n in _types._DURATION_UNITS.items()
    )
    renderer.use(secret_schema)
    secret_def = secret_schema["$defs"]["SecretRef"]
    return [
        "## Value syntaxes",
        "",
        "### Durations",
        "",
        "A number and a unit, e.g. `90s`, `10m`, `2h`, `1.5d`, `1w`; or a plain number of "
        f"seconds. Units: {duration_units}. Durations are never negative.",
        "",
        "### Sizes",
        "",
        "A number of bytes (`1073741824`), or a number and a unit, e.g. `500MB`, `1.5GiB`, "
        f"`8TiB`. SI units ({', '.join(f'`{u}`' for u in si)}) are powers of 1000, binary "
        f"units ({', '.join(f'`{u}`' for u in binary)}) powers of 1024; `B` is a byte. Units "
        "are case-insensitive.",
        "",
        "### Names",
        "",
        "Resource names (devices, rules, collections, watchlists, VPN profiles, sources) are "
        "1 to 64 characters: lower-case letters, digits, `.`, `_` and `-`, starting and ending "
        "with a letter or digit (`nas`, `home-videos`, `wg.home`).",
        "",
        "### Labels",
        "",
        "Up to 128 characters: letters, digits and `.`, `_`, `/`, `:`, `-`, starting with a "
        "letter or digit (`home`, `living-room`, `tier:archive`).",
        "",
        "### Info-hashes",
        "",
        "A BitTorrent v1 info-hash: 40 hexadecimal digits (either case; tva uses lower case).",
        "",
        "### Paths",
        "",
        "Absolute paths on the device (`/srv/media`), at most 4,096 characters, without `..`. "
        "A device's `download_dir` must lie inside one of its storage roots.",
        "",
        "### Secret references",
        "",
        "Credentials never appear in the fleet repo. Wherever one is needed, give a reference "
        "that the controller resolves on the node at the moment of use; a plain string is "
        "refused. Exactly one of:",
        "",
        *renderer.table(secret_def),
        "",
        "```yaml",
        "credentials:",
        "  transmission_password: {env: TVA_NAS_RPC_PASSWORD}",
        "  api_token: {file: /etc/tva/api-token}",
        "# or {keyring: tva/laptop}",
        "```",
        "",
    ]


def _mpv_options() -> list[str]:
    allowed = ", ".join(f"`{o}`" for o in sorted(MPV_ALLOWED_OPTIONS))
    refused = ", ".join(f"`{o}`" for o in sorted(MPV_REFUSED_OPTIONS))
    return [
        "#### mpv options",
        "",
        "`options` sets mpv options by their command-line name without the dashes "
        "(`volume: 80`, `hwdec: auto`). The fleet repo is untrusted input, so only options on "
        "this allow-list are accepted:",
        "",
        allowed,
        "",
        "These are refused outright because they load or run code, or read or write files "
        "chosen by the repo (any other option not on the allow-list is refused too):",
        "",
        refused,
        "",
        "Values are checked too (`schemas.desired.mpv_value_problem`): `ao`, `vo` and the "
        "driver of `audio-device` must be known outputs that write no file (not `pcm`, "
        "`image`, `tct`); every other text value is a short plain word, with no path, "
        "sub-option (`:file=`) or `%N%` quoting. See [security](security.md).",
        "",
    ]


_MODEL_EXTRAS: dict[str, Callable[[], list[str]]] = {"Player": _mpv_options}


def _kind_section(doc: SchemaDoc, renderer: _Renderer) -> list[str]:
    assert doc.kind is not None
    schema = build(doc)
    renderer.use(schema)
    lines = [f"## {doc.kind}", ""]
    lines.append(
        f"File: `{KIND_FILES[doc.kind]}`. JSON Schema: "
        f"[`schemas/json/{doc.filename}`](../schemas/json/{doc.filename}). "
        f"Example: [`{KIND_EXAMPLES[doc.kind]}`](../{KIND_EXAMPLES[doc.kind]})."
    )
    lines.append("")
    if schema.get("description"):
        lines += [_prose(schema["description"]), ""]
    lines += renderer.table(schema)
    lines.append("")
    for name in renderer.nested(schema):
        if name in renderer.documented or name in _MODEL_LINKS:
            continue
        renderer.documented.add(name)
        target = schema["$defs"][name]
        lines += [f"### {name}", ""]
        if target.get("description"):
            lines += [_prose(target["description"]), ""]
        for rule in renderer.alternatives(target):
            lines += [rule, ""]
        lines += renderer.table(target)
        lines.append("")
        if name in _MODEL_EXTRAS:
            lines += _MODEL_EXTRAS[name]()
    return lines


def _enumerations() -> list[str]:
    enums: dict[str, dict[str, Any]] = {}
    for doc in DOCUMENTS:
        if doc.kind is None:
            continue
        for name, target in build(doc).get("$defs", {}).items():
            if "enum" in target:
                enums.setdefault(name, target)
    lines = ["## Enumerations", ""]
    for name, target in enums.items():
        lines.append(f"- **{name}**: {_codes(target['enum'])}.")
        if target.get("description"):
            text = " ".join(_prose(target["description"]).split())
            lines[-1] += " " + text
    lines.append("")
    return lines


def _formats() -> list[str]:
    rows = [
        f"- [`schemas/json/{doc.filename}`](../schemas/json/{doc.filename}): {doc.title}."
        for doc in DOCUMENTS
        if doc.kind is None
    ]
    return [
        "## Published formats",
        "",
        "tva also publishes JSON documents that other tools read; their JSON Schemas are "
        "generated in the same way:",
        "",
        *rows,
        "",
        "See [status-format.md](status-format.md) and [plan-format.md](plan-format.md).",
        "",
    ]


def _headings(lines: list[str]) -> Iterator[tuple[int, str]]:
    """(level, text) of every Markdown heading outside code fences."""
    fenced = False
    for line in lines:
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            yield level, line[level:].strip()


def render_reference() -> str:
    """The whole of ``docs/reference.md``."""
    renderer = _Renderer(documented=set())
    kinds = [doc for doc in DOCUMENTS if doc.kind is not None]
    secret_host = next(doc for doc in kinds if doc.kind == "Device")
    body: list[str] = []
    body += _layout()
    body += _api_version()
    body += _value_syntaxes(renderer, build(secret_host))
    for doc in kinds:
        body += _kind_section(doc, renderer)
    body += _enumerations()
    body += _formats()

    all_headings = list(_headings(body))
    headings = [text for level, text in all_headings if level == 2]
    anchors = [_anchor(text) for _, text in all_headings]
    if len(anchors) != len(set(anchors)):
        dupes = sorted({a for a in anchors if anchors.count(a) > 1})
        raise ValueError(f"duplicate headings in the reference: {dupes}")
    contents = [f"- [{h}](#{_anchor(h)})" for h in headings]
    head = [
        "# Fleet repo reference",
        "",
        "<!-- Generated by `tva schema` from the models in schemas/; do not edit by hand. -->",
        "",
        "Every field of every kind of resource in a fleet repo, generated from the models "
        f"that the loader validates against. The kinds: {', '.join(KINDS)}.",
        "",
        *contents,
        "",
    ]
    text = "\n".join(head + body)
    return text.rstrip("\n") + "\n"
