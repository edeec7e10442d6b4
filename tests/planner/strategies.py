"""Hypothesis strategies: small random fleets (desired state) and observed states for them.

The fleets are built straight from the models (not YAML) and are not required to pass the
loader's cross-file checks: a floor higher than the eligible custodians, a watchlist on a
device without a player... the planner must stay safe and deterministic on those too.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from schemas.desired import (
    Collection,
    CustodyRule,
    DesiredState,
    Device,
    DutyPins,
    Fleet,
    Provenance,
    ResolvedItem,
    Source,
    VpnProfile,
    Watchlist,
)
from schemas.observed import (
    NodeStatus,
    PlayerStatus,
    SessionStatus,
    StorageStatus,
    TorrentState,
    TorrentStatus,
    TransmissionStatus,
    VpnState,
)

NOW = datetime(2025, 6, 1, 20, 0, tzinfo=UTC)
GiB = 1 << 30
NAMES = ["ash", "birch", "cedar", "doum", "elm", "fir"]
CLASSES = ["server", "desktop", "laptop", "tv", "seedbox", "phone"]

SAFE = SessionStatus(dht=False, pex=False, lpd=False)
LEAKY = SessionStatus(dht=True, pex=True, lpd=False)
"""Transmission sessions nodes report: DHT, PEX and LPD off, or some on (leaking)."""


def item_key(i: int) -> str:
    return hashlib.sha1(f"item-{i}".encode()).hexdigest()


def device(name: str, cls: str, *, player: bool, vpn: bool, labels: list[str],
           trust: str = "normal", capacity: int | str = 4096) -> Device:
    """A generated device; ``capacity`` in GiB, or as a size string (``"1234B"``)."""
    services = ["transmission", "controller"] + (["player"] if player else [])
    return Device.model_validate({
        "apiVersion": "tva/v1", "kind": "Device", "name": name, "class": cls,
        "services": services, "trust": trust, "labels": labels, "always_on": cls in ("server", "seedbox"),
        "storage": [{"path": f"/srv/{name}",
                     "capacity": f"{capacity}GiB" if isinstance(capacity, int) else capacity}],
        "addresses": {"controller_api": f"http://{name}.lan:8700", "peer": f"{name}.lan:51413"},
        "vpn": "wg" if vpn else None,
        "player": {"options": {"volume": 70}} if player else None,
    })


def rule(name: str, *, collections: list[str], minimum: int, maximum: int | None, prune: bool | None,
         labels: list[str] | None = None, exclude: list[str] | None = None) -> CustodyRule:
    return CustodyRule.model_validate({
        "apiVersion": "tva/v1", "kind": "CustodyRule", "name": name,
        "select": {"collections": collections}, "min": minimum, "max": maximum, "prune": prune,
        "placement": {"labels": labels or [], "exclude_devices": exclude or []},
    })


def fleet_resource(*, max_pins: int = 3, prune: bool = False, suspend: bool = False) -> Fleet:
    return Fleet.model_validate({
        "apiVersion": "tva/v1", "kind": "Fleet", "name": "gen",
        "policy": {"suspend": suspend,
                   "custody": {"max_new_pins_per_node": max_pins, "prune": prune, "reserve": "1GiB"}},
    })


def items_for(n: int, provenances: list[str], collections: list[str]) -> dict[str, ResolvedItem]:
    out = {}
    for i in range(n):
        prov = Provenance(provenances[i % len(provenances)])
        key = item_key(i)
        coll = collections[i % len(collections)]
        out[key] = ResolvedItem(
            key=key, name=f"item {i}", collection=coll, size=(1 + i % 3) * GiB, labels=(),
            provenance=prov, source="priv" if prov is Provenance.private else "pub",
            f2f_only=prov is Provenance.private, magnet=None, torrent=None, episode=i,
        )
    return out


def desired_state(
    devices: list[Device],
    rules: list[CustodyRule],
    items: dict[str, ResolvedItem],
    *,
    fleet: Fleet | None = None,
    watch: tuple[str, str, int] | None = None,
    pins: dict[str, list[str]] | None = None,
) -> DesiredState:
    vpn_devices = [d.name for d in devices if d.vpn]
    collections = sorted({it.collection for it in items.values() if it.collection})
    return DesiredState(
        revision="gen",
        fleet=fleet or fleet_resource(),
        devices={d.name: d for d in devices},
        duties=DutyPins.model_validate({"apiVersion": "tva/v1", "kind": "Duties", "pins": pins})
        if pins else None,
        custody={r.name: r for r in rules},
        collections={c: Collection.model_validate({"apiVersion": "tva/v1", "kind": "Collection",
                                                   "name": c}) for c in collections},
        watchlists={"wl": Watchlist.model_validate({
            "apiVersion": "tva/v1", "kind": "Watchlist", "name": "wl", "device": watch[0],
            "entries": [{"show": "s", "collection": watch[1], "keep_next": watch[2]}]})}
        if watch else {},
        vpn={"wg": VpnProfile.model_validate({
            "apiVersion": "tva/v1", "kind": "VpnProfile", "name": "wg", "type": "wireguard",
            "interface": "wg0", "config": {"file": "/etc/wg.conf"}, "devices": vpn_devices})} if vpn_devices else {},
        sources={
            "pub": Source.model_validate({"apiVersion": "tva/v1", "kind": "Source", "name": "pub",
                                         "provenance": "public"}),
            "priv": Source.model_validate({"apiVersion": "tva/v1", "kind": "Source", "name": "priv",
                                          "provenance": "private"}),
        },
        items=items,
    )


@dataclass
class World:
    desired: DesiredState
    statuses: list[NodeStatus]

    def by_node(self) -> dict[str, NodeStatus]:
        return {s.node: s for s in self.statuses}


@st.composite
def worlds(draw: st.DrawFn, crowded: bool = False) -> World:
    """A random fleet and observed state. ``crowded``: many live copies on home devices with
    pruning rules, so that removals (custody ceilings, watched items) are frequent."""
    n_dev = draw(st.integers(3, 6) if crowded else st.integers(1, 6))
    devices: list[Device] = []
    for i in range(n_dev):
        cls = draw(st.sampled_from(CLASSES[:4] if crowded else CLASSES))
        devices.append(device(
            NAMES[i], cls,
            player=draw(st.booleans()) if cls in ("laptop", "tv", "desktop") else False,
            vpn=cls == "laptop" and draw(st.booleans()),
            trust="normal" if crowded else draw(
                st.sampled_from(["normal", "normal", "normal", "trusted", "untrusted"])),
            labels=["home"] if crowded else draw(st.sampled_from([["home"], ["home", "bulk"], []])),
            capacity=draw(st.sampled_from([4096, 4096, 8])),
        ))
    n_items = draw(st.integers(1, 8))
    items = items_for(n_items, draw(st.sampled_from([["public"], ["public", "private", "fleet"]])),
                      ["c1", "c2"])
    rules: list[CustodyRule] = []
    for r in range(draw(st.integers(0, 3))):
        minimum = draw(st.integers(0, 3))
        maximum = draw(st.sampled_from([None, max(minimum, 1), max(minimum, 1), minimum + 1]))
        rules.append(rule(
            f"r{r}", collections=draw(st.sampled_from([["c1"], ["c2"], ["c1", "c2"]])),
            minimum=minimum, maximum=maximum if maximum else None,
            prune=crowded or draw(st.booleans()),
            labels=draw(st.sampled_from([None, ["home"]])),
            exclude=draw(st.sampled_from([None, [NAMES[0]]])),
        ))
    players = [d.name for d in devices if d.player is not None]
    watch = None
    if players and (crowded or draw(st.booleans())):
        watch = (draw(st.sampled_from(players)), "c1", draw(st.integers(1, 3)))
    pins: dict[str, list[str]] | None = None
    seedboxes = [d.name for d in devices if d.device_class.value == "seedbox"]
    pin_face: bool = draw(st.booleans())
    if seedboxes and pin_face:
        pins = {"public_swarm_face": [seedboxes[0]]}
    desired = desired_state(
        devices, rules, items, watch=watch, pins=pins,
        fleet=fleet_resource(max_pins=draw(st.integers(1, 4)), prune=draw(st.booleans())),
    )
    statuses: list[NodeStatus] = []
    keys = sorted(items)
    for dev in devices:
        age = draw(st.sampled_from(["fresh", "fresh", "fresh", "stale", "gone", "unknown"][
            : 4 if crowded else 6]))
        if age == "unknown":
            continue
        dense = crowded or draw(st.booleans())
        held = [k for k in keys if draw(st.booleans()) or (dense and draw(st.booleans()))]
        torrents = [_torrent(draw, dev, key, items[key]) for key in held]
        reachable = draw(st.sampled_from([True, True, True, True, False]))
        player = None
        if dev.player is not None:
            player = PlayerStatus(
                reachable=True,
                options={"volume": draw(st.sampled_from([70, 50]))},
                infohash=draw(st.sampled_from([None, None, *held])) if held else None,
                idle=True,
                watched=draw(st.lists(st.sampled_from(keys), unique=True, max_size=3)),
            )
        vpn = [VpnState(profile="wg", interface="wg0", up=draw(st.booleans()))] if dev.vpn else []
        offset = {"fresh": timedelta(minutes=1), "stale": timedelta(minutes=30),
                  "gone": timedelta(hours=5)}[age]
        statuses.append(NodeStatus(
            node=dev.name, observed_at=NOW - offset, controller_version="gen",
            transmission=TransmissionStatus(
                reachable=reachable, torrents=torrents if reachable else [],
                session=draw(st.sampled_from([SAFE, SAFE, SAFE, LEAKY, None]))),
            storage=[StorageStatus(path=dev.storage[0].path,
                                   free=draw(st.sampled_from([2000 * GiB, 3 * GiB])),
                                   total=dev.capacity)],
            player=player, vpn=vpn,
        ))
    return World(desired, statuses)


def _torrent(draw: st.DrawFn, dev: Device, key: str, item: ResolvedItem) -> TorrentStatus:
    pct = draw(st.sampled_from([1.0, 1.0, 1.0, 0.5]))
    error = draw(st.sampled_from([0, 0, 0, 0, 3]))
    stalled = pct < 1.0 and draw(st.booleans())
    state = draw(st.sampled_from([TorrentState.seeding if pct >= 1.0 else TorrentState.downloading,
                                  TorrentState.stopped]))
    labels: list[str] = draw(st.sampled_from([["tva"], ["tva"], [], ["tva", "tva:vpn-stopped"]]))
    size = item.size or GiB
    return TorrentStatus(
        infohash=key, name=item.name, size=size, percent_done=pct, state=state, error=error,
        labels=labels, download_dir=dev.storage[0].path,
        last_activity=NOW - (timedelta(hours=10) if stalled else timedelta(minutes=5)),
        done_date=NOW - timedelta(days=3) if pct >= 1.0 else None,
        added_date=NOW - timedelta(days=4),
    )


def shuffled(world: World, rnd: Any) -> World:
    """The same world with every order changed: devices, rules, items, statuses, torrents."""
    d = world.desired

    def mix(m: dict[str, Any]) -> dict[str, Any]:
        keys = list(m)
        rnd.shuffle(keys)
        return {k: m[k] for k in keys}

    desired = d.model_copy(update={
        "devices": mix(d.devices), "custody": mix(d.custody), "collections": mix(d.collections),
        "items": mix(d.items), "watchlists": mix(d.watchlists), "vpn": mix(d.vpn),
        "sources": mix(d.sources),
    })
    statuses = []
    for s in world.statuses:
        torrents = list(s.transmission.torrents)
        rnd.shuffle(torrents)
        statuses.append(s.model_copy(update={
            "transmission": s.transmission.model_copy(update={"torrents": torrents})}))
    rnd.shuffle(statuses)
    return World(desired, statuses)
