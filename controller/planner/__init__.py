"""The planner: a pure function from desired state, observed fleet and ``now`` to a Plan.

``plan(desired, statuses, now)`` reads no clock, does no I/O and draws no random numbers; given
the same inputs it returns the same plan, byte for byte, whatever the order of files, nodes or
torrents. ``plan``, ``apply``, ``run`` and ``review`` all call it. The rules it applies, their
order and their tie-breaks are documented in docs/planner.md; the output format in
docs/plan-format.md.
"""

from controller.planner.core import plan
from controller.planner.freshness import (
    FUTURE_TOLERANCE,
    FleetView,
    Freshness,
    NodeView,
    build_fleet_view,
)
from controller.planner.verdicts import verdicts, with_verdicts
from controller.planner.views import (
    CustodyRow,
    PeerFinder,
    PeerRow,
    ReaperRow,
    custody_view,
    duty_view,
    peers_view,
    reaper_view,
)

__all__ = [
    "FUTURE_TOLERANCE",
    "CustodyRow",
    "FleetView",
    "Freshness",
    "NodeView",
    "PeerFinder",
    "PeerRow",
    "ReaperRow",
    "build_fleet_view",
    "custody_view",
    "duty_view",
    "peers_view",
    "plan",
    "reaper_view",
    "verdicts",
    "with_verdicts",
]
