"""JSON Schema documents for the fleet repo's kinds and for the status and plan formats.

Editors that speak the YAML language server complete and check fleet files from these
schemas (each file carries a ``# yaml-language-server: $schema=...`` modeline), and CI can
validate documents without tva. They are generated from the pydantic models so they cannot
drift: ``tva schema`` writes them, ``tva schema --check`` and a test fail when the committed
files differ from what the models produce.

Pure: builds dicts and strings; writing files is the CLI's job. The rendering is canonical
(sorted keys, indent 2, trailing newline) so regenerating gives byte-identical files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema

from schemas.desired import KINDS, SUPPORTED_API_VERSIONS
from schemas.observed import NodeStatus
from schemas.plan import Plan
from schemas.types import format_duration

__all__ = [
    "DIALECT",
    "DOCUMENTS",
    "KIND_FILES",
    "SchemaDoc",
    "build",
    "build_all",
    "render",
    "render_all",
    "schema_filename",
]

DIALECT = "https://json-schema.org/draft/2020-12/schema"

KIND_FILES: dict[str, str] = {
    "Fleet": "fleet.yaml",
    "Device": "devices/NAME.yaml",
    "Duties": "duties.yaml",
    "CustodyRule": "custody/NAME.yaml",
    "Collection": "items/NAME.yaml",
    "Watchlist": "watchlists/NAME.yaml",
    "VpnProfile": "vpn/NAME.yaml",
    "Source": "sources/NAME.yaml",
    "Fabric": "fabric.yaml",
}
"""Where each kind conventionally lives in a fleet repo (the kind decides, not the folder)."""


@dataclass(frozen=True)
class SchemaDoc:
    """One generated schema file: its name (without ``.schema.json``), model and title."""

    name: str
    model: type[BaseModel]
    title: str
    kind: str | None = None
    """The fleet repo kind it describes; None for the status and plan formats."""

    @property
    def filename(self) -> str:
        return schema_filename(self.name)


def schema_filename(name: str) -> str:
    """``Device`` -> ``device.schema.json``."""
    return f"{name.lower()}.schema.json"


DOCUMENTS: tuple[SchemaDoc, ...] = (
    *(
        SchemaDoc(kind.lower(), model, f"tva {kind} ({KIND_FILES[kind]})", kind)
        for kind, model in KINDS.items()
    ),
    SchemaDoc("status", NodeStatus, "tva NodeStatus (published observed state)"),
    SchemaDoc("plan", Plan, "tva Plan (what each node would do, and why)"),
)

_COMMON_DESCRIPTIONS = {
    "apiVersion": "The schema version this file follows. This tva reads: "
    + ", ".join(SUPPORTED_API_VERSIONS)
    + ".",
    "kind": "The kind of resource; it decides what the document is, not the folder it is in.",
    "name": "The resource's name, unique among resources of its kind; other files refer to it "
    "by this name.",
    "description": "Free text for people; tva does not interpret it.",
}
"""Descriptions for the fields every resource shares, added where the model gives none."""


class _Generator(GenerateJsonSchema):
    """Pydantic's generator, adjusted for people who read YAML.

    No per-field titles derived from Python names (a title such as "Device Class" for the
    YAML key ``class`` misleads more than it helps; descriptions carry the meaning), defaults
    from default factories too, and defaults spelled as they are written in YAML.
    """

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def get_default_value(self, schema: Any) -> Any:
        # Show what a default factory gives (e.g. services: [transmission, controller]); the
        # models' factories are pure, so calling them here is safe.
        factory = schema.get("default_factory")
        if factory is not None and not schema.get("default_factory_takes_data"):
            return factory()
        return super().get_default_value(schema)

    def encode_default(self, dft: Any) -> Any:
        # A Duration default is written as the YAML spells it ("10m"), not ISO 8601 ("PT10M").
        if isinstance(dft, timedelta):
            return format_duration(dft)
        return super().encode_default(dft)


def build(doc: SchemaDoc) -> dict[str, Any]:
    """The JSON Schema of one document, with fields in model order (sorted only on render)."""
    schema = doc.model.model_json_schema(
        by_alias=True, mode="validation", schema_generator=_Generator
    )
    if doc.kind is not None:
        props = schema.get("properties", {})
        for key, text in _COMMON_DESCRIPTIONS.items():
            if key in props and "description" not in props[key]:
                props[key]["description"] = text
    head: dict[str, Any] = {
        "$schema": DIALECT,
        "$id": f"urn:tva:schema:{doc.name}",
        "title": doc.title,
    }
    schema.pop("title", None)
    return {**head, **schema}


def build_all() -> dict[str, dict[str, Any]]:
    """Every schema document by file name."""
    return {doc.filename: build(doc) for doc in DOCUMENTS}


def render(schema: dict[str, Any]) -> str:
    """Canonical text of a schema: sorted keys, indent 2, UTF-8, trailing newline."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_all() -> dict[str, str]:
    """Every schema file's text by file name."""
    return {name: render(schema) for name, schema in build_all().items()}
