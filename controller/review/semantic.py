"""The semantic diff of two desired states: what changed in meaning, not in text.

"custody/films: min 2 -> 3", "device seedbox added", "watchlist tv-shows: entry show
'X' added". Pure: two DesiredStates in, a list of changes out, sorted so the same pair always
renders the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from schemas.desired import DesiredState


@dataclass(frozen=True, order=True)
class Change:
    kind: str
    """The resource kind: fleet, device, duties, custody, collection, item, watchlist, vpn, source."""
    name: str
    op: str
    """added, removed or changed."""
    detail: str = ""
    """For changes: ``field: old -> new``."""

    def __str__(self) -> str:
        if self.op == "changed":
            return f"{self.kind} {self.name}: {self.detail}"
        return f"{self.kind} {self.name} {self.op}" + (f" ({self.detail})" if self.detail else "")


def semantic_diff(base: DesiredState, head: DesiredState) -> list[Change]:
    changes: list[Change] = []
    changes += _fields("fleet", base.fleet.name, _dump(base.fleet), _dump(head.fleet))
    changes += _fields(
        "duties", "pins",
        _dump(base.duties)["pins"] if base.duties else {},
        _dump(head.duties)["pins"] if head.duties else {},
    )
    for kind, attr in (
        ("device", "devices"),
        ("custody", "custody"),
        ("collection", "collections"),
        ("watchlist", "watchlists"),
        ("vpn", "vpn"),
        ("source", "sources"),
    ):
        old: dict[str, BaseModel] = getattr(base, attr)
        new: dict[str, BaseModel] = getattr(head, attr)
        for name in sorted(old.keys() - new.keys()):
            changes.append(Change(kind, name, "removed"))
        for name in sorted(new.keys() - old.keys()):
            changes.append(Change(kind, name, "added", _summary(kind, new[name])))
        for name in sorted(old.keys() & new.keys()):
            a, b = _dump(old[name]), _dump(new[name])
            if kind == "collection":
                a.pop("items", None)
                b.pop("items", None)
            changes += _fields(kind, name, a, b)
    for key in sorted(base.items.keys() - head.items.keys()):
        it = base.items[key]
        changes.append(Change("item", f"{it.name} [{key[:8]}]", "removed", f"collection {it.collection}"))
    for key in sorted(head.items.keys() - base.items.keys()):
        it = head.items[key]
        changes.append(Change("item", f"{it.name} [{key[:8]}]", "added", f"collection {it.collection}"))
    for key in sorted(base.items.keys() & head.items.keys()):
        a, b = _dump(base.items[key]), _dump(head.items[key])
        changes += _fields("item", f"{head.items[key].name} [{key[:8]}]", a, b)
    return sorted(changes)


def _dump(model: BaseModel | None) -> dict[str, Any]:
    if model is None:
        return {}
    data = model.model_dump(mode="json", by_alias=True, exclude={"api_version", "kind"})
    data.pop("apiVersion", None)
    data.pop("kind", None)
    return data


def _summary(kind: str, model: BaseModel) -> str:
    d = _dump(model)
    if kind == "device":
        return f"class {d.get('class')}"
    if kind == "custody":
        return f"min {d.get('min')}" + (f", max {d['max']}" if d.get("max") else "")
    if kind == "collection":
        return f"{len(d.get('items', []))} items, provenance {d.get('provenance')}"
    if kind == "watchlist":
        return f"device {d.get('device')}, {len(d.get('entries', []))} entries"
    return ""


def _fields(kind: str, name: str, old: Any, new: Any, prefix: str = "") -> list[Change]:
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[Change] = []
        for key in sorted(old.keys() | new.keys(), key=str):
            path = f"{prefix}.{key}" if prefix else str(key)
            out += _fields(kind, name, old.get(key), new.get(key), path)
        return out
    return [Change(kind, name, "changed", f"{prefix or 'value'}: {_show(old)} -> {_show(new)}")]


def _show(value: Any) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    return str(value)
