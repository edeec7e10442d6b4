"""The generated JSON Schemas: committed copies are current, and they agree with the loader.

Editors and CI check fleet files against these schemas without tva, so a schema that refuses
a file tva accepts (or the reverse, for the common mistakes) would mislead; the checks below
run the real ``jsonschema`` validator over every shipped fleet and over typical mistakes.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import ValidationError

from controller.generate.json_schema import (
    DOCUMENTS,
    build,
    build_all,
    render,
    render_all,
    schema_filename,
)
from schemas.desired import KINDS
from schemas.observed import NodeStatus, TransmissionStatus
from schemas.plan import Action, ActionKind, Plan
from tests.conftest import REFERENCE_FLEET, REPO_ROOT

SCHEMA_DIR = REPO_ROOT / "schemas" / "json"
FLEETS = [REFERENCE_FLEET, *sorted(p.parent for p in (REPO_ROOT / "examples").glob("*/fleet.yaml"))]
YAML_FILES = sorted(f for root in FLEETS for f in root.rglob("*.yaml"))
MODELINE = re.compile(r"^# yaml-language-server: \$schema=(\S+)$")


@functools.cache
def _validator(filename: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(build_all()[filename])


def _errors(filename: str, doc: Any) -> list[str]:
    return [e.message for e in _validator(filename).iter_errors(doc)]


def test_one_schema_per_kind_plus_status_and_plan() -> None:
    names = {doc.filename for doc in DOCUMENTS}
    assert names == {schema_filename(k) for k in KINDS} | {
        "status.schema.json",
        "plan.schema.json",
    }
    assert "duties.schema.json" in names and "custodyrule.schema.json" in names


@pytest.mark.parametrize("doc", DOCUMENTS, ids=lambda d: d.name)
def test_schema_is_valid_draft_2020_12(doc: Any) -> None:
    schema = build(doc)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$id"] == f"urn:tva:schema:{doc.name}"
    assert schema["title"].startswith("tva ")


@pytest.mark.parametrize("filename", sorted(render_all()))
def test_committed_schema_matches_models(filename: str) -> None:
    committed = SCHEMA_DIR / filename
    assert committed.is_file(), f"{filename} is missing: run `tva schema`"
    assert committed.read_text(encoding="utf-8") == render_all()[filename], (
        f"schemas/json/{filename} is stale: the models changed; run `tva schema`"
    )


def test_no_obsolete_schema_files() -> None:
    assert {p.name for p in SCHEMA_DIR.glob("*.schema.json")} == set(render_all())


def test_rendering_is_canonical_and_stable() -> None:
    first = render_all()
    assert render_all() == first
    for text in first.values():
        assert text.endswith("}\n") and not text.endswith("\n\n")
        assert render(json.loads(text)) == text  # sorted keys, indent 2


def test_aliases_are_used() -> None:
    device = build_all()["device.schema.json"]
    assert {"apiVersion", "class"} <= set(device["properties"])
    assert "device_class" not in device["properties"]
    assert "api_version" not in device["properties"]
    assert device["properties"]["apiVersion"]["const"] == "tva/v1"


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_shipped_yaml_validates_against_its_schema(path: Path) -> None:
    docs = _docs(path)
    assert docs
    for doc in docs:
        assert _errors(schema_filename(doc["kind"]), doc) == []


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_modeline_points_at_the_schema_of_the_kind(path: Path) -> None:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    m = MODELINE.match(first)
    assert m, f"{path} does not start with a yaml-language-server modeline"
    target = (path.parent / m.group(1)).resolve()
    assert target.is_file(), f"{path}: {m.group(1)} does not exist"
    assert target.parent == SCHEMA_DIR.resolve()
    (doc,) = _docs(path)
    assert target.name == schema_filename(doc["kind"])


DEVICE = {
    "apiVersion": "tva/v1",
    "kind": "Device",
    "name": "nas",
    "class": "server",
    "storage": [{"path": "/srv", "capacity": "1TiB"}],
    "credentials": {"api_token": {"env": "TOKEN"}},
}
FLEET = {"apiVersion": "tva/v1", "kind": "Fleet", "name": "home"}
WATCHLIST = {"apiVersion": "tva/v1", "kind": "Watchlist", "name": "w", "device": "tv"}


def _with(base: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(base)
    node: Any = doc
    for key in path[:-1]:
        node = node.setdefault(key, {}) if isinstance(key, str) else node[key]
    node[path[-1]] = value
    return doc


MISTAKES = {
    "unknown field": _with(DEVICE, ("clas",), "server"),
    "bad class": _with(DEVICE, ("class",), "toaster"),
    "bad name": _with(DEVICE, ("name",), "My NAS"),
    "inline secret": _with(DEVICE, ("credentials", "api_token"), "hunter2"),
    "two secret sources": _with(DEVICE, ("credentials", "api_token"), {"env": "A", "file": "/x"}),
    "empty secret": _with(DEVICE, ("credentials", "api_token"), {}),
    "bad size": _with(DEVICE, ("storage", 0, "capacity"), "lots"),
    "bad duration": _with(FLEET, ("policy", "freshness", "grace"), "2 hours"),
    "floor too high": {
        "apiVersion": "tva/v1", "kind": "CustodyRule", "name": "r",
        "select": {"collections": ["c"]}, "min": 65,
    },
    "wrong apiVersion": _with(FLEET, ("apiVersion",), "tva/v9"),
    "watch entry with show and film": _with(WATCHLIST, ("entries",), [{"show": "a", "film": "b"}]),
    "item without identity": {
        "apiVersion": "tva/v1", "kind": "Collection", "name": "c", "items": [{"name": "x"}],
    },
    "unknown duty": {"apiVersion": "tva/v1", "kind": "Duties", "pins": {"boss": "nas"}},
}


@pytest.mark.parametrize("doc", list(MISTAKES.values()), ids=list(MISTAKES))
def test_schema_and_models_both_refuse(doc: dict[str, Any]) -> None:
    filename = schema_filename(doc["kind"])
    assert _errors(filename, doc), "the JSON Schema accepted it"
    with pytest.raises(ValidationError):
        KINDS[doc["kind"]].model_validate(doc)


GOOD = {
    "device": DEVICE,
    "fleet with durations": _with(FLEET, ("policy", "freshness"), {"grace": "90m", "stale_after": 600}),
    "duty pin as a string or a list": {
        "apiVersion": "tva/v1", "kind": "Duties",
        "pins": {"acquirer": "nas", "custodian": ["nas", "tv"]},
    },
    "magnet watch entry": _with(
        WATCHLIST, ("entries",),
        [{"magnet": "magnet:?xt=urn:btih:" + "a" * 40}],
    ),
}


@pytest.mark.parametrize("doc", list(GOOD.values()), ids=list(GOOD))
def test_schema_and_models_both_accept(doc: dict[str, Any]) -> None:
    assert _errors(schema_filename(doc["kind"]), doc) == []
    KINDS[doc["kind"]].model_validate(doc)


def _properties_with_defaults(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for owner in [schema, *schema.get("$defs", {}).values()]:
        for name, prop in owner.get("properties", {}).items():
            if "default" in prop:
                found.append((name, prop))
    return found


@pytest.mark.parametrize("doc", DOCUMENTS, ids=lambda d: d.name)
def test_defaults_are_valid_values(doc: Any) -> None:
    """A default shown to an editor is something the user could write (e.g. "10m", not "PT10M")."""
    schema = build(doc)
    checked = 0
    for name, prop in _properties_with_defaults(schema):
        sub = {k: v for k, v in prop.items() if k != "default"}
        sub["$defs"] = schema.get("$defs", {})
        errors = [e.message for e in jsonschema.Draft202012Validator(sub).iter_errors(prop["default"])]
        assert errors == [], f"default of {name}: {errors}"
        checked += 1
    assert checked


def test_published_documents_validate() -> None:
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    status = NodeStatus(
        node="nas", observed_at=now, controller_version="0.1.0",
        transmission=TransmissionStatus(reachable=False, error="connection refused"),
    )
    plan = Plan(
        now=now, nodes=["nas"],
        actions=[Action(id="nas/add/" + "a" * 40, node="nas", kind=ActionKind.add,
                        target="a" * 40, reason="item has 0/1 copies")],
    )
    assert _errors("status.schema.json", status.model_dump(mode="json")) == []
    assert _errors("plan.schema.json", plan.model_dump(mode="json")) == []
    broken = plan.model_dump(mode="json")
    broken["actions"][0]["kind"] = "explode"
    assert _errors("plan.schema.json", broken)
