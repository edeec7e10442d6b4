"""Rules that span files: references, duplicates, duty pins, reachable floors; item resolution.

Each problem points at the line of the field that holds the bad reference, so the person who
wrote it can find it.

The checks also run when some files failed to load. A resource that failed validation is
still *defined*: ``Resources.broken`` holds its kind and name, references to it are not
reported again, and a rule whose answer depends on what the broken resource would have said
(a device's class, a VPN profile's existence, a collection's items) is skipped rather than
guessed. A check may therefore miss a problem while another is unfixed; it never invents one.
"""

from __future__ import annotations

import io
import ipaddress
import posixpath
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from controller.desired.fabric import check_fabric
from controller.desired.yamlsafe import Document
from controller.errors import Problem
from schemas.desired import (
    Collection,
    CustodyRule,
    DesiredState,
    Device,
    DutyPins,
    Fleet,
    Model,
    Provenance,
    ResolvedItem,
    Source,
    VpnProfile,
    Watchlist,
    infohash_from_magnet,
)
from schemas.fabric import Fabric
from schemas.rules import SINGLETON_DUTIES, eligible_custodians, ineligibility

__all__ = [
    "MAX_TORRENT_BYTES",
    "Origin",
    "Resources",
    "check_and_resolve",
    "warnings",
]

MAX_TORRENT_BYTES = 10 << 20


@dataclass(frozen=True)
class Origin:
    file: str
    doc: Document

    def at(self, *path: str | int) -> tuple[str, int]:
        return self.file, self.doc.line_of(tuple(path))


_NAME = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$")


@dataclass
class Resources:
    """Validated resources as read, with where each came from, before cross-checks."""

    by_kind: dict[str, list[tuple[Any, Origin]]] = field(default_factory=dict)
    broken: dict[str, set[str]] = field(default_factory=dict)
    """Kind (as written in YAML, e.g. ``Device``) -> names of resources that failed to load."""
    unnamed: set[str] = field(default_factory=set)
    """Kinds with a broken resource whose name is unreadable: any name of that kind may exist."""

    def add(self, model: Model, origin: Origin) -> None:
        kind = type(model).__name__
        self.by_kind.setdefault(kind, []).append((model, origin))

    def add_broken(self, kind: str, name: Any) -> None:
        """Record a resource of ``kind`` that failed to load; ``name`` as found in the raw data."""
        self.broken.setdefault(kind, set())
        if isinstance(name, str) and _NAME.match(name):
            self.broken[kind].add(name)
        else:
            self.unnamed.add(kind)

    def of(self, cls: type[Any]) -> list[tuple[Any, Origin]]:
        return self.by_kind.get(cls.__name__, [])

    def any_broken(self, kind: str) -> bool:
        return kind in self.broken

    def maybe_defined(self, kind: str, name: str) -> bool:
        """Is ``name`` the name of a ``kind`` resource that failed to load (or might be)?"""
        return kind in self.unnamed or name in self.broken.get(kind, ())


class _Collector:
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems

    def __call__(self, origin: Origin, path: tuple[str | int, ...], message: str, hint: str = "") -> None:
        file, line = origin.at(*path)
        shown = ""
        for p in path:
            shown += f"[{p}]" if isinstance(p, int) else ("." if shown else "") + p
        self.problems.append(Problem(file, line, shown, message, hint))


def _unique(
    entries: list[tuple[Any, Origin]], what: str, report: _Collector
) -> dict[str, tuple[Any, Origin]]:
    out: dict[str, tuple[Any, Origin]] = {}
    for model, origin in sorted(entries, key=lambda e: (e[1].file, e[1].doc.start_line)):
        if model.name in out:
            first = out[model.name][1]
            report(origin, ("name",), f"duplicate {what} name {model.name!r}",
                   f"first defined at {first.file}:{first.doc.line_of(('name',))}")
            continue
        out[model.name] = (model, origin)
    return out


def _unknown(name: str, known: Iterable[str], what: str) -> tuple[str, str]:
    import difflib

    names = sorted(known)
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"did you mean {close[0]!r}?" if close else (
        f"known {what}s: {', '.join(names)}" if names else f"no {what} is defined"
    )
    return f"unknown {what} {name!r}", hint


def warnings(resources: Resources) -> list[Problem]:
    """What is valid but will not work as the owner expects (``tva validate`` shows them; they
    do not make a revision invalid): peer addresses the fleet's trackers cannot hand out.

    Transmission drops peer addresses in 127.0.0.0/8 and ::1 that come from a tracker, and an
    unspecified address or port 0 reaches nobody: no other node could fetch from that device.
    """
    out: list[Problem] = []
    for dev, origin in resources.of(Device):
        peer = dev.addresses.peer
        if peer is None:
            continue
        host, _, port = peer.rpartition(":")
        why = None
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            address = None
        if host.lower() == "localhost" or (address is not None and address.is_loopback):
            why = "is a loopback address, which Transmission drops when a tracker hands it out"
        elif address is not None and address.is_unspecified:
            why = "is the unspecified address, which reaches nobody"
        elif int(port) == 0 or int(port) > 65535:
            why = f"has port {port}, which reaches nobody"
        if why is not None:
            file, line = origin.at("addresses", "peer")
            out.append(Problem(file, line, "addresses.peer",
                               f"{peer} {why}: no other node can fetch from {dev.name}",
                               "give the address other nodes reach this device's Transmission at"))
    return sorted(out)


def check_and_resolve(
    resources: Resources,
    problems: list[Problem],
    *,
    root: str,
    reader: Callable[[str, int], bytes],
    revision: str | None,
) -> DesiredState | None:
    report = _Collector(problems)

    fleets = resources.of(Fleet)
    if not fleets and not resources.any_broken("Fleet"):
        problems.append(Problem(posixpath.join(root, "fleet.yaml"), 0, "",
                                "no Fleet resource found", "add fleet.yaml with kind: Fleet; tva init writes one"))
    for _, origin in fleets[1:]:
        report(origin, ("kind",), "a second Fleet resource",
               f"the fleet is defined at {fleets[0][1].file}; keep one")
    fleet: Fleet | None = fleets[0][0] if fleets else None

    devices = _unique(resources.of(Device), "device", report)
    vpn = _unique(resources.of(VpnProfile), "VPN profile", report)
    sources = _unique(resources.of(Source), "source", report)
    collections = _unique(resources.of(Collection), "collection", report)
    watchlists = _unique(resources.of(Watchlist), "watchlist", report)
    custody = _unique(resources.of(CustodyRule), "custody rule", report)
    duty_files = resources.of(DutyPins)
    for _, origin in duty_files[1:]:
        report(origin, ("kind",), "a second Duties resource",
               f"duty pins are defined at {duty_files[0][1].file}; keep one")
    duties: DutyPins | None = duty_files[0][0] if duty_files else None

    device_models = {k: v[0] for k, v in devices.items()}
    vpn_models = {k: v[0] for k, v in vpn.items()}

    def known(kind: str, name: str, valid: dict[str, Any]) -> bool:
        return name in valid or resources.maybe_defined(kind, name)

    def unknown(name: str, valid: dict[str, Any], kind: str, what: str) -> tuple[str, str]:
        return _unknown(name, [*valid, *resources.broken.get(kind, ())], what)

    # Devices -> VPN profiles.
    for dev, origin in devices.values():
        if dev.vpn is not None and not known("VpnProfile", dev.vpn, vpn):
            report(origin, ("vpn",), *unknown(dev.vpn, vpn, "VpnProfile", "VPN profile"))
    for prof, origin in vpn.values():
        for i, name in enumerate(prof.devices):
            if not known("Device", name, devices):
                report(origin, ("devices", i), *unknown(name, devices, "Device", "device"))
            elif name in device_models and device_models[name].vpn in vpn_models.keys() - {prof.name}:
                # Only a device that names another *existing* profile: a device naming an
                # unknown profile is reported once, at the device.
                report(origin, ("devices", i),
                       f"device {name!r} uses VPN profile {device_models[name].vpn!r}, not this one",
                       "a device uses one VPN profile; fix the device's vpn: or this list")

    # Notification senders (fleet.yaml notify.senders).
    if fleet is not None:
        f_origin = fleets[0][1]
        for i, name in enumerate(fleet.notify.senders):
            if not known("Device", name, devices):
                report(f_origin, ("notify", "senders", i),
                       *unknown(name, devices, "Device", "device"))

    # Duty pins.
    if duties is not None:
        d_origin = duty_files[0][1]
        for duty, names in duties.pins.items():
            if duty in SINGLETON_DUTIES and len(names) > 1:
                report(d_origin, ("pins", duty.value),
                       f"{duty.value} is held by at most one device; {len(names)} pinned")
            for i, name in enumerate(names):
                at = ("pins", duty.value, i) if len(names) > 1 else ("pins", duty.value)
                if not known("Device", name, devices):
                    report(d_origin, at, *unknown(name, devices, "Device", "device"))
                    continue
                dev = device_models.get(name)
                if dev is None:
                    continue  # the device failed to load: its class and services are unknown
                if dev.vpn is not None and dev.vpn not in vpn_models:
                    continue  # its VPN profile is unknown or failed to load: no verdict on VPN rules
                why = ineligibility(duty, dev, vpn_models)
                if why:
                    report(d_origin, at,
                           f"pinning {duty.value} to {name!r} breaks a duty invariant: {why}")

    # Sources referenced by collections and items.
    for coll, origin in collections.values():
        if coll.source is not None and not known("Source", coll.source, sources):
            report(origin, ("source",), *unknown(coll.source, sources, "Source", "source"))
        if coll.part_of is not None and not known("Collection", coll.part_of, collections):
            report(origin, ("part_of",),
                   *unknown(coll.part_of, collections, "Collection", "collection"))
        for i, item in enumerate(coll.items):
            if item.source is not None and not known("Source", item.source, sources):
                report(origin, ("items", i, "source"),
                       *unknown(item.source, sources, "Source", "source"))

    # Items: resolve keys (reading committed .torrent files), reject duplicates.
    items: dict[str, ResolvedItem] = {}
    item_origin: dict[str, tuple[Origin, tuple[str | int, ...]]] = {}
    source_models = {k: v[0] for k, v in sources.items()}
    for coll, origin in sorted(collections.values(), key=lambda c: c[0].name):
        for i, item in enumerate(coll.items):
            key, size = item.key, item.size
            private_flag: bool | None = None
            if item.torrent is not None:
                got = _read_torrent(item.torrent, reader, report, origin, ("items", i, "torrent"))
                if got is None:
                    continue
                t_hash, t_size, private_flag = got
                if key is not None and key != t_hash:
                    report(origin, ("items", i, "torrent"),
                           f"{item.torrent} has info-hash {t_hash}, not {key}",
                           "fix the infohash/magnet or commit the right .torrent")
                    continue
                key, size = t_hash, (size if size is not None else t_size)
            assert key is not None
            if key in items:
                first, fpath = item_origin[key]
                report(origin, ("items", i),
                       f"item {key} is declared twice",
                       f"also at {first.file}:{first.doc.line_of(fpath)}; keep one")
                continue
            source_name = item.source or coll.source
            src = source_models.get(source_name) if source_name else None
            provenance = item.provenance or (src.provenance if src else None) or coll.provenance
            f2f = provenance is Provenance.private or bool(src and src.effective_f2f_only)
            items[key] = ResolvedItem(
                key=key, name=item.name, collection=coll.part_of or coll.name, size=size,
                labels=tuple(sorted({*coll.labels, *item.labels})), provenance=provenance,
                source=source_name, f2f_only=f2f, magnet=item.magnet, torrent=item.torrent,
                episode=item.episode, private_flag=private_flag,
            )
            item_origin[key] = (origin, ("items", i))

    # Superseded items (the reaper's last rung, docs/acquisition.md): an acquired replacement
    # that names a dead item takes its place; the dead item is no longer desired.
    for coll, _origin in collections.values():
        dead = coll.acquired.supersedes if coll.acquired is not None else None
        if dead is None or dead not in items:
            continue
        replacements = [it.key for it in coll.items if it.key in items and it.key != dead]
        if replacements:
            del items[dead]

    # Watchlists.
    for wl, origin in watchlists.values():
        if not known("Device", wl.device, devices):
            report(origin, ("device",), *unknown(wl.device, devices, "Device", "device"))
        if Provenance.private in wl.search:
            report(origin, ("search",), "private sources are never searched",
                   "remove private from search; private items come only from friends")
        for i, entry in enumerate(wl.entries):
            if entry.collection is not None and not known("Collection", entry.collection, collections):
                report(origin, ("entries", i, "collection"),
                       *unknown(entry.collection, collections, "Collection", "collection"))
            if entry.magnet is not None:
                key = infohash_from_magnet(entry.magnet)
                assert key is not None
                if key not in items:
                    items[key] = ResolvedItem(
                        key=key, name=f"{wl.name}: magnet {key[:8]}", collection=None, size=None,
                        labels=(), provenance=Provenance.public, source=None, f2f_only=False,
                        magnet=entry.magnet, torrent=None, episode=None,
                    )

    # Custody rules.
    for rule, origin in custody.values():
        sel = rule.select
        for i, name in enumerate(sel.collections):
            if not known("Collection", name, collections):
                report(origin, ("select", "collections", i),
                       *unknown(name, collections, "Collection", "collection"))
        for i, name in enumerate(sel.watchlists):
            if not known("Watchlist", name, watchlists):
                report(origin, ("select", "watchlists", i),
                       *unknown(name, watchlists, "Watchlist", "watchlist"))
        for field_name in ("devices", "exclude_devices"):
            for i, name in enumerate(getattr(rule.placement, field_name)):
                if not known("Device", name, devices):
                    report(origin, ("placement", field_name, i),
                           *unknown(name, devices, "Device", "device"))
        if resources.any_broken("Device"):
            continue  # a device that failed to load might be one more custodian: no verdict
        eligible = eligible_custodians(rule, device_models, vpn_models, duties)
        if rule.min > len(eligible):
            listed = ", ".join(sorted(eligible)) or "none"
            report(origin, ("min",),
                   f"floor {rule.min} is higher than the {len(eligible)} eligible custodians ({listed})",
                   "lower min, widen placement, or add custodian devices")

    # Players: queues name known items (unknowable while a collection or watchlist is broken).
    by_name = {it.name: k for k, it in items.items()}
    items_complete = not (resources.any_broken("Collection") or resources.any_broken("Watchlist"))
    for dev, origin in devices.values():
        if dev.player is None or not items_complete:
            continue
        for i, entry in enumerate(dev.player.queue):
            if entry.lower() not in items and entry not in by_name:
                report(origin, ("player", "queue", i), f"unknown item {entry!r}",
                       "name an item by its name or info-hash")

    fabric = check_fabric(
        resources.of(Fabric), devices, lambda n: known("Device", n, devices),
        lambda n: unknown(n, devices, "Device", "device"), report)

    if problems or fleet is None:
        return None
    return DesiredState(
        revision=revision,
        fleet=fleet,
        devices=dict(sorted(device_models.items())),
        duties=duties,
        custody={k: v[0] for k, v in sorted(custody.items())},
        collections={k: v[0] for k, v in sorted(collections.items())},
        watchlists={k: v[0] for k, v in sorted(watchlists.items())},
        vpn=dict(sorted(vpn_models.items())),
        sources=dict(sorted(source_models.items())),
        items=dict(sorted(items.items())),
        fabric=fabric,
    )


def _read_torrent(
    rel: str,
    reader: Callable[[str, int], bytes],
    report: _Collector,
    origin: Origin,
    path: tuple[str | int, ...],
) -> tuple[str, int, bool] | None:
    import torf

    try:
        data = reader(rel, MAX_TORRENT_BYTES)
    except OSError:
        report(origin, path, f"{rel} does not exist in the repo", "commit the .torrent file or fix the path")
        return None
    if len(data) > MAX_TORRENT_BYTES:
        report(origin, path, f"{rel} is larger than {MAX_TORRENT_BYTES >> 20} MiB")
        return None
    try:
        t = torf.Torrent.read_stream(io.BytesIO(data), validate=True)
        return str(t.infohash).lower(), int(t.size), bool(t.private)
    except (torf.TorfError, ValueError, TypeError) as e:
        report(origin, path, f"{rel} is not a valid .torrent file: {e}")
        return None
    except RecursionError:  # bencode nested deeper than the decoder's recursion can follow
        report(origin, path, f"{rel} is not a valid .torrent file: nested too deeply")
        return None
