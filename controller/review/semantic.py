"""The semantic diff of two desired states: what changed in meaning, not in text.

"custody films: min: 2 -> 3", "device seedbox added (class seedbox)", "watchlist tv-shows:
entries: show 'X' added". Pure: two DesiredStates in, a list of changes out, sorted so the same
pair always renders the same way. Comments, key order, file names and YAML spelling
(``10m`` vs ``600s``) are not changes: both sides are compared as validated models.

Lists whose elements have an identity are compared element by element: storage roots by
path, watchlist entries by show, film or magnet. Sizes are shown in binary units.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from schemas.desired import DesiredState
from schemas.types import format_size

__all__ = ["KIND_ORDER", "Change", "semantic_diff"]

KIND_ORDER = ("fleet", "duties", "device", "custody", "collection", "item", "watchlist", "vpn",
              "source", "fabric")
"""The order kinds are listed in: the fleet first, then who does what, then what is kept."""
_KIND_RANK = {k: i for i, k in enumerate(KIND_ORDER)}
_OP_RANK = {"removed": 0, "added": 1, "changed": 2}
_SIZE_FIELDS = frozenset({"capacity", "size", "reserve"})
_KEYED_LISTS = {"storage": ("path",), "entries": ("show", "film", "magnet"),
                "members": ("device",)}
"""List fields whose elements are matched by identity, and the fields that give it."""


@dataclass(frozen=True)
class Change:
    kind: str
    """The resource kind: fleet, duties, device, custody, collection, item, watchlist, vpn,
    source, fabric."""
    name: str
    op: str
    """added, removed or changed."""
    detail: str = ""
    """For changes: ``field: old -> new``; for additions, a short summary."""

    def __str__(self) -> str:
        if self.op == "changed":
            return f"{self.kind} {self.name}: {self.detail}"
        return f"{self.kind} {self.name} {self.op}" + (f" ({self.detail})" if self.detail else "")

    @property
    def sort_key(self) -> tuple[int, str, int, str]:
        return (_KIND_RANK.get(self.kind, len(_KIND_RANK)), self.name,
                _OP_RANK.get(self.op, 3), self.detail)


def semantic_diff(base: DesiredState, head: DesiredState) -> list[Change]:
    """Every difference in meaning between ``base`` and ``head``, in a stable order."""
    changes: list[Change] = []
    changes += _fields("fleet", head.fleet.name, _dump(base.fleet), _dump(head.fleet))
    old_pins = _dump(base.duties).get("pins", {}) if base.duties else {}
    new_pins = _dump(head.duties).get("pins", {}) if head.duties else {}
    for duty in sorted(old_pins.keys() | new_pins.keys()):
        a, b = old_pins.get(duty), new_pins.get(duty)
        if a != b:
            changes.append(Change("duties", duty, "changed",
                                  f"pin: {_pins(a)} -> {_pins(b)}"))
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
                # Items are compared one by one below, by info-hash, with their resolved
                # provenance and gates.
                a.pop("items", None)
                b.pop("items", None)
            changes += _fields(kind, name, a, b)
    if base.fabric is not None and head.fabric is None:
        changes.append(Change("fabric", base.fabric.name, "removed"))
    elif head.fabric is not None and base.fabric is None:
        changes.append(Change("fabric", head.fabric.name, "added", _summary("fabric", head.fabric)))
    elif base.fabric is not None and head.fabric is not None:
        changes += _fields("fabric", head.fabric.name, _dump(base.fabric), _dump(head.fabric))
    for key in sorted(base.items.keys() - head.items.keys()):
        it = base.items[key]
        changes.append(Change("item", _item_name(it.name, key), "removed", _where(it.collection)))
    acquired = _acquired(head)
    for key in sorted(head.items.keys() - base.items.keys()):
        it = head.items[key]
        changes.append(Change("item", _item_name(it.name, key), "added",
                              _where(it.collection) + acquired.get(key, "")))
    for key in sorted(base.items.keys() & head.items.keys()):
        a, b = _dump(base.items[key]), _dump(head.items[key])
        changes += _fields("item", _item_name(head.items[key].name, key), a, b)
    return sorted(changes, key=lambda c: c.sort_key)


def _acquired(state: DesiredState) -> dict[str, str]:
    """For items the acquirer committed: what for, from where, why (docs/acquisition.md)."""
    out: dict[str, str] = {}
    for coll in state.collections.values():
        rec = coll.acquired
        if rec is None:
            continue
        text = (f"; acquired for {rec.entry} from source {rec.source}: {rec.release} ({rec.reason})"
                + (f"; supersedes dead item {rec.supersedes[:12]}" if rec.supersedes else ""))
        for it in coll.items:
            if it.key is not None:
                out[it.key] = text
    return out


def _pins(value: Any) -> str:
    if not value:
        return "(none)"
    return ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)


def _item_name(name: str, key: str) -> str:
    return f"{name} [{key[:8]}]"


def _where(collection: str | None) -> str:
    return f"collection {collection}" if collection else "a watchlist magnet"


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
        n = len(d.get("entries", []))
        return f"device {d.get('device')}, {n} entr{'y' if n == 1 else 'ies'}"
    if kind == "vpn":
        return f"{d.get('type')}, devices {_show(d.get('devices'))}"
    if kind == "source":
        return f"provenance {d.get('provenance')}"
    if kind == "fabric":
        members = [m.get("device") for m in d.get("members", [])]
        return f"subnet {_show(d.get('subnet'))}, members {_show(members)}"
    return ""


def _identity(element: Any, fields: tuple[str, ...]) -> str | None:
    if not isinstance(element, dict):
        return None
    for f in fields:
        if element.get(f) is not None:
            return f"{f} {element[f]!r}" if f != "path" else str(element[f])
    return None


def _keyed(items: list[Any], fields: tuple[str, ...]) -> dict[str, Any] | None:
    """``items`` by identity, or None when some element has none or two share one."""
    out: dict[str, Any] = {}
    for element in items:
        ident = _identity(element, fields)
        if ident is None or ident in out:
            return None
        out[ident] = element
    return out


def _fields(kind: str, name: str, old: Any, new: Any, prefix: str = "") -> list[Change]:
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[Change] = []
        for key in sorted(old.keys() | new.keys(), key=str):
            path = f"{prefix}.{key}" if prefix else str(key)
            out += _fields(kind, name, old.get(key), new.get(key), path)
        return out
    leaf = prefix.rsplit(".", 1)[-1]
    if isinstance(old, list) and isinstance(new, list) and leaf in _KEYED_LISTS:
        a, b = _keyed(old, _KEYED_LISTS[leaf]), _keyed(new, _KEYED_LISTS[leaf])
        if a is not None and b is not None:
            out = []
            for ident in sorted(a.keys() - b.keys()):
                out.append(Change(kind, name, "changed", f"{prefix}: {ident} removed"))
            for ident in sorted(b.keys() - a.keys()):
                out.append(Change(kind, name, "changed", f"{prefix}: {ident} added"))
            for ident in sorted(a.keys() & b.keys()):
                out += _fields(kind, name, a[ident], b[ident], f"{prefix}[{ident}]")
            return out
    return [Change(kind, name, "changed",
                   f"{prefix or 'value'}: {_show(old, leaf)} -> {_show(new, leaf)}")]


def _show(value: Any, field: str = "") -> str:
    if value is None:
        return "(unset)"
    if field in _SIZE_FIELDS and isinstance(value, int) and not isinstance(value, bool):
        return format_size(value)
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_show(v, str(k))}" for k, v in value.items()) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
