"""The bounded YAML reader on its own: what it builds, what it refuses, and where it points."""

from __future__ import annotations

import pytest

from controller.desired.yamlsafe import (
    MAX_NODES,
    YamlProblem,
    guess_identities,
    parse_documents,
    read_text,
)


def refused(text: str) -> YamlProblem:
    with pytest.raises(YamlProblem) as info:
        parse_documents(text)
    return info.value


def test_values_and_their_lines() -> None:
    (doc,) = parse_documents("a: 1\nb:\n  - x\n  - {c: true}\n")
    assert doc.data == {"a": 1, "b": ["x", {"c": True}]}
    assert doc.line_of(("b", 1, "c")) == 4
    assert doc.line_of(("b", 7, "missing")) == 2  # the deepest known prefix


def test_keys_are_read_as_written() -> None:
    (doc,) = parse_documents("no: 1\non: 2\n3: x\n")
    assert doc.data == {"no": 1, "on": 2, "3": "x"}


def test_merge_keys_work_and_written_keys_win() -> None:
    text = (
        "base: &base {volume: 50, hwdec: auto}\n"
        "other: &other {volume: 10, mute: true}\n"
        "tv:\n"
        "  <<: [*base, *other]\n"
        "  volume: 70\n"
    )
    (doc,) = parse_documents(text)
    assert doc.data["tv"] == {"volume": 70, "hwdec": "auto", "mute": True}
    assert doc.line_of(("tv", "volume")) == 5
    assert doc.line_of(("tv", "mute")) == 4  # merged: the line of the '<<'


def test_a_duplicate_key_is_refused_even_next_to_a_merge() -> None:
    p = refused("base: &b {k: 1}\nx:\n  <<: *b\n  j: 1\n  j: 2\n")
    assert p.line == 5 and "duplicate key 'j' (first on line 4)" in p.message


def test_a_merge_of_a_scalar_is_refused() -> None:
    assert "merge key" in refused("a: 1\nb:\n  <<: 5\n").message


def test_aliased_values_are_built_once_and_shared() -> None:
    (doc,) = parse_documents("a: &x [1, 2]\nb: [*x, *x]\n")
    assert doc.data["b"][0] is doc.data["a"] and doc.data["b"][1] is doc.data["a"]


@pytest.mark.parametrize(
    "text",
    ["a: !!binary aGk=\n", "a: !!set {x: null}\n", "a: !custom 1\n", "a: !!omap [{x: 1}]\n",
     "a: !!python/tuple [1, 2]\n"],
)
def test_only_plain_data_tags(text: str) -> None:
    p = refused(text)
    assert p.line == 1 and "is not allowed" in p.message


def test_a_mapping_key_must_be_plain() -> None:
    p = refused("? [a, b]\n: 1\n")
    assert "a mapping key must be a plain value" in p.message


def test_the_node_budget_is_per_file() -> None:
    """Each document alone is under the budget; together they are not."""
    third = MAX_NODES // 3 + 1
    bomb = f"a: &a [{','.join(['0'] * 1000)}]\nb: [{','.join(['*a'] * (third // 1001 + 1))}]\n"
    parse_documents(bomb)  # one is fine
    p = refused("---\n" + bomb + "---\n" + bomb + "---\n" + bomb)
    assert "file expands to more than" in p.message


def test_read_text_points_at_the_first_bad_byte() -> None:
    with pytest.raises(YamlProblem) as info:
        read_text("x.yaml", b"a: 1\nb: 2\nc: \xff\n")
    assert info.value.line == 3
    with pytest.raises(YamlProblem) as info:
        read_text("x.yaml", b"a: 1\n\x00")
    assert info.value.line == 2


def test_guess_identities_reads_top_level_lines_only() -> None:
    text = (
        "apiVersion: tva/v1\nkind: Device\nname: nas  # the NAS\nlabels: [oops\n"
        "---\nkind: 'Source'\nname: \"pub\"\nindexer:\n  name: nested\n"
        "---\nfoo: bar\n"
        "---\nkind: Fleet\n"
    )
    assert guess_identities(text) == [("Device", "nas"), ("Source", "pub"), ("Fleet", None)]


def _outcome(text: str, *, fast: bool) -> object:
    from controller.desired import yamlsafe

    try:
        docs = yamlsafe.parse_documents(text) if fast else yamlsafe._parse(text, fast=False)
    except yamlsafe.YamlProblem as e:
        return ("problem", e.message, e.line, e.hint)
    return [(d.data, d.lines, d.start_line) for d in docs]


def test_the_libyaml_path_and_the_python_path_agree() -> None:
    """parse_documents uses libyaml when it can; it must answer exactly as the careful path."""
    from pathlib import Path

    import yaml

    if not getattr(yaml, "__with_libyaml__", False):
        pytest.skip("PyYAML was built without libyaml here")
    root = Path(__file__).resolve().parents[2]
    files = [*(root / "fleet-state").rglob("*.yaml"), *(root / "examples").rglob("*.yaml"),
             *(root / "tests/desired/bad").rglob("*.yaml")]
    assert len(files) > 50
    extra = ["a: &x [1, 2]\nb: *x\n", "k: 1\nk: 2\n", "- !!python/object:os.system x\n",
             "[" * 100 + "]" * 100, "a: [1, 2\n", "x: \x07\n", "---\na: 1\n---\nb: 2\n"]
    for text in [f.read_text(errors="replace") for f in files] + extra:
        assert _outcome(text, fast=True) == _outcome(text, fast=False), text[:80]
