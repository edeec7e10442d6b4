"""Compare two revisions of the fleet: what the change means and what it will do.

Pure, like the planner it calls: two desired states, one set of observed statuses and one
instant in, a :class:`~controller.review.model.Review` out. Both revisions are planned with
``controller.planner.plan`` over the *same* statuses and ``now``, so the plan delta is exactly
``tva plan`` on HEAD minus ``tva plan`` on BASE (by action id), and nothing but the change can
make them differ.

The plan is one pass, and the per-node rate limit (``max_new_pins_per_node``) spreads a big
re-pin over many passes. A review wants the whole effect, so when either plan defers pins both
revisions are also planned with the limit lifted (the *projection*): the placement is the same
deterministic function, so the projection is what the passes add up to if nothing else
changes. Lists show the next pass (what ``tva plan`` shows); totals, capacity and floors use
the projection.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from controller.planner import CustodyRow, FleetView, build_fleet_view, custody_view, plan
from controller.review.model import (
    CapacityRow,
    ChangeRow,
    Delta,
    DutyMove,
    FloorRow,
    NodeDelta,
    NodeSeen,
    Review,
    RevisionInfo,
)
from controller.review.risks import (
    PIN_KINDS,
    REMOVAL_KINDS,
    capacity_risk,
    f2f_risk,
    face_risk,
    floor_risk,
    prune_risk,
    removal_risk,
    suspend_risk,
)
from controller.review.semantic import semantic_diff
from schemas.desired import DesiredState, Duty, Fleet
from schemas.observed import NodeStatus
from schemas.plan import Action, Plan, PlanWarning

__all__ = ["Side", "compare", "empty_like", "minus", "plan_side"]

NOISE_CODES = frozenset({"rate-limited", "suspended"})
"""Plan warnings left out of the warnings diff: deferral and suspension are reported on their
own (the delta's deferred counts, the suspend-on flag)."""
UNLIMITED = 1_000_000_000


@dataclass(frozen=True)
class Side:
    """One revision, planned."""

    desired: DesiredState
    view: FleetView
    plan: Plan
    projected: Plan
    """The plan with the rate limit lifted; ``plan`` itself when nothing was deferred."""
    rows: list[CustodyRow]


def empty_like(head: DesiredState) -> DesiredState:
    """The fleet with nothing in it and default policies: what an invalid BASE with no valid
    ancestor is compared as (every resource of HEAD is new)."""
    fleet = Fleet.model_validate({"apiVersion": "tva/v1", "kind": "Fleet",
                                  "name": head.fleet.name})
    return DesiredState(fleet=fleet, devices={})


def _unlimited(desired: DesiredState) -> DesiredState:
    policy = desired.fleet.policy
    custody = policy.custody.model_copy(update={"max_new_pins_per_node": UNLIMITED})
    fleet = desired.fleet.model_copy(
        update={"policy": policy.model_copy(update={"custody": custody})})
    return desired.model_copy(update={"fleet": fleet})


def plan_side(desired: DesiredState, statuses: Sequence[NodeStatus], now: datetime) -> Side:
    view = build_fleet_view(desired, statuses, now)
    exact = plan(desired, statuses, now)
    projected = exact if exact.summary.deferred == 0 else plan(_unlimited(desired), statuses, now)
    return Side(desired, view, exact, projected, custody_view(desired, statuses, now))


def compare(
    base: DesiredState | None,
    head: DesiredState,
    statuses: Sequence[NodeStatus],
    now: datetime,
    *,
    base_info: RevisionInfo | None = None,
    head_info: RevisionInfo | None = None,
    notes: Iterable[str] = (),
) -> Review:
    """The review of the change from ``base`` (None: nothing valid) to ``head``."""
    b = plan_side(base if base is not None else empty_like(head), statuses, now)
    h = plan_side(head, statuses, now)
    changes = [ChangeRow(kind=c.kind, name=c.name, op=c.op, detail=c.detail, text=str(c))
               for c in semantic_diff(b.desired, head)]
    delta = _delta(b, h)
    moves = _duty_moves(b.plan, h.plan)
    appeared, resolved = _warning_diff(b.plan.warnings, h.plan.warnings)
    capacity = _capacity(b, h)
    floors = _floors(b, h)
    short = [w for w in _warning_diff(b.projected.warnings, h.projected.warnings)[0]
             if w.code == "capacity-short"]
    risks = [r for r in (
        removal_risk(delta.removals, head),
        floor_risk(floors),
        capacity_risk(capacity, short),
        f2f_risk((b.desired, _face(b.plan), b.view, b.projected) if base is not None else None,
                 (h.desired, _face(h.plan), h.view, h.projected)),
        face_risk(_face(b.plan) if base is not None else None, head, _face(h.plan)),
        suspend_risk(base, head),
        prune_risk(base, head, delta.removals),
    ) if r is not None]
    effect = bool(changes or not delta.empty or moves or appeared or resolved)
    return Review(
        fleet=head.fleet.name,
        base=base_info or RevisionInfo(requested="BASE", revision=b.desired.revision,
                                       compared=b.desired.revision, valid=base is not None),
        head=head_info or RevisionInfo(requested="HEAD", revision=head.revision,
                                       compared=head.revision),
        now=now,
        statuses=_seen(b.view, h.view),
        effect=effect,
        changes=changes,
        duty_moves=moves,
        warnings_appeared=appeared,
        warnings_resolved=resolved,
        delta=delta,
        nodes=_node_rows(delta, b, h),
        capacity=capacity,
        floors=floors,
        risks=risks,
        suspended=head.fleet.policy.suspend,
        notes=list(notes),
    )


# --------------------------------------------------------------------------- plan delta


def minus(a: Plan, b: Plan) -> list[Action]:
    """Actions of ``a`` whose id ``b`` does not plan, in ``a``'s order."""
    ids = {x.id for x in b.actions}
    return [x for x in a.actions if x.id not in ids]


def _delta(b: Side, h: Side) -> Delta:
    new, gone = minus(h.plan, b.plan), minus(b.plan, h.plan)
    proj_new, proj_gone = minus(h.projected, b.projected), minus(b.projected, h.projected)
    proj_pins = [a for a in proj_new if a.kind in PIN_KINDS]
    proj_unpins = [a for a in proj_gone if a.kind in PIN_KINDS]
    return Delta(
        pins=[a for a in new if a.kind in PIN_KINDS],
        unpins=[a for a in gone if a.kind in PIN_KINDS],
        removals=[a for a in new if a.kind in REMOVAL_KINDS],
        removals_cancelled=[a for a in gone if a.kind in REMOVAL_KINDS],
        other_added=[a for a in new if a.kind not in PIN_KINDS | REMOVAL_KINDS],
        other_dropped=[a for a in gone if a.kind not in PIN_KINDS | REMOVAL_KINDS],
        deferred_base=b.plan.summary.deferred,
        deferred_head=h.plan.summary.deferred,
        projected_pins=len(proj_pins),
        projected_pin_bytes=sum(a.bytes or 0 for a in proj_pins),
        projected_unpins=len(proj_unpins),
        projected_unpin_bytes=sum(a.bytes or 0 for a in proj_unpins),
    )


def _node_rows(delta: Delta, b: Side, h: Side) -> list[NodeDelta]:
    rows: dict[str, dict[str, int]] = {}

    def add(actions: Iterable[Action], count: str, size: str | None = None) -> None:
        for a in actions:
            r = rows.setdefault(a.node, {})
            r[count] = r.get(count, 0) + 1
            if size is not None:
                r[size] = r.get(size, 0) + (a.bytes or 0)

    add(delta.pins, "pins", "pin_bytes")
    add(delta.unpins, "unpins", "unpin_bytes")
    add(delta.removals, "removals", "removal_bytes")
    add(delta.other_added, "other")
    add(delta.other_dropped, "other")
    proj = [a for a in minus(h.projected, b.projected) if a.kind in PIN_KINDS]
    add(proj, "projected_pins", "projected_pin_bytes")
    return [NodeDelta(node=n, **rows[n]) for n in sorted(rows)]


# --------------------------------------------------------------------------- duties, warnings


def _face(p: Plan) -> str | None:
    for d in p.duties:
        if d.duty == Duty.public_swarm_face.value and d.nodes:
            return d.nodes[0]
    return None


def _duty_moves(base: Plan, head: Plan) -> list[DutyMove]:
    before = {d.duty: d.nodes for d in base.duties}
    after = {d.duty: d.nodes for d in head.duties}
    order = [d.value for d in Duty] + sorted((before.keys() | after.keys()) - {d.value for d in Duty})
    out: list[DutyMove] = []
    for duty in order:
        old, new = before.get(duty, []), after.get(duty, [])
        if sorted(old) != sorted(new):
            out.append(DutyMove(duty=duty, before=list(old), after=list(new)))
    return out


def _wkey(w: PlanWarning) -> tuple[str, str | None, str | None, str]:
    return (w.code, w.node, w.subject, w.message)


def _warning_diff(
    base: list[PlanWarning], head: list[PlanWarning]
) -> tuple[list[PlanWarning], list[PlanWarning]]:
    """(appeared, resolved); a warning whose message changed counts as both."""
    b = {_wkey(w) for w in base if w.code not in NOISE_CODES}
    h = {_wkey(w) for w in head if w.code not in NOISE_CODES}
    appeared = [w for w in head if w.code not in NOISE_CODES and _wkey(w) not in b]
    resolved = [w for w in base if w.code not in NOISE_CODES and _wkey(w) not in h]
    return appeared, resolved


def _seen(b: FleetView, h: FleetView) -> list[NodeSeen]:
    out: dict[str, NodeSeen] = {}
    for view in (b, h):
        for name, nv in view.nodes.items():
            out[name] = NodeSeen(node=name, freshness=nv.freshness.value,
                                 observed_at=nv.status.observed_at if nv.status else None)
    return [out[n] for n in sorted(out)]


# --------------------------------------------------------------------------- capacity


def _capacity_rows(side: Side) -> dict[str, CapacityRow]:
    incoming: dict[str, int] = {}
    outgoing: dict[str, int] = {}
    for a in side.projected.actions:
        if a.kind in PIN_KINDS:
            incoming[a.node] = incoming.get(a.node, 0) + (a.bytes or 0)
        elif a.kind in REMOVAL_KINDS:
            outgoing[a.node] = outgoing.get(a.node, 0) + (a.bytes or 0)
    reserve = side.desired.fleet.policy.custody.reserve
    rows: dict[str, CapacityRow] = {}
    for name, dev in sorted(side.desired.devices.items()):
        if not dev.storage and name not in incoming:
            continue
        nv = side.view.nodes.get(name)
        st = nv.status if nv is not None else None
        free = st.free_bytes() if st is not None else None
        held = (sum(t.size for t in st.transmission.torrents)
                if st is not None and st.transmission.reachable else 0)
        inc, out = incoming.get(name, 0), outgoing.get(name, 0)
        rows[name] = CapacityRow(
            node=name, capacity=dev.capacity, free=free, reserve=reserve, held=held,
            incoming=inc, outgoing=out,
            over_free=free is not None and inc > 0 and inc - out > free - reserve,
            over_capacity=bool(dev.storage) and held + inc - out > dev.capacity,
            new=False,
        )
    return rows


def _capacity(b: Side, h: Side) -> list[CapacityRow]:
    before = _capacity_rows(b)
    out = []
    for name, row in _capacity_rows(h).items():
        old = before.get(name)
        new = (row.over_free and not (old is not None and old.over_free)) or (
            row.over_capacity and not (old is not None and old.over_capacity))
        out.append(row.model_copy(update={"new": new}))
    return out


# --------------------------------------------------------------------------- floors


def _floor_rows(side: Side) -> tuple[dict[str, FloorRow], dict[str, FloorRow]]:
    """Items below a floor now, and items that stay below one after the plan (projection),
    each with its worst rule."""
    adds: dict[str, set[str]] = {}
    for a in side.projected.actions:
        if a.kind in PIN_KINDS:
            adds.setdefault(a.target, set()).add(a.node)
    below: dict[str, FloorRow] = {}
    short: dict[str, FloorRow] = {}
    for row in side.rows:
        held = len(row.counted) + len(row.pending) + len(row.away) + len(row.unknown)
        after = held + len(adds.get(row.key, set()) & set(row.order))
        fr = FloorRow(key=row.key, name=row.name, rule=f"custody/{row.rule}", min=row.min,
                      copies=held, after=after, reachable=after >= row.min)
        if row.state == "below-floor":
            cur = below.get(row.key)
            if cur is None or (fr.min - fr.copies) > (cur.min - cur.copies):
                below[row.key] = fr
        if after < row.min:
            cur = short.get(row.key)
            if cur is None or (fr.min - fr.after) > (cur.min - cur.after):
                short[row.key] = fr
    return below, short


def _floors(b: Side, h: Side) -> list[FloorRow]:
    b_below, b_short = _floor_rows(b)
    h_below, h_short = _floor_rows(h)
    out: dict[str, FloorRow] = {}
    for key, fr in h_below.items():
        if key not in b_below:
            out[key] = h_short.get(key, fr)
    for key, fr in h_short.items():
        if key not in b_short:
            out[key] = fr
    return [out[k] for k in sorted(out, key=lambda k: (out[k].reachable, out[k].name, k))]
