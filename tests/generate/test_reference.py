"""docs/reference.md: committed copy is current, and it covers every field the loader reads."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from controller.generate.reference import KIND_EXAMPLES, render_reference
from schemas.desired import KINDS, MPV_ALLOWED_OPTIONS, MPV_REFUSED_OPTIONS
from tests.conftest import REPO_ROOT

REFERENCE = REPO_ROOT / "docs" / "reference.md"


@pytest.fixture(scope="module")
def text() -> str:
    return render_reference()


def test_committed_reference_matches_models(text: str) -> None:
    assert REFERENCE.is_file(), "docs/reference.md is missing: run `tva schema`"
    assert REFERENCE.read_text(encoding="utf-8") == text, (
        "docs/reference.md is stale: the models changed; run `tva schema`"
    )


def test_rendering_is_deterministic(text: str) -> None:
    assert render_reference() == text
    assert text.endswith("\n") and not text.endswith("\n\n")


def _models(annotation: Any) -> list[type[BaseModel]]:
    out: list[type[BaseModel]] = []
    stack = [annotation]
    while stack:
        a = stack.pop()
        if isinstance(a, type) and issubclass(a, BaseModel):
            out.append(a)
        stack.extend(getattr(a, "__args__", ()) or ())
    return out


def _every_field() -> list[tuple[str, str]]:
    """(model, YAML key) for every field of every kind, nested models included."""
    seen: set[type[BaseModel]] = set()
    todo: list[type[BaseModel]] = list(KINDS.values())
    fields = []
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.add(cls)
        for name, info in cls.model_fields.items():
            fields.append((cls.__name__, info.alias or name))
            todo.extend(_models(info.annotation))
    return sorted(fields)


@pytest.mark.parametrize("model,key", _every_field())
def test_every_yaml_field_has_a_row(text: str, model: str, key: str) -> None:
    assert re.search(rf"^\| `{re.escape(key)}` \| .+ \| .* \| .* \|$", text, re.M), (
        f"{model}.{key} is not in the reference"
    )


def test_each_kind_has_a_section_with_its_file(text: str) -> None:
    for kind in KINDS:
        assert f"\n## {kind}\n" in text
    assert "File: `devices/NAME.yaml`" in text
    assert "File: `fleet.yaml`" in text


def test_field_details(text: str) -> None:
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `([^`]+)` \|.*$", text, re.M)}
    assert "**required**" in rows["class"] and "`server`" in rows["class"]
    assert "`10m`" in rows["stale_after"]  # durations shown as written in YAML
    assert "≥ 1, ≤ 10,000" in rows["history"]  # numeric constraints
    assert "`[\"transmission\", \"controller\"]`" in rows["services"]  # factory defaults
    assert "Free space a custodian keeps" in rows["reserve"]  # Field(description=...)


def test_syntaxes_and_rules(text: str) -> None:
    for heading in ("Durations", "Sizes", "Secret references", "Schema versions", "The fleet repo"):
        assert re.search(rf"^#+ {heading}$", text, re.M), heading
    assert "`GiB`" in text and "`w` (604,800 s)" in text
    assert "This tva reads: `tva/v1`." in text


def test_mpv_options_are_listed(text: str) -> None:
    for option in MPV_ALLOWED_OPTIONS | MPV_REFUSED_OPTIONS:
        assert f"`{option}`" in text, option
    allowed, refused = text.split("These are refused outright", 1)
    assert "`input-conf`" in refused and "`input-conf`" not in allowed.split("#### mpv options")[1]


def _anchors(text: str) -> set[str]:
    anchors = set()
    fenced = False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            heading = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", heading).replace(" ", "-"))
    return anchors


def test_internal_links_resolve(text: str) -> None:
    anchors = _anchors(text)
    links = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert links and links <= anchors, sorted(links - anchors)
    assert "player" in anchors  # the loader's hint points at docs/reference.md#player


def test_repo_links_resolve(text: str) -> None:
    targets = set(re.findall(r"\]\(\.\./([^)#]+)\)", text))
    assert targets
    for target in targets:
        assert (REPO_ROOT / target).exists(), target


@pytest.mark.parametrize("kind", sorted(KIND_EXAMPLES))
def test_examples_show_their_kind(kind: str) -> None:
    docs = list(yaml.safe_load_all((REPO_ROOT / KIND_EXAMPLES[kind]).read_text(encoding="utf-8")))
    assert [d["kind"] for d in docs if d] == [kind]
