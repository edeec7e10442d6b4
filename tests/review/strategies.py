"""Hypothesis strategies for the review: a small random fleet, what its nodes report, and a
random change to it (the BASE and HEAD of a pull request).

States are built straight from the models, not from YAML: a change may leave a duty pinned to
a removed device or a floor above the eligible custodians, which the loader would refuse and
the planner (hence the review) must still handle deterministically.
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
from tests.planner.strategies import device, fleet_resource, rule

NOW = datetime(2025, 6, 1, 20, 0, tzinfo=UTC)
GiB = 1 << 30
NAMES = ["ash", "birch", "cedar", "elm", "fir"]
CLASSES = ["server", "desktop", "laptop", "tv", "seedbox"]


def _key(i: int) -> str:
    return hashlib.sha1(f"review-item-{i}".encode()).hexdigest()


def _device(name: str, cls: str, *, capacity: int, labels: list[str], vpn: bool,
            player: bool) -> Device:
    return device(name, cls, player=player, vpn=vpn, labels=labels, capacity=f"{capacity}B")


def _rule(name: str, collection: str, minimum: int, maximum: int | None, prune: bool | None,
          exclude: list[str]) -> CustodyRule:
    return rule(name, collections=[collection], minimum=minimum, maximum=maximum, prune=prune,
                exclude=exclude)



def _state(fleet: Fleet, devices: list[Device], rules: list[CustodyRule],
           items: dict[str, ResolvedItem], pins: dict[str, list[str]] | None,
           watch: tuple[str, int] | None) -> DesiredState:
    vpn_devices = [d.name for d in devices if d.vpn]
    return DesiredState(
        fleet=fleet, devices={d.name: d for d in devices},
        duties=DutyPins.model_validate({"apiVersion": "tva/v1", "kind": "Duties", "pins": pins})
        if pins else None,
        custody={r.name: r for r in rules},
        collections={c: Collection.model_validate({"apiVersion": "tva/v1", "kind": "Collection",
                                                   "name": c}) for c in ("c1", "c2")},
        watchlists={"wl": Watchlist.model_validate({
            "apiVersion": "tva/v1", "kind": "Watchlist", "name": "wl", "device": watch[0],
            "entries": [{"show": "s", "collection": "c1", "keep_next": watch[1]}]})}
        if watch else {},
        vpn={"wg": VpnProfile.model_validate({
            "apiVersion": "tva/v1", "kind": "VpnProfile", "name": "wg", "type": "wireguard",
            "interface": "wg0", "config": {"file": "/etc/wg.conf"}, "devices": vpn_devices})}
        if vpn_devices else {},
        items=items,
    )


@dataclass
class World:
    base: DesiredState
    head: DesiredState
    statuses: list[NodeStatus]
    change: str


@st.composite
def worlds(draw: st.DrawFn) -> World:
    n_dev = draw(st.integers(2, 5))
    devices = []
    for i in range(n_dev):
        cls = draw(st.sampled_from(CLASSES))
        devices.append(_device(
            NAMES[i], cls, capacity=draw(st.sampled_from([4096 * GiB, 4096 * GiB, 6 * GiB])),
            labels=draw(st.sampled_from([["home"], []])),
            vpn=cls == "laptop" and draw(st.booleans()),
            player=cls in ("tv", "laptop") and draw(st.booleans())))
    n_items = draw(st.integers(1, 7))
    items = {}
    for i in range(n_items):
        prov = draw(st.sampled_from([Provenance.public, Provenance.fleet, Provenance.private]))
        k = _key(i)
        items[k] = ResolvedItem(
            key=k, name=f"item {i}", collection="c1" if i % 2 == 0 else "c2",
            size=(1 + i % 3) * GiB, labels=(), provenance=prov, source=None,
            f2f_only=prov is Provenance.private, magnet=None, torrent=None, episode=i)
    rules = []
    for r in range(draw(st.integers(1, 3))):
        minimum = draw(st.integers(0, 2))
        rules.append(_rule(f"r{r}", draw(st.sampled_from(["c1", "c2"])), minimum,
                           draw(st.sampled_from([None, max(minimum, 1), minimum + 1])),
                           draw(st.sampled_from([None, True, False])),
                           draw(st.sampled_from([[], [NAMES[0]]]))))
    seedboxes = [d.name for d in devices if d.device_class.value == "seedbox"]
    pins: dict[str, list[str]] | None = None
    pin_face: bool = draw(st.booleans())
    if seedboxes and pin_face:
        pins = {"public_swarm_face": [seedboxes[0]]}
    players = [d.name for d in devices if d.player is not None]
    watch: tuple[str, int] | None = None
    watching: bool = draw(st.booleans())
    if players and watching:
        watch = (draw(st.sampled_from(players)), draw(st.integers(1, 3)))
    fleet = fleet_resource(prune=draw(st.booleans()), max_pins=draw(st.integers(1, 4)))
    base = _state(fleet, devices, rules, items, pins, watch)
    head, what = draw(changed(fleet, devices, rules, items, pins, watch))
    return World(base, head, _statuses(draw, devices, items), what)


@st.composite
def changed(draw: st.DrawFn, fleet: Fleet, devices: list[Device], rules: list[CustodyRule],
            items: dict[str, ResolvedItem], pins: dict[str, list[str]] | None,
            watch: tuple[str, int] | None) -> tuple[DesiredState, str]:
    """HEAD: BASE with one or two random edits of the kinds a pull request makes."""
    devices, rules, items = list(devices), list(rules), dict(items)
    done = []
    for _ in range(draw(st.integers(1, 2))):
        kinds = ["add-rule", "prune", "suspend", "face", "capacity", "rate", "nothing"]
        kinds += ["floor", "floor", "exclude", "ceiling", "ceiling"] if rules else []
        kinds += ["remove-device"] if len(devices) > 1 else []
        kinds += ["add-device"] if len(devices) < len(NAMES) else []
        kinds += ["remove-item"] if len(items) > 1 else []
        kinds += ["watch"] if watch or devices[0].player else []
        what = draw(st.sampled_from(kinds))
        done.append(what)
        if what == "add-rule":
            rules.append(_rule(f"new{len(done)}", draw(st.sampled_from(["c1", "c2"])),
                               draw(st.integers(1, 3)), None, None, []))
        elif what == "ceiling":
            i = draw(st.integers(0, len(rules) - 1))
            rules[i] = rules[i].model_copy(update={"min": min(rules[i].min, 1), "max": 1,
                                                   "prune": True})
        elif what == "exclude":
            i = draw(st.integers(0, len(rules) - 1))
            rules[i] = rules[i].model_copy(update={"placement": rules[i].placement.model_copy(
                update={"exclude_devices": [draw(st.sampled_from([d.name for d in devices]))]})})
        elif what == "floor":
            i = draw(st.integers(0, len(rules) - 1))
            r = rules[i]
            m = draw(st.integers(0, 4))
            rules[i] = r.model_copy(update={"min": m, "max": max(r.max, m) if r.max else None})
        elif what == "prune":
            fleet = fleet.model_copy(update={"policy": fleet.policy.model_copy(update={
                "custody": fleet.policy.custody.model_copy(
                    update={"prune": not fleet.policy.custody.prune})})})
        elif what == "suspend":
            fleet = fleet.model_copy(update={"policy": fleet.policy.model_copy(
                update={"suspend": not fleet.policy.suspend})})
        elif what == "remove-device":
            devices.pop(draw(st.integers(0, len(devices) - 1)))
        elif what == "add-device":
            devices.append(_device(NAMES[len(devices)], draw(st.sampled_from(CLASSES)),
                                   capacity=4096 * GiB, labels=["home"], vpn=False,
                                   player=False))
        elif what == "face":
            pins = {"public_swarm_face": [draw(st.sampled_from([d.name for d in devices]))]}
        elif what == "capacity":
            i = draw(st.integers(0, len(devices) - 1))
            d = devices[i]
            devices[i] = d.model_copy(update={"storage": [
                d.storage[0].model_copy(update={"capacity": draw(st.sampled_from(
                    [2 * GiB, 4096 * GiB]))})]})
        elif what == "rate":
            fleet = fleet.model_copy(update={"policy": fleet.policy.model_copy(update={
                "custody": fleet.policy.custody.model_copy(
                    update={"max_new_pins_per_node": draw(st.integers(1, 6))})})})
        elif what == "remove-item":
            items.pop(draw(st.sampled_from(sorted(items))))
        elif what == "watch":
            watch = None if watch else (devices[0].name, 2) if devices[0].player else None
    return _state(fleet, devices, rules, items, pins, watch), "+".join(done)


def _statuses(draw: st.DrawFn, devices: list[Device], items: dict[str, ResolvedItem]
              ) -> list[NodeStatus]:
    out = []
    keys = sorted(items)
    density = [True, True, False] if draw(st.booleans()) else [True, False, False, False]
    for d in devices:
        age = draw(st.sampled_from(["fresh", "fresh", "fresh", "stale", "gone", "unknown"]))
        if age == "unknown":
            continue
        held = [k for k in keys if draw(st.sampled_from(density))]
        torrents = [TorrentStatus(
            infohash=k, name=items[k].name, size=items[k].size or GiB,
            percent_done=draw(st.sampled_from([1.0, 1.0, 0.5])), state=TorrentState.seeding,
            labels=draw(st.sampled_from([["tva"], ["tva"], []])), download_dir=f"/srv/{d.name}",
            last_activity=NOW - timedelta(minutes=5), done_date=NOW - timedelta(days=3))
            for k in held]
        offset = {"fresh": timedelta(minutes=1), "stale": timedelta(minutes=30),
                  "gone": timedelta(hours=5)}[age]
        player: Any = None
        if d.player is not None:
            player = PlayerStatus(reachable=True, options={"volume": 70},
                                  watched=draw(st.lists(st.sampled_from(keys), unique=True,
                                                        max_size=2)))
        out.append(NodeStatus(
            node=d.name, observed_at=NOW - offset, controller_version="gen",
            transmission=TransmissionStatus(
                reachable=True, torrents=torrents,
                session=SessionStatus(dht=False, pex=False, lpd=False)),
            storage=[StorageStatus(path=f"/srv/{d.name}",
                                   free=draw(st.sampled_from([2000 * GiB, 3 * GiB])),
                                   total=4096 * GiB)],
            player=player,
            vpn=[VpnState(profile="wg", interface="wg0", up=draw(st.booleans()))] if d.vpn else [],
        ))
    return out
