"""The fleet views behind ``tva fleet duties|custody|reaper|peers``: the planner's reasoning
laid out per duty, per rule and item, per torrent and per holder, from the same pass that
produces the plan (so a view never disagrees with the plan)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

from controller.planner.assemble import assemble
from controller.planner.context import Context, build_context
from controller.planner.core import run_pass
from controller.planner.custody import count, custody_tally
from controller.planner.duties import assign_duties
from controller.planner.gates import f2f_blocked, fabric_reach, search_refusal
from controller.planner.hashing import hrw_order
from controller.planner.health import Health
from controller.planner.ledger import Ledger
from controller.planner.memory import JournalIndex
from schemas.desired import DesiredState, Duty, ResolvedItem
from schemas.journal import JournalEntry
from schemas.observed import NodeStatus
from schemas.plan import DutyAssignment, Plan, PlanWarning

__all__ = [
    "CustodyRow",
    "CustodyState",
    "FleetOverview",
    "PeerFinder",
    "PeerRow",
    "ReaperRow",
    "custody_view",
    "duty_view",
    "find_item",
    "fleet_overview",
    "peers_view",
    "reaper_view",
]


@dataclass(frozen=True)
class CustodyRow:
    rule: str
    key: str
    name: str
    min: int
    max: int | None
    state: str
    """ok, waiting (held copies will count), below-floor, over-ceiling."""
    counted: list[str]
    live: list[str]
    trusted: list[str]
    pending: list[str]
    away: list[str]
    gone: list[str]
    broken: list[str]
    unknown: list[str]
    order: list[str]
    """The rule's eligible custodians in this item's rendezvous order."""
    actions: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ReaperRow:
    node: str
    key: str
    name: str
    health: str
    cause: str | None
    detail: str
    strikes: int
    actions: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PeerRow:
    node: str
    peer: str | None
    state: str
    """complete or partial."""
    percent_done: float
    freshness: str


def duty_view(
    desired: DesiredState, statuses: Sequence[NodeStatus], now: datetime
) -> tuple[list[DutyAssignment], list[PlanWarning]]:
    ctx, ledger, _ = run_pass(desired, statuses, now)
    return ctx.duty_assignments, [w for w in ledger.all_warnings()
                                  if w.code in ("invariant-broken", "duty-holder-away",
                                                "duty-unassigned")]


def _actions_for(ledger: Ledger) -> dict[str, list[tuple[str, str | None]]]:
    out: dict[str, list[tuple[str, str | None]]] = {}
    for a in ledger.actions.values():
        out.setdefault(a.target, []).append((a.id, a.rule))
    return out


def custody_view(
    desired: DesiredState,
    statuses: Sequence[NodeStatus],
    now: datetime,
    journal: Sequence[JournalEntry] = (),
    *,
    item: str | None = None,
) -> list[CustodyRow]:
    ctx, ledger, _ = run_pass(desired, statuses, now, journal)
    only = find_item(desired, item).key if item is not None else None
    return _custody_rows(desired, ctx, ledger, only)


def _custody_rows(desired: DesiredState, ctx: Context, ledger: Ledger, only: str | None) -> list[CustodyRow]:
    by_target = _actions_for(ledger)
    return [_custody_row(desired, ctx, by_target, name, key)
            for name in sorted(desired.custody) for key in ctx.rule_items[name]
            if only is None or key == only]


def _custody_row(desired: DesiredState, ctx: Context, by_target: dict[str, list[tuple[str, str | None]]],
                 name: str, key: str) -> CustodyRow:
    rule = desired.custody[name]
    elig = ctx.eligible[name]
    maybe = [n for n in elig if ctx.nodes[n].maybe_holder]
    c = count(ctx, rule, key, frozenset(elig), maybe)
    if c.good < rule.min:
        state = "waiting" if c.held >= rule.min else "below-floor"
    elif rule.max is not None and c.good > rule.max:
        state = "over-ceiling"
    else:
        state = "ok"
    return CustodyRow(
        rule=name, key=key, name=desired.items[key].name, min=rule.min, max=rule.max, state=state,
        counted=sorted(c.live + c.trusted), live=c.live, trusted=c.trusted,
        pending=c.pending, away=c.away, gone=c.gone, broken=c.broken, unknown=c.maybe,
        order=hrw_order(key, elig),
        actions=sorted(aid for aid, r in by_target.get(key, []) if r == f"custody/{name}"),
    )


def reaper_view(
    desired: DesiredState, statuses: Sequence[NodeStatus], now: datetime, journal: Sequence[JournalEntry] = ()
) -> list[ReaperRow]:
    """Every torrent on every fresh node with Transmission reachable, with its health."""
    ctx, ledger, _ = run_pass(desired, statuses, now, journal)
    return _reaper_rows(ctx, ledger)


def _reaper_rows(ctx: Context, ledger: Ledger) -> list[ReaperRow]:
    by_target = _actions_for(ledger)
    rows: list[ReaperRow] = []
    for node, nf in ctx.nodes.items():
        if not nf.actionable:
            continue
        for key, t in nf.torrents.items():
            a = ctx.assess(node, t)
            rows.append(ReaperRow(
                node=node, key=key, name=t.name, health=a.health.value, cause=a.cause,
                detail=a.detail, strikes=a.strikes,
                actions=sorted(aid for aid, r in by_target.get(key, []) if r == "reaper")
                if a.health is not Health.healthy else [],
            ))
    return rows


@dataclass(frozen=True)
class CustodyState:
    """An item's custody state under one rule, without the lists of a ``CustodyRow``."""

    rule: str
    key: str
    name: str
    state: str


class FleetOverview:
    """Everything the fleet views show, from one planning pass (the dashboard's input).

    Rows are made on first use: the custody states of every item come from one sweep over the
    holdings (most items are at their floor; only the others are counted copy by copy, as the
    planner's custody step does), a full ``CustodyRow`` only for the items a page shows, the
    reaper's rows only for a page that shows them.
    """

    def __init__(self, desired: DesiredState, ctx: Context, ledger: Ledger) -> None:
        self._desired, self._ctx, self._ledger = desired, ctx, ledger
        self._rows: dict[tuple[str, str], CustodyRow] = {}
        self.plan: Plan = assemble(
            revision=desired.revision, now=ctx.now, nodes=sorted(desired.devices),
            actions=ledger.actions.values(), warnings=ledger.all_warnings(),
            duties=ctx.duty_assignments, deferred=ledger.deferred,
            suspended=desired.fleet.policy.suspend,
        )
        """The whole fleet's plan (every node's actions)."""

    @cached_property
    def _by_target(self) -> dict[str, list[tuple[str, str | None]]]:
        return _actions_for(self._ledger)

    @cached_property
    def custody_states(self) -> list[CustodyState]:
        """Every (rule, item) with its state, by rule name then the rule's item order."""
        ctx, desired = self._ctx, self._desired
        out: list[CustodyState] = []
        for name in sorted(desired.custody):
            rule = desired.custody[name]
            ceiling = rule.max if rule.max is not None else 1 << 30
            tally = custody_tally(ctx, ctx.eligible[name])
            for key in ctx.rule_items[name]:
                good, held = tally.get(key, (0, 0))
                # The sweep's good copies are a lower bound (a complete copy with a tracker
                # error counts, but is only "held" there) and its held copies an upper bound.
                if good >= rule.min and held <= ceiling:
                    out.append(CustodyState(name, key, desired.items[key].name, "ok"))
                else:
                    row = self.custody_row(name, key)
                    out.append(CustodyState(name, key, row.name, row.state))
        return out

    def custody_row(self, rule: str, key: str) -> CustodyRow:
        row = self._rows.get((rule, key))
        if row is None:
            row = self._rows[(rule, key)] = _custody_row(self._desired, self._ctx, self._by_target,
                                                         rule, key)
        return row

    @cached_property
    def custody(self) -> list[CustodyRow]:
        return [self.custody_row(s.rule, s.key) for s in self.custody_states]

    @cached_property
    def reaper(self) -> list[ReaperRow]:
        return _reaper_rows(self._ctx, self._ledger)


def fleet_overview(
    desired: DesiredState, statuses: Sequence[NodeStatus], now: datetime, journal: Sequence[JournalEntry] = ()
) -> FleetOverview:
    """The fleet's plan, custody and reaper views at ``now`` from one planning pass (the views
    above each run their own)."""
    ctx, ledger, _ = run_pass(desired, statuses, now, journal)
    return FleetOverview(desired, ctx, ledger)


def find_item(desired: DesiredState, ref: str) -> ResolvedItem:
    """An item by info-hash, unique info-hash prefix (8+ digits) or exact name."""
    from controller.errors import PermanentError

    low = ref.lower()
    if low in desired.items:
        return desired.items[low]
    by_name = [it for it in desired.items.values() if it.name == ref]
    if len(by_name) == 1:
        return by_name[0]
    if len(low) >= 8:
        prefixed = [it for k, it in desired.items.items() if k.startswith(low)]
        if len(prefixed) == 1:
            return prefixed[0]
    raise PermanentError(f"no single item matches {ref!r}; give its info-hash or exact name")


class PeerFinder:
    """The fleet holders of items against one fleet view, with the index built once.

    The daemon's tracker answers every announce of its Transmission from one of these per pass,
    so an announce costs a lookup, not a walk over the fleet's holdings.
    """

    def __init__(self, desired: DesiredState, statuses: Sequence[NodeStatus], now: datetime) -> None:
        # Only the index and the duties are needed (no custody pass).
        self.desired = desired
        self.ctx = build_context(desired, statuses, now, JournalIndex(()))
        duties = assign_duties(self.ctx)
        self.ctx.duty_holders = duties.holders
        self.ctx.face_eligible = duties.eligible.get(Duty.public_swarm_face, ())

    def peers(
        self, item: str, requester: str | None = None
    ) -> tuple[ResolvedItem, list[PeerRow], list[str]]:
        """Fleet holders ``requester`` may fetch ``item`` from, and the gates applied, in words."""
        ctx = self.ctx
        it = find_item(self.desired, item)
        gates: list[str] = []
        if it.f2f_only:
            gates.append("f2f_only: never from or to the public_swarm_face, no public trackers")
            if requester is not None and f2f_blocked(ctx, requester, it.key):
                gates.append(f"{requester} is the public_swarm_face: it gets no peers for this item")
                return it, [], gates
        if not it.fleet_only and ctx.face_eligible:
            face = ctx.face or "the public_swarm_face (none live)"
            gates.append(f"public: {face} fetches it from the public swarm; every other node "
                         "takes it from the fleet only")
        refusal = search_refusal(ctx, it.key)
        gates.append("public re-search: " + ("allowed" if refusal is None else f"no ({refusal})"))
        return it, _peer_rows(ctx, it, requester), gates


def peers_view(
    desired: DesiredState,
    statuses: Sequence[NodeStatus],
    now: datetime,
    item: str,
    *,
    requester: str | None = None,
) -> tuple[ResolvedItem, list[PeerRow], list[str]]:
    """Fleet holders ``requester`` may fetch ``item`` from (the seed of peers_for), and the
    gates that were applied, in words."""
    return PeerFinder(desired, statuses, now).peers(item, requester)


def _peer_rows(ctx: Context, it: ResolvedItem, requester: str | None) -> list[PeerRow]:
    from controller.planner.context import CopyState

    rows: list[PeerRow] = []
    for c in ctx.copies(it.key):
        if c.node == requester:
            continue
        if c.state not in (CopyState.live, CopyState.pending):
            continue
        if it.f2f_only and c.node == ctx.face:
            continue
        nf = ctx.nodes[c.node]
        rows.append(PeerRow(
            node=c.node, peer=nf.device.addresses.peer,
            state="complete" if c.state is CopyState.live else "partial",
            percent_done=c.torrent.percent_done, freshness=nf.freshness.value,
        ))
    reach = fabric_reach(ctx, requester)
    if reach is not None:  # holders the requester reaches over the fabric now come first
        rows.sort(key=lambda r: r.node not in reach)
    return rows
