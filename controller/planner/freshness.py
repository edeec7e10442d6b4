"""Freshness: every device's latest status, joined with how old it is at ``now``.

The planner decides freshness (it is the first rule every later rule depends on): ``plan`` and
the views take the statuses as read and ``now``, and build the view here. Other callers that
show freshness (``tva status --fleet``, the review, the lab) call ``build_fleet_view`` through
``controller.planner`` so that what they show is what the planner used.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from schemas.desired import DesiredState, Device, TrustLevel
from schemas.observed import NodeStatus

__all__ = ["FUTURE_TOLERANCE", "FleetView", "Freshness", "NodeView", "build_fleet_view", "grace_of"]

FUTURE_TOLERANCE = timedelta(minutes=5)
"""How far ahead of ``now`` a status may be dated and still count (clocks drift a little). A
status dated further ahead (a wrong clock, or a forged status ref) would otherwise stay fresh
for as long as its date is ahead: it counts as stale instead, and the planner warns."""


class Freshness(StrEnum):
    fresh = "fresh"
    """Reported within ``policy.freshness.stale_after``."""
    stale = "stale"
    """Older than stale_after but within the grace period: copies do not count, nothing moves."""
    gone = "gone"
    """Older than the grace period: the baton rolls."""
    unknown = "unknown"
    """Never reported. Treated as gone for placement, and its copies never count."""


class NodeView(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    freshness: Freshness
    age: timedelta | None
    trust: TrustLevel
    status: NodeStatus | None
    ahead: timedelta | None = None
    """How far beyond ``FUTURE_TOLERANCE`` ahead of ``now`` the status is dated, when it is."""
    reached_by: tuple[str, ...] = ()
    """Fresh nodes that reached this one over the fabric (a recent WireGuard handshake) when
    they last reported. A node so reached is alive: it is held stale, never gone."""


class FleetView(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    nodes: dict[str, NodeView]

    def status(self, node: str) -> NodeStatus | None:
        view = self.nodes.get(node)
        return view.status if view else None


def grace_of(desired: DesiredState, dev: Device) -> timedelta:
    """How long ``dev`` may be silent before it is gone: the fleet's grace, or the device's
    expected absence (``presence.expected_absence``) when that is longer."""
    grace = desired.fleet.policy.freshness.grace
    expected = dev.presence.expected_absence
    return max(grace, expected) if expected is not None else grace


def build_fleet_view(
    desired: DesiredState, statuses: Iterable[NodeStatus], now: datetime
) -> FleetView:
    """Join the newest status of each desired device with its freshness at ``now``.

    Statuses of nodes that are not devices of the fleet are ignored (a removed device's old
    status must not count). A status from the future (clock skew) counts as age zero.
    """
    latest: dict[str, NodeStatus] = {}
    for candidate in statuses:
        if candidate.node in desired.devices:
            cur = latest.get(candidate.node)
            if cur is None or candidate.observed_at > cur.observed_at:
                latest[candidate.node] = candidate
    fresh_for = desired.fleet.policy.freshness.stale_after
    nodes: dict[str, NodeView] = {}
    for name, dev in sorted(desired.devices.items()):
        grace = grace_of(desired, dev)
        st = latest.get(name)
        if st is None:
            nodes[name] = NodeView(name=name, freshness=Freshness.unknown, age=None, trust=dev.trust, status=None)
            continue
        age = max(now - st.observed_at, timedelta(0))
        ahead = st.observed_at - now
        if ahead > FUTURE_TOLERANCE:
            nodes[name] = NodeView(name=name, freshness=Freshness.stale, age=age, trust=dev.trust,
                                   status=st, ahead=ahead)
            continue
        if age <= fresh_for:
            freshness = Freshness.fresh
        elif age <= grace:
            freshness = Freshness.stale
        else:
            freshness = Freshness.gone
        nodes[name] = NodeView(name=name, freshness=freshness, age=age, trust=dev.trust, status=st)
    return FleetView(nodes=_fabric_alive(desired, nodes))


def _fabric_alive(desired: DesiredState, nodes: dict[str, NodeView]) -> dict[str, NodeView]:
    """Fabric reachability as a liveness fact (issue 19): a node whose status stopped arriving
    (its git remote unreachable from a hotel, say) while fresh nodes still reach it over the
    fabric is alive. It is held stale instead of gone, so nothing re-pins away from it; its
    copies still do not count (what it holds is not known fresh). Only published statuses are
    read, so every node reaches the same verdict."""
    if desired.fabric is None:
        return nodes
    out = dict(nodes)
    for name, view in nodes.items():
        by = tuple(sorted(
            other for other, v in nodes.items()
            if other != name and view.status is not None and v.freshness is Freshness.fresh and v.status is not None
            and v.status.fabric is not None and name in v.status.fabric.reachable))
        if not by:
            continue
        freshness = Freshness.stale if view.freshness is Freshness.gone else view.freshness
        out[name] = view.model_copy(update={"reached_by": by, "freshness": freshness})
    return out
