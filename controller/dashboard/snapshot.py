"""What the dashboard shows, as plain data: one ``Snapshot`` per planning pass.

Built by a pure function from the inputs the daemon's pass already has (desired state, the
fleet's statuses, ``now``, the journal) through the planner's own views (``fleet_overview``),
so the page never disagrees with the plan. The templates only lay it out; every string in here
is still raw (the templates escape HTML, the ``shown`` filter applies ``controller.display``).
Built once per pass and cached by the app: a page is a slice of it, never a new pass.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

from controller.planner.freshness import Freshness, build_fleet_view
from controller.planner.text import age, size
from controller.planner.views import (
    CustodyRow,
    CustodyState,
    FleetOverview,
    ReaperRow,
    fleet_overview,
)
from schemas.desired import DesiredState
from schemas.journal import JournalEntry
from schemas.observed import NodeStatus, TorrentStatus
from schemas.plan import Action, Plan, PlanWarning

__all__ = [
    "COPY_STATES",
    "Copy",
    "Inputs",
    "ItemPage",
    "NodeRow",
    "RuleRow",
    "Snapshot",
    "SourceRef",
    "Transfer",
    "build_snapshot",
    "transfers_of",
]

COPY_STATES = ("live", "trusted", "pending", "away", "gone", "broken", "unknown")
"""The states a copy of an item can be in, in the order the item page lists them."""


@dataclass(frozen=True)
class SourceRef:
    """Where in the fleet repo something is declared: a file and a 1-based line."""

    file: str
    line: int


@dataclass(frozen=True)
class Inputs:
    """What one pass of the daemon hands the dashboard."""

    node: str
    desired: DesiredState
    statuses: Sequence[NodeStatus]
    now: datetime
    journal: Sequence[JournalEntry] = ()
    sources: dict[tuple[str, str], SourceRef] = field(default_factory=dict)
    """(kind, name) -> where it is declared, e.g. ("CustodyRule", "films")."""
    error: str | None = None
    """The last pass's error on this node, if it failed."""


@dataclass(frozen=True)
class NodeRow:
    name: str
    cls: str
    freshness: str
    age: str
    revision: str | None
    conditions: list[tuple[str, str, str, str]]
    """(type, status, reason, message)."""
    disk_used: float | None
    """Fraction of the storage in use, over reachable roots; None when unknown."""
    disk_text: str
    vpn: list[tuple[str, bool]]
    duties: list[str]
    doing: str
    transmission: str


@dataclass(frozen=True)
class RuleRow:
    name: str
    min: int
    max: int | None
    items: int
    below: int
    at: int
    above: int
    waiting: int
    source: SourceRef | None


@dataclass(frozen=True)
class Transfer:
    """A copy on its way: a node fetching an item."""

    node: str
    key: str
    name: str
    percent: float
    rate_down: int
    rate_up: int
    peers: int
    size: int

    def as_json(self) -> dict[str, object]:
        return {"id": f"{self.node}/{self.key}", "node": self.node, "key": self.key,
                "name": self.name, "percent": round(self.percent * 100, 1),
                "rate": _rate(self.rate_down), "rate_up": _rate(self.rate_up), "peers": self.peers}


@dataclass(frozen=True)
class Copy:
    node: str
    state: str
    percent: float | None
    rank: int
    """Position in the item's rendezvous order (1 is first), 0 when not eligible."""


@dataclass(frozen=True)
class ItemPage:
    key: str
    name: str
    rules: list[CustodyRow]
    copies: list[Copy]
    actions: list[Action]
    warnings: list[PlanWarning]
    sources: list[tuple[str, SourceRef]]


@dataclass
class Snapshot:
    node: str
    now: datetime
    revision: str | None
    error: str | None
    nodes: list[NodeRow]
    overview: FleetOverview
    """The planner's views of this pass; custody and reaper rows are made on first use."""
    journal: list[JournalEntry]
    """Newest first."""
    transfers: list[Transfer]
    names: dict[str, str]
    """Item key -> name."""
    sources: dict[tuple[str, str], SourceRef]
    statuses: dict[str, NodeStatus]
    rule_limits: dict[str, tuple[int, int | None]]
    """Rule name -> (min, max), in name order."""
    collections: dict[str, str | None] = field(default_factory=dict)
    """Item key -> the collection that declares it."""

    def source_of(self, rule: str | None) -> SourceRef | None:
        """Where a plan action's rule (``custody/films``) is declared, if it is a resource."""
        kind, _, name = (rule or "").partition("/")
        kinds = {"custody": "CustodyRule", "watchlist": "Watchlist", "vpn": "VpnProfile"}
        return self.sources.get((kinds.get(kind, ""), name))

    @property
    def plan(self) -> Plan:
        return self.overview.plan

    @property
    def custody(self) -> list[CustodyState]:
        """Every (rule, item) with its state; ``row`` gives the full row of one."""
        return self.overview.custody_states

    def row(self, state: CustodyState) -> CustodyRow:
        return self.overview.custody_row(state.rule, state.key)

    @property
    def reaper(self) -> list[ReaperRow]:
        return self.overview.reaper

    @cached_property
    def rules(self) -> list[RuleRow]:
        by_rule: dict[str, Counter[str]] = {name: Counter() for name in self.rule_limits}
        for st in self.custody:
            by_rule.setdefault(st.rule, Counter())[st.state] += 1
        return [RuleRow(
            name=name, min=low, max=high, items=sum(by_rule[name].values()),
            below=by_rule[name]["below-floor"], waiting=by_rule[name]["waiting"],
            at=by_rule[name]["ok"], above=by_rule[name]["over-ceiling"],
            source=self.sources.get(("CustodyRule", name)),
        ) for name, (low, high) in self.rule_limits.items()]

    @cached_property
    def _by_item(self) -> dict[str, list[CustodyState]]:
        out: dict[str, list[CustodyState]] = {}
        for st in self.custody:
            out.setdefault(st.key, []).append(st)
        return out

    def item(self, key: str) -> ItemPage | None:
        found = self._by_item.get(key)
        if found is None and key not in self.names:
            return None
        rows = [self.row(st) for st in found or []]
        order = rows[0].order if rows else []
        states: dict[str, str] = {}
        for row in rows:
            for state in COPY_STATES:
                for n in getattr(row, "unknown" if state == "unknown" else state):
                    states.setdefault(n, state)
        percents = {n: t.percent_done for n, st in self.statuses.items()
                    for t in st.transmission.torrents if t.infohash == key}
        shown = list(dict.fromkeys([*order, *sorted(states), *sorted(percents)]))
        copies = [Copy(node=n, state=states.get(n, "none"), percent=percents.get(n),
                       rank=order.index(n) + 1 if n in order else 0) for n in shown]
        actions = [a for a in self.plan.actions if a.target == key]
        subjects = {key, *(f"custody/{r.rule}" for r in rows)}
        name = self.names.get(key)
        warnings = [w for w in self.plan.warnings if w.subject in subjects or key[:8] in w.message
                    or (name is not None and name in w.message)]
        refs = [(f"rule {r.rule}", self.sources[("CustodyRule", r.rule)]) for r in rows
                if ("CustodyRule", r.rule) in self.sources]
        collection = self.collections.get(key)
        if collection is not None and ("Collection", collection) in self.sources:
            refs.insert(0, (f"collection {collection}", self.sources[("Collection", collection)]))
        return ItemPage(key=key, name=self.names.get(key, key), rules=rows, copies=copies,
                        actions=actions, warnings=warnings, sources=refs)


def _rate(bps: int) -> str:
    return f"{size(bps)}/s" if bps else "–"


def transfers_of(statuses: Sequence[NodeStatus], fresh: set[str]) -> list[Transfer]:
    """Copies in progress on fresh nodes, by node and name."""
    out: list[Transfer] = []
    for st in statuses:
        if st.node not in fresh or not st.transmission.reachable:
            continue
        for t in st.transmission.torrents:
            if _moving(t):
                out.append(Transfer(node=st.node, key=t.infohash, name=t.name, percent=t.percent_done,
                                    rate_down=t.rate_download, rate_up=t.rate_upload,
                                    peers=t.peers_connected, size=t.size))
    return sorted(out, key=lambda t: (t.node, t.name, t.key))


def _moving(t: TorrentStatus) -> bool:
    return not t.complete and t.error == 0 and t.state.value != "stopped"


def _doing(st: NodeStatus | None, freshness: Freshness, silent: str) -> str:
    if st is None:
        return "never reported"
    if freshness is not Freshness.fresh:
        return f"silent for {silent}: its last status is not counted on"
    parts: list[str] = []
    if not st.transmission.reachable:
        parts.append("Transmission unreachable")
    down = [t for t in st.transmission.torrents if _moving(t)]
    if down:
        parts.append(f"fetching {len(down)} item{'s' if len(down) != 1 else ''} at "
                     f"{_rate(st.transmission.download_rate)}")
    if st.player is not None and st.player.reachable and not st.player.idle and st.player.path:
        parts.append("playing " + st.player.path.rsplit("/", 1)[-1])
    seeding = sum(1 for t in st.transmission.torrents if t.complete)
    if seeding:
        parts.append(f"keeping {seeding} cop{'ies' if seeding != 1 else 'y'}")
    return "; ".join(parts) or "idle"


def _disk(st: NodeStatus | None) -> tuple[float | None, str]:
    roots = [s for s in st.storage if s.reachable and s.total > 0] if st else []
    if not roots:
        return None, "unknown"
    total = sum(s.total for s in roots)
    free = sum(s.free for s in roots)
    return (total - free) / total, f"{size(free)} free of {size(total)}"


def build_snapshot(inputs: Inputs) -> Snapshot:
    """The dashboard's data at ``inputs.now``: one planning pass over the whole fleet."""
    desired = inputs.desired
    view = build_fleet_view(desired, inputs.statuses, inputs.now)
    overview = fleet_overview(desired, inputs.statuses, inputs.now, inputs.journal)
    nodes: list[NodeRow] = []
    for name, nv in view.nodes.items():
        st = nv.status
        dev = desired.devices[name]
        used, disk = _disk(st)
        tr = "–"
        if st is not None:
            tr = (f"Transmission {st.transmission.version or '?'}" if st.transmission.reachable
                  else "Transmission unreachable")
        nodes.append(NodeRow(
            name=name, cls=dev.device_class.value,
            freshness=nv.freshness.value, age=age(nv.age),
            revision=st.desired_revision if st else None,
            conditions=[(c.type, c.status.value, c.reason, c.message) for c in st.conditions] if st else [],
            disk_used=used, disk_text=disk,
            vpn=[(v.profile, v.up) for v in st.vpn] if st else [],
            duties=list(st.duties) if st else [],
            doing=_doing(st, nv.freshness, age(nv.age)), transmission=tr,
        ))
    fresh = {n for n, v in view.nodes.items() if v.freshness is Freshness.fresh}
    latest = {n: v.status for n, v in view.nodes.items() if v.status is not None}
    return Snapshot(
        node=inputs.node, now=inputs.now, revision=desired.revision, error=inputs.error,
        nodes=nodes, overview=overview,
        journal=sorted(inputs.journal, key=lambda e: e.at, reverse=True),
        transfers=transfers_of(list(latest.values()), fresh),
        names={k: it.name for k, it in desired.items.items()}, sources=dict(inputs.sources),
        statuses=latest,
        rule_limits={n: (desired.custody[n].min, desired.custody[n].max) for n in sorted(desired.custody)},
        collections={k: it.collection for k, it in desired.items.items()},
    )
