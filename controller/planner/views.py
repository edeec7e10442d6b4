"""The fleet views behind ``tva fleet duties|custody|reaper|peers``: the planner's reasoning
laid out per duty, per rule and item, per torrent and per holder, from the same pass that
produces the plan (so a view never disagrees with the plan)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from controller.planner.context import Context, build_context
from controller.planner.core import run_pass
from controller.planner.custody import count
from controller.planner.duties import assign_duties
from controller.planner.gates import f2f_blocked, search_refusal
from controller.planner.hashing import hrw_order
from controller.planner.health import Health
from controller.planner.ledger import Ledger
from controller.planner.memory import JournalIndex
from schemas.desired import DesiredState, Duty, ResolvedItem
from schemas.journal import JournalEntry
from schemas.observed import NodeStatus
from schemas.plan import DutyAssignment, PlanWarning

__all__ = [
    "CustodyRow",
    "PeerFinder",
    "PeerRow",
    "ReaperRow",
    "custody_view",
    "duty_view",
    "find_item",
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
    by_target = _actions_for(ledger)
    only = find_item(desired, item).key if item is not None else None
    rows: list[CustodyRow] = []
    for name in sorted(desired.custody):
        rule = desired.custody[name]
        elig = ctx.eligible[name]
        maybe = [n for n in elig if ctx.nodes[n].maybe_holder]
        for key in ctx.rule_items[name]:
            if only is not None and key != only:
                continue
            c = count(ctx, rule, key, frozenset(elig), maybe)
            if c.good < rule.min:
                state = "waiting" if c.held >= rule.min else "below-floor"
            elif rule.max is not None and c.good > rule.max:
                state = "over-ceiling"
            else:
                state = "ok"
            it = desired.items[key]
            rows.append(CustodyRow(
                rule=name, key=key, name=it.name, min=rule.min, max=rule.max, state=state,
                counted=sorted(c.live + c.trusted), live=c.live, trusted=c.trusted,
                pending=c.pending, away=c.away, gone=c.gone, broken=c.broken, unknown=c.maybe,
                order=hrw_order(key, elig),
                actions=sorted(aid for aid, r in by_target.get(key, []) if r == f"custody/{name}"),
            ))
    return rows


def reaper_view(
    desired: DesiredState, statuses: Sequence[NodeStatus], now: datetime, journal: Sequence[JournalEntry] = ()
) -> list[ReaperRow]:
    """Every torrent on every fresh node with Transmission reachable, with its health."""
    ctx, ledger, _ = run_pass(desired, statuses, now, journal)
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
    return rows
