"""The facts of one planning pass, indexed once: nodes, holdings, copies, selections.

Everything later steps ask many times (which nodes hold an item and in what state, which rules
select it, how much room a node has left) is computed here in one sweep over the observed
state, always in sorted order, so that the plan cannot depend on the order of files, nodes or
torrents.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import IntEnum

from controller.planner.freshness import FleetView, Freshness, build_fleet_view, grace_of
from controller.planner.health import HEALTHY, Assessment, Classifier, Health
from controller.planner.memory import JournalIndex
from schemas.desired import DesiredState, Device, Duty, ResolvedItem, Service, TrustLevel
from schemas.observed import NodeStatus, PlayerStatus, TorrentStatus
from schemas.plan import DutyAssignment

__all__ = ["Context", "Copy", "CopyState", "NodeFacts"]


LOCAL_ERROR = 3
"""Transmission's error codes: 1 tracker warning, 2 tracker error, 3 local (data) error."""


class CopyState(IntEnum):
    live = 0
    """Complete, no error, on a fresh node: counts, and is confirmed live."""
    trusted = 1
    """Complete, no error, on a trusted node that is not fresh: counts, not confirmed live."""
    pending = 2
    """On a fresh node, not (yet) good: in progress or being repaired. Not missing."""
    away = 3
    """On a stale node (within grace): not counted, not missing (hysteresis)."""
    gone = 4
    """On a node gone past grace: missing; the baton rolls."""
    broken = 5
    """On a fresh node with a local data error, or dead: missing."""
    untrusted = 6
    """On an untrusted device: never counts."""


GOOD = frozenset({CopyState.live, CopyState.trusted})


@dataclass(frozen=True, slots=True)
class Copy:
    node: str
    state: CopyState
    torrent: TorrentStatus


@dataclass(slots=True)
class NodeFacts:
    name: str
    device: Device
    freshness: Freshness
    age: timedelta | None
    status: NodeStatus | None
    reachable: bool
    """Its last status could see Transmission (so its torrent list means something)."""
    torrents: dict[str, TorrentStatus]
    suspects: list[str]
    """Info-hashes of torrents that are not plainly healthy (the reaper looks only at these)."""
    actionable: bool
    """Fresh with Transmission reachable: it may be given actions that need Transmission."""
    maybe_holder: bool
    """Transmission unreachable (not gone, within grace): holdings unknown, never absent."""
    unreachable_for: timedelta | None
    free: int | None
    """Free bytes as observed (None when unknown)."""
    open_keys: frozenset[str]
    player: PlayerStatus | None
    watched: frozenset[str]
    # Plain flags, computed once: the per-copy checks run for every holding of the fleet.
    fresh: bool = field(init=False)
    stale: bool = field(init=False)
    trusted: bool = field(init=False)
    untrusted: bool = field(init=False)
    counts: bool = field(init=False)
    """A complete, error-free copy here counts toward floors (fresh or trusted, not untrusted)."""
    committed: int = field(init=False)
    """Bytes the unfinished torrents here still have to write (``sizeWhenDone - have``)."""

    def __post_init__(self) -> None:
        self.fresh = self.freshness is Freshness.fresh
        self.stale = self.freshness is Freshness.stale
        self.trusted = self.device.trust is TrustLevel.trusted
        self.untrusted = self.device.trust is TrustLevel.untrusted
        self.counts = (self.fresh or self.trusted) and not self.untrusted
        self.committed = sum(t.size - int(t.size * t.percent_done)
                             for t in self.torrents.values() if t.percent_done < 1.0)

    @property
    def present_since(self) -> datetime | None:
        """Since when it has been reporting without a gap (None: not said, older controller)."""
        return self.status.present_since if self.status is not None else None

    def room(self, reserve: int) -> int | None:
        """Bytes a new pin may still take before the reserve; None when unknowable.

        Free space as observed minus what the node's unfinished downloads still have to write
        (``committed``): a download started by an earlier pass has taken almost no disk yet
        (Transmission allocates sparse files), so free space alone over-commits the disk."""
        if self.free is not None:
            return self.free - self.committed - reserve
        if self.device.storage:
            held = sum(t.size for t in self.torrents.values())
            return self.device.capacity - held - reserve
        return None

    def liveness(self) -> str:
        """Why this node is not live, in words (for reasons); '' when fresh."""
        if self.freshness is Freshness.unknown:
            return f"{self.name} has never reported"
        if self.freshness is Freshness.fresh:
            if not self.reachable:
                return f"{self.name}'s Transmission is unreachable"
            return ""
        return f"{self.name} is {self.freshness.value}: no status for {_age(self.age)}"


def _age(value: timedelta | None) -> str:
    from controller.planner.text import age

    return age(value)


@dataclass
class Context:
    desired: DesiredState
    fleet: FleetView
    now: datetime
    journal: JournalIndex
    nodes: dict[str, NodeFacts]
    classifier: Classifier
    rule_items: dict[str, list[str]]
    rules_by_item: dict[str, list[str]]
    eligible: dict[str, list[str]]
    duty_holders: dict[Duty, tuple[str, ...]] = field(default_factory=dict)
    unread: bool = False
    """The statuses could not be read this pass: those given are the last read, or only own."""
    duty_assignments: list[DutyAssignment] = field(default_factory=list)
    face_eligible: tuple[str, ...] = ()
    """Devices that may hold public_swarm_face: none means the fleet has no face at all."""
    _copies: dict[str, list[Copy]] = field(default_factory=dict)
    _assessed: dict[tuple[str, str], Assessment] = field(default_factory=dict)

    @property
    def face(self) -> str | None:
        holders = self.duty_holders.get(Duty.public_swarm_face, ())
        return holders[0] if holders else None

    @property
    def acquirer(self) -> str | None:
        holders = self.duty_holders.get(Duty.acquirer, ())
        return holders[0] if holders else None

    @property
    def blind(self) -> bool:
        """Unread, and no other node's status kept: nothing is known of the rest of the fleet."""
        if not self.unread:
            return False
        known = sum(1 for nf in self.nodes.values() if nf.status is not None)
        return known <= 1 < len(self.nodes)

    def item(self, key: str) -> ResolvedItem | None:
        return self.desired.items.get(key)

    def assess(self, node: str, t: TorrentStatus) -> Assessment:
        """Reaper health of torrent ``t`` on ``node`` (unhealthy ones cached for the pass)."""
        got = self.classifier.assess(node, t)
        if got is HEALTHY:
            return got
        k = (node, t.infohash)
        cached = self._assessed.get(k)
        if cached is None:
            self._assessed[k] = got
            return got
        return cached

    def copies(self, key: str) -> list[Copy]:
        """Every copy of ``key`` in the fleet with its state, in node order."""
        got = self._copies.get(key)
        if got is not None:
            return got
        out: list[Copy] = []
        for node, nf in self.nodes.items():
            t = nf.torrents.get(key)
            if t is not None:
                out.append(Copy(node, self.state(nf, t), t))
        self._copies[key] = out
        return out

    def state(self, nf: NodeFacts, t: TorrentStatus) -> CopyState:
        """The state of the copy ``t`` on node ``nf`` (see CopyState)."""
        if nf.untrusted:
            return CopyState.untrusted
        if t.percent_done >= 1.0 and t.error != LOCAL_ERROR:
            # A tracker complaint (error 1 or 2) about a complete copy does not make the data
            # less there: it counts (the reaper deals with the tracker). Only a local data
            # error (3) does.
            if nf.fresh:
                return CopyState.live
            if nf.trusted:
                return CopyState.trusted
        elif t.verdict is not None and (nf.fresh or nf.stale):
            # The holder's own published verdict (dead, broken): every node counts it the same
            # way, whatever its own journal holds (verdicts.py).
            return CopyState.broken
        elif nf.fresh:
            if t.error == LOCAL_ERROR or self.assess(nf.name, t).health is Health.dead:
                return CopyState.broken
            return CopyState.pending
        if nf.stale:
            return CopyState.away
        return CopyState.gone


def build_context(
    desired: DesiredState, statuses: Sequence[NodeStatus], now: datetime, journal: JournalIndex
) -> Context:
    fleet = build_fleet_view(desired, statuses, now)
    classifier = Classifier(desired.fleet.policy.reaper, now, journal)
    nodes: dict[str, NodeFacts] = {}
    for name in sorted(desired.devices):
        dev = desired.devices[name]
        view = fleet.nodes.get(name)
        nodes[name] = _node_facts(dev, view.freshness if view else Freshness.unknown,
                                  view.age if view else None,
                                  view.status if view else None, now, grace_of(desired, dev),
                                  classifier.plainly_healthy)

    rule_items, rules_by_item = _select(desired)
    from schemas.rules import eligible_custodians

    eligible = {
        r: eligible_custodians(rule, desired.devices, desired.vpn, desired.duties)
        for r, rule in sorted(desired.custody.items())
    }
    return Context(
        desired=desired, fleet=fleet, now=now, journal=journal, nodes=nodes,
        classifier=classifier,
        rule_items=rule_items, rules_by_item=rules_by_item, eligible=eligible,
    )


def _node_facts(
    dev: Device,
    freshness: Freshness,
    node_age: timedelta | None,
    st: NodeStatus | None,
    now: datetime,
    grace: timedelta,
    plain: Callable[[TorrentStatus], bool],
) -> NodeFacts:
    reachable = st is not None and st.transmission.reachable
    torrents: dict[str, TorrentStatus] = {}
    suspects: list[str] = []
    if st is not None and reachable and Service.transmission in dev.services:
        # One sweep builds the index and the reaper's short list (at fleet scale every extra
        # pass over the torrents costs as much as the work done in it).
        twice = False
        for t in st.transmission.torrents:
            key = t.infohash.lower()
            other = torrents.get(key)
            if other is None:
                torrents[key] = t
                if not plain(t):
                    suspects.append(key)
            else:
                # A status never lists a torrent twice; if one did, keep one whatever the order.
                twice = True
                if _rank(t) > _rank(other):
                    torrents[key] = t
        if twice:
            suspects = [k for k, t in torrents.items() if not plain(t)]
    unreachable_for: timedelta | None = None
    maybe = False
    if st is not None and not reachable and freshness in (Freshness.fresh, Freshness.stale):
        since = None
        for c in st.conditions:
            if c.type == "TransmissionReachable" and c.status.value == "False":
                since = c.since
        unreachable_for = max(now - since, timedelta(0)) if since is not None else None
        maybe = unreachable_for is None or unreachable_for <= grace
    player = st.player if st is not None and st.player is not None and st.player.reachable else None
    open_keys: set[str] = set()
    if player is not None:
        if player.infohash:
            open_keys.add(player.infohash.lower())
        elif player.path:
            for key, t in torrents.items():
                base = f"{t.download_dir.rstrip('/')}/{t.name}"
                if player.path == base or player.path.startswith(base + "/"):
                    open_keys.add(key)
    watched = frozenset(h.lower() for h in player.watched) if player is not None else frozenset()
    return NodeFacts(
        name=dev.name, device=dev, freshness=freshness, age=node_age, status=st,
        reachable=reachable, torrents=torrents, suspects=suspects,
        actionable=freshness is Freshness.fresh and reachable
        and Service.transmission in dev.services,
        maybe_holder=maybe, unreachable_for=unreachable_for,
        free=st.free_bytes() if st is not None else None,
        open_keys=frozenset(open_keys), player=player, watched=watched,
    )


def _rank(t: TorrentStatus) -> tuple[float, int, str]:
    return (t.percent_done, -t.error, t.model_dump_json())


def _select(desired: DesiredState) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Items each custody rule selects, and the rules selecting each item (both sorted)."""
    by_collection: dict[str, list[str]] = {}
    by_label: dict[str, list[str]] = {}
    for key, it in desired.items.items():
        if it.collection is not None:
            by_collection.setdefault(it.collection, []).append(key)
        for label in it.labels:
            by_label.setdefault(label, []).append(key)
    rule_items: dict[str, list[str]] = {}
    rules_by_item: dict[str, list[str]] = {}
    for name in sorted(desired.custody):
        sel = desired.custody[name].select
        keys: set[str] = set()
        for c in sel.collections:
            keys.update(by_collection.get(c, ()))
        for label in sel.labels:
            keys.update(by_label.get(label, ()))
        keys.update(h for h in sel.infohashes if h in desired.items)
        for w in sel.watchlists:
            keys.update(watchlist_items(desired, w, by_collection))
        ordered = sorted(keys)
        rule_items[name] = ordered
        for key in ordered:
            rules_by_item.setdefault(key, []).append(name)
    return rule_items, rules_by_item


def watchlist_items(
    desired: DesiredState, name: str, by_collection: dict[str, list[str]] | None = None
) -> set[str]:
    """Items a watchlist refers to: its entries' collections and magnets."""
    from schemas.desired import infohash_from_magnet

    wl = desired.watchlists.get(name)
    if wl is None:
        return set()
    out: set[str] = set()
    for e in wl.entries:
        if e.collection is not None:
            if by_collection is not None:
                out.update(by_collection.get(e.collection, ()))
            else:
                out.update(k for k, it in desired.items.items() if it.collection == e.collection)
        if e.magnet is not None:
            key = infohash_from_magnet(e.magnet)
            if key is not None and key in desired.items:
                out.add(key)
    return out
