"""Test helpers for the planner: compact observed states, and a pure simulator of apply.

The planner is pure, so its tests feed it synthetic ``NodeStatus`` objects. ``node_status``
expands a short, readable spec (as written in the golden cases) into a full NodeStatus;
``simulate`` applies a plan to observed state the way a perfect actuator would (an ``add``
becomes a complete copy, a removal makes it go away, ``stop``/``start`` change state, a
``player-set`` sets the option...), and journals every action, so tests can iterate
plan -> apply -> plan and check that the fleet converges.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from controller.announce import base_url, is_fleet
from schemas.desired import DesiredState
from schemas.journal import JournalEntry, Outcome
from schemas.observed import (
    Condition,
    ConditionStatus,
    NodeStatus,
    PlayerStatus,
    SessionStatus,
    StorageStatus,
    TorrentState,
    TorrentStatus,
    TrackerResult,
    TransmissionStatus,
    VpnState,
)
from schemas.plan import ActionKind, Plan
from schemas.types import parse_duration, parse_size

GiB = 1 << 30


def key_of(desired: DesiredState, ref: str) -> str:
    """An item's key from its name (or the key itself)."""
    if ref.lower() in desired.items:
        return ref.lower()
    found = [k for k, it in desired.items.items() if it.name == ref]
    if len(found) != 1:
        raise KeyError(f"no single item named {ref!r}")
    return found[0]


def _ago(now: datetime, value: Any) -> datetime:
    return now - parse_duration(value)


def torrent(desired: DesiredState, node: str, spec: Mapping[str, Any], now: datetime) -> TorrentStatus:
    if "item" in spec:
        key = key_of(desired, spec["item"])
        item = desired.items[key]
        name, size = item.name, item.size or GiB
    else:
        key, name, size = spec["infohash"], spec["name"], parse_size(spec.get("size", GiB))
    pct = float(spec.get("pct", 1.0))
    state = TorrentState(spec["state"]) if "state" in spec else (
        TorrentState.seeding if pct >= 1.0 else TorrentState.downloading)
    dev = desired.devices[node]
    trackers = [
        TrackerResult(announce=t["announce"], last_announce_result=t.get("result", "Success"))
        for t in spec.get("trackers", [])
    ]
    return TorrentStatus(
        infohash=key, name=name, size=size, percent_done=pct, state=state,
        error=int(spec.get("error", 0)), error_string=spec.get("error_string", ""),
        labels=list(spec.get("labels", ["tva"])),
        download_dir=spec.get("download_dir", dev.effective_download_dir or "/"),
        peers_connected=int(spec.get("peers", 0)), peers_sending=int(spec.get("sending", 0)),
        rate_download=int(spec.get("rate", 0)),
        corrupt=parse_size(spec.get("corrupt", 0)), webseeds=int(spec.get("webseeds", 0)),
        last_activity=_ago(now, spec.get("activity", "1h")),
        done_date=_ago(now, spec.get("done", "5d")) if pct >= 1.0 else None,
        added_date=_ago(now, spec.get("added", "6d")),
        trackers=trackers, verdict=spec.get("verdict"),
    )


def session(spec: Mapping[str, Any] | str | None) -> SessionStatus | None:
    """A node's Transmission session: DHT, PEX and LPD off unless the spec turns them on
    (``session: {dht: true}``); ``session: unreported`` for a node that does not say."""
    if spec == "unreported":
        return None
    given = dict(spec) if isinstance(spec, Mapping) else {}
    dht, pex, lpd = (bool(given.get(k, False)) for k in ("dht", "pex", "lpd"))
    settings: dict[str, bool | int | float | str] = {
        "dht-enabled": dht, "pex-enabled": pex, "lpd-enabled": lpd,
        "encryption": str(given.get("encryption", "preferred")),
        **dict(given.get("settings", {})),
    }
    return SessionStatus(dht=dht, pex=pex, lpd=lpd, settings=settings)


def node_status(desired: DesiredState, node: str, spec: Mapping[str, Any], now: datetime) -> NodeStatus:
    """Expand a compact spec (see tests/planner/cases/README.md) into a NodeStatus."""
    dev = desired.devices[node]
    reachable = bool(spec.get("reachable", True))
    torrents = [torrent(desired, node, t, now) for t in spec.get("torrents", [])]
    free = parse_size(spec.get("free", "400GiB"))
    storage = [StorageStatus(path=r.path, free=free, total=r.capacity) for r in dev.storage[:1]]
    player = None
    if "player" in spec:
        p = spec["player"]
        path = infohash = None
        if "item" in p:
            infohash = key_of(desired, p["item"])
            path = f"{dev.effective_download_dir}/{desired.items[infohash].name}/video.mkv"
        player = PlayerStatus(
            reachable=bool(p.get("reachable", True)), path=path, infohash=infohash,
            idle=path is None, options=dict(p.get("options", {})),
            paused=None if path is None else bool(p.get("paused", False)),
            watched=[key_of(desired, w) for w in p.get("watched", [])],
        )
    vpn = [VpnState(profile=name, interface="wg0", up=state.split()[0] == "up",
                    address="10.66.0.2" if "unbound" in state else None,
                    bound=False if "unbound" in state else None)
           for name, state in spec.get("vpn", {}).items()]
    conditions = [
        Condition(type=c["type"], status=ConditionStatus(c["status"]),
                  since=_ago(now, c["since"]) if "since" in c else None)
        for c in spec.get("conditions", [])
    ]
    return NodeStatus(
        node=node, observed_at=_ago(now, spec.get("age", "1m")), controller_version="test",
        transmission=TransmissionStatus(reachable=reachable, torrents=torrents if reachable else [],
                                        error="" if reachable else "connection refused",
                                        session=session(spec.get("session")),
                                        rpc_version=spec.get("rpc"),
                                        version=spec.get("version")),
        present_since=_ago(now, spec["present"]) if "present" in spec else None,
        storage=storage, player=player, vpn=vpn, duties=list(spec.get("duties", [])),
        conditions=conditions,
        on_ac_power={"ac": True, "battery": False}.get(str(spec.get("power", ""))),
    )


def journal_entries(desired: DesiredState, specs: Iterable[Mapping[str, Any]], now: datetime) -> list[JournalEntry]:
    out = []
    for s in specs:
        kind = ActionKind(s["kind"])
        target = key_of(desired, s["target"]) if s["target"] in {
            it.name for it in desired.items.values()} else s["target"]
        out.append(JournalEntry(
            at=_ago(now, s.get("ago", "0s")), node=s["node"],
            action_id=f"{s['node']}/{kind.value}/{target}", kind=kind, target=target,
            outcome=Outcome(s.get("outcome", "ok")), progress=s.get("progress"),
            detail=s.get("detail", ""),
        ))
    return out


# --------------------------------------------------------------------------- simulator


def simulate(
    desired: DesiredState,
    plan: Plan,
    statuses: dict[str, NodeStatus],
    journal: list[JournalEntry],
    now: datetime,
) -> tuple[dict[str, NodeStatus], list[JournalEntry]]:
    """Apply ``plan`` as a perfect actuator would; returns new statuses and journal."""
    out = dict(statuses)
    new_journal = list(journal)
    for a in plan.actions:
        st = out[a.node]
        torrents = {t.infohash: t for t in st.transmission.torrents}
        player = st.player
        vpn = list(st.vpn)
        free_delta = 0
        if a.kind is ActionKind.add:
            item = desired.items[a.target]
            size = item.size or GiB
            paused = bool(a.params.get("paused"))
            torrents[a.target] = TorrentStatus(
                infohash=a.target, name=item.name, size=size, percent_done=1.0,
                state=TorrentState.stopped if paused else TorrentState.seeding,
                labels=list(a.params.get("labels", [])),
                download_dir=a.params.get("download_dir") or "/", done_date=now, added_date=now,
                last_activity=now,
            )
            free_delta = -size
        elif a.kind in (ActionKind.remove_data, ActionKind.remove_torrent):
            gone = torrents.pop(a.target, None)
            if gone is not None and a.kind is ActionKind.remove_data:
                free_delta = gone.size
        elif a.kind is ActionKind.stop:
            t = torrents[a.target]
            torrents[a.target] = t.model_copy(update={
                "state": TorrentState.stopped,
                "labels": sorted(set(t.labels) | set(a.params.get("labels_add", []))),
            })
        elif a.kind is ActionKind.start:
            t = torrents[a.target]
            torrents[a.target] = t.model_copy(update={
                "state": TorrentState.seeding if t.complete else TorrentState.downloading,
                "labels": sorted(set(t.labels) - set(a.params.get("labels_remove", []))),
            })
        elif a.kind is ActionKind.set_labels:
            torrents[a.target] = torrents[a.target].model_copy(update={"labels": a.params["labels"]})
        elif a.kind is ActionKind.drop_webseeds:
            torrents[a.target] = torrents[a.target].model_copy(update={"webseeds": 0, "corrupt": 0})
        elif a.kind is ActionKind.add_webseeds:
            torrents[a.target] = torrents[a.target].model_copy(update={"webseeds": 1})
        elif a.kind is ActionKind.set_trackers:
            # As the actuator does: a fleet tracker is written with the node's token (seen
            # redacted) in place of any stale URL of it.
            t = torrents[a.target]
            added = [TrackerResult(announce=u + "/<token>" if u.endswith("/announce") else u)
                     for u in a.params.get("add", [])]
            kept = [tr for tr in t.trackers if tr.announce not in a.params.get("add", [])]
            if a.params.get("only_fleet"):
                fleet = [base_url(d.addresses.controller_api) for d in desired.devices.values()
                         if d.addresses.controller_api is not None]
                kept = [tr for tr in kept if any(is_fleet(tr.announce, b) for b in fleet)]
            torrents[a.target] = t.model_copy(update={"trackers": [*kept, *added]})
        elif a.kind is ActionKind.player_set:
            assert player is not None
            player = player.model_copy(update={"options": {**player.options, a.target: a.params["value"]}})
        elif a.kind is ActionKind.player_load:
            assert player is not None
            player = player.model_copy(update={"path": a.params["path"], "infohash": a.target,
                                               "idle": False})
        elif a.kind is ActionKind.vpn_up:
            vpn = [v for v in vpn if v.profile != a.target]
            vpn.append(VpnState(profile=a.target, interface=a.params.get("interface", "wg0"), up=True))
        storage = [s.model_copy(update={"free": s.free + free_delta}) if i == 0 else s
                   for i, s in enumerate(st.storage)]
        out[a.node] = st.model_copy(update={
            "transmission": st.transmission.model_copy(update={"torrents": list(torrents.values())}),
            "player": player, "vpn": vpn, "storage": storage,
        })
        new_journal.append(JournalEntry(
            at=now, node=a.node, action_id=a.id, kind=a.kind, target=a.target,
            outcome=Outcome.ok, progress=a.params.get("progress"),
            detail=str(a.params.get("cause", "")),
        ))
    return out, new_journal


def copies_live(desired: DesiredState, statuses: Mapping[str, NodeStatus], fresh: set[str],
                key: str, nodes: Iterable[str]) -> set[str]:
    """Nodes among ``nodes`` holding a complete, error-free copy of ``key`` on a fresh status."""
    wanted = set(nodes)
    out = set()
    for name, st in statuses.items():
        if name not in wanted or name not in fresh or not st.transmission.reachable:
            continue
        for t in st.transmission.torrents:
            if t.infohash == key and t.complete and t.error == 0:
                out.add(name)
    return out


def later(now: datetime, by: str) -> datetime:
    return now + timedelta(seconds=parse_duration(by).total_seconds())
