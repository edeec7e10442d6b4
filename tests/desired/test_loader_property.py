"""Property: whatever YAML the repo holds, the loader returns a valid ``DesiredState`` or raises
``ValidationFailed`` with located problems — never any other exception.

Three sources of input: random YAML-ish text (the parser's surface), random documents built
from dicts, lists and scalars (shaped like resources or not), and mutations of the reference
fleet's files (a key dropped, a value's type changed, a random string, a shared subtree that
becomes a YAML alias). Files are served from memory through the loader's reader seam, so each
example costs no disk I/O.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.desired.loader import INTERNAL, LoadResult, load_files
from controller.errors import ValidationFailed
from schemas.desired import KINDS, DesiredState
from tests.conftest import REFERENCE_FLEET

REFERENCE: dict[str, bytes] = {
    str(p.relative_to(REFERENCE_FLEET)): p.read_bytes()
    for p in sorted(REFERENCE_FLEET.rglob("*.yaml"))
}
PARSED: dict[str, Any] = {rel: yaml.safe_load(data) for rel, data in REFERENCE.items()}
ROOT = "fleet"
# Each example loads the whole reference fleet (~30 ms of pure-Python YAML parsing), so a
# moderate number of examples keeps this file at a few seconds; derandomize makes every run
# try the same examples. When changing the loader, run once with many more examples and
# derandomize off.
SETTINGS = settings(
    max_examples=60, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --------------------------------------------------------------------------- the property


def load(files: dict[str, bytes]) -> LoadResult | ValidationFailed:
    def reader(rel: str, limit: int) -> bytes:
        if rel not in files:
            raise FileNotFoundError(2, "No such file", rel)
        return files[rel][: limit + 1]

    names = sorted(rel for rel in files if rel.endswith((".yaml", ".yml")))
    try:
        return load_files(ROOT, names, reader)
    except ValidationFailed as e:
        return e


def assert_outcome(files: dict[str, bytes]) -> None:
    got = load(files)
    if isinstance(got, LoadResult):
        assert isinstance(got.desired, DesiredState)
        return
    assert got.problems, "ValidationFailed names at least one problem"
    shown = {f"{ROOT}/{rel}" for rel in files} | {f"{ROOT}/fleet.yaml"}
    for p in got.problems:
        assert p.file in shown, p
        assert p.line >= 0
        assert INTERNAL not in p.message, str(p)
        assert str(p).startswith(p.file)


def test_the_reference_fleet_loads_through_the_same_seam() -> None:
    assert isinstance(load(dict(REFERENCE)), LoadResult)


# --------------------------------------------------------------------------- strategies

field_names = sorted({"apiVersion", "kind", "name", "class", "min", "max", "pins", "items",
                      "storage", "path", "capacity", "magnet", "infohash", "torrent", "devices",
                      "vpn", "player", "options", "queue", "search", "entries", "select"})
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40),
    st.sampled_from(["10m", "2h", "1.5GiB", "8TiB", "tva/v1", "nas", "laptop", "custodian",
                     "magnet:?xt=urn:btih:" + "a" * 40, "/srv/media", "../etc", "a" * 40]),
)
keys = st.one_of(st.sampled_from(field_names), st.text(max_size=12))
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=25,
)
resource_like = st.fixed_dictionaries(
    {
        "apiVersion": st.sampled_from(["tva/v1", "tva/v1", "tva/v2", "v1"]),
        "kind": st.sampled_from([*KINDS, "Nope"]),
        "name": st.sampled_from(["nas", "laptop", "films", "home-wg", "X", ""]) | st.text(max_size=8),
    },
    optional={k: values for k in field_names if k not in ("apiVersion", "kind", "name")},
)
yamlish_text = st.lists(
    st.sampled_from([*" \n\t-:[]{}&*!|>'\"#%@`,?.~<=abcnx019", "<<", "---\n", "&a ", "*a", "!!",
                     "kind: Device\n", "name: nas\n", "apiVersion: tva/v1\n", "  "]),
    max_size=80,
).map("".join)


def dump(doc: Any) -> bytes:
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False).encode("utf-8")


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        value = value[part]
    return value


def _copy(value: Any) -> Any:
    return yaml.safe_load(dump(value))


def _mutate(doc: Any, data: st.DataObject) -> Any:
    doc = _copy(doc)
    paths = [p for p in _paths(doc) if p]
    path = data.draw(st.sampled_from(paths), label="path")
    parent = _get(doc, path[:-1])
    how = data.draw(
        st.sampled_from(["drop", "value", "string", "share", "wrap", "rename"]), label="how"
    )
    last = path[-1]
    if how == "drop":
        del parent[last]
    elif how == "value":
        parent[last] = data.draw(values, label="value")
    elif how == "string":
        parent[last] = data.draw(st.text(max_size=30), label="string")
    elif how == "share":  # the same object twice: safe_dump writes an anchor and an alias
        other = data.draw(st.sampled_from(paths), label="other")
        if path[: len(other)] != other:  # not an ancestor of the slot: no cycle
            parent[last] = _get(doc, other)
    elif how == "wrap":
        parent[last] = [parent[last]]
    elif how == "rename" and isinstance(parent, dict):
        parent[data.draw(keys, label="key")] = parent.pop(last)
    return doc


# --------------------------------------------------------------------------- the tests


@SETTINGS
@given(text=yamlish_text, where=st.sampled_from(sorted(REFERENCE)))
def test_random_text_in_place_of_a_file(text: str, where: str) -> None:
    assert_outcome({**REFERENCE, where: text.encode("utf-8")})


@SETTINGS
@given(raw=st.binary(max_size=200))
def test_random_bytes_as_an_extra_file(raw: bytes) -> None:
    assert_outcome({**REFERENCE, "devices/extra.yaml": raw})


@SETTINGS
@given(docs=st.lists(st.one_of(values, resource_like), min_size=1, max_size=3))
def test_random_documents_as_an_extra_file(docs: list[Any]) -> None:
    text = b"".join(b"---\n" + dump(d) for d in docs)
    assert_outcome({**REFERENCE, "extra.yaml": text})


@SETTINGS
@given(data=st.data(), where=st.sampled_from(sorted(REFERENCE)), rounds=st.integers(1, 3))
def test_mutations_of_the_reference_fleet(data: st.DataObject, where: str, rounds: int) -> None:
    doc = PARSED[where]
    for _ in range(rounds):
        if not isinstance(doc, dict | list) or not _paths(doc)[1:]:
            break
        doc = _mutate(doc, data)
    assert_outcome({**REFERENCE, where: dump(doc)})


def test_numbers_that_break_durations_and_sizes() -> None:
    """Found while writing this file: huge numbers overflowed timedelta and int(float)."""
    fleet = dict(PARSED["fleet.yaml"])
    for grace in [10**30, math.inf, "99999999999999d", math.nan]:
        fleet["policy"] = {"freshness": {"grace": grace}}
        got = load({**REFERENCE, "fleet.yaml": dump(fleet)})
        assert isinstance(got, ValidationFailed)
        assert [p.field for p in got.problems] == ["policy.freshness.grace"], got
    nas = _copy(PARSED["devices/nas.yaml"])
    nas["storage"][0]["capacity"] = "9" * 400 + "TB"
    got = load({**REFERENCE, "devices/nas.yaml": dump(nas)})
    assert isinstance(got, ValidationFailed)
    assert [p.field for p in got.problems] == ["storage[0].capacity"], got


def test_the_reference_files_are_all_mutable() -> None:
    assert all(isinstance(doc, dict) and _paths(doc)[1:] for doc in PARSED.values())
    assert Path(REFERENCE_FLEET / "fleet.yaml").exists()
