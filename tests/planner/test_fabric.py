"""Fabric reachability in the planner (issue 19): a node fresh nodes still reach over the
fabric is alive (held stale, never gone), and holders the fetching node reaches over the
fabric are its first sources. On the travel example: the pi relays for two roaming laptops.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controller.desired import load_fleet
from controller.planner import Freshness, build_fleet_view
from controller.planner.views import peers_view
from schemas.desired import DesiredState
from schemas.observed import (
    FabricStatus,
    NodeStatus,
    TorrentState,
    TorrentStatus,
    TransmissionStatus,
)

TRAVEL = Path(__file__).resolve().parents[2] / "examples" / "travel"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SINTEL = "c933282f6510196de76019f73590c8b95c6ce49a"


@pytest.fixture(scope="module")
def desired() -> DesiredState:
    d = load_fleet(str(TRAVEL)).desired
    assert d.fabric is not None
    return d


def status(node: str, age: timedelta, *, reaches: list[str] | None = None,
           holds: bool = False) -> NodeStatus:
    torrents = [TorrentStatus(infohash=SINTEL, name="Sintel", size=1, percent_done=1.0,
                              state=TorrentState.seeding)] if holds else []
    fabric = None if reaches is None else FabricStatus(interface="tva0", up=True,
                                                       reachable=reaches)
    return NodeStatus(node=node, observed_at=NOW - age, controller_version="1",
                      transmission=TransmissionStatus(reachable=True, torrents=torrents),
                      fabric=fabric)


def test_a_node_reached_over_the_fabric_is_held_stale_not_gone(desired: DesiredState) -> None:
    grace = desired.fleet.policy.freshness.grace
    silent = status("laptop-jo", grace + timedelta(hours=1))
    view = build_fleet_view(desired, [silent, status("pi", timedelta(0), reaches=["laptop-jo"])], NOW)
    jo = view.nodes["laptop-jo"]
    assert (jo.freshness, jo.reached_by) == (Freshness.stale, ("pi",))
    # Without the report, or when the reporter is itself stale, age alone decides.
    assert build_fleet_view(desired, [silent, status("pi", timedelta(0), reaches=[])],
                            NOW).nodes["laptop-jo"].freshness is Freshness.gone
    old = status("pi", desired.fleet.policy.freshness.stale_after + timedelta(minutes=1),
                 reaches=["laptop-jo"])
    assert build_fleet_view(desired, [silent, old], NOW).nodes["laptop-jo"].freshness \
        is Freshness.gone


def test_reachability_never_makes_a_node_fresh(desired: DesiredState) -> None:
    stale_age = desired.fleet.policy.freshness.stale_after + timedelta(minutes=5)
    view = build_fleet_view(desired, [status("laptop-jo", stale_age),
                                      status("pi", timedelta(0), reaches=["laptop-jo"])], NOW)
    assert view.nodes["laptop-jo"].freshness is Freshness.stale
    # A device that never reported stays unknown.
    assert view.nodes["laptop-sam"].freshness is Freshness.unknown


def test_holders_reached_over_the_fabric_come_first(desired: DesiredState) -> None:
    holders = [status("pi", timedelta(0), holds=True),
               status("laptop-jo", timedelta(0), holds=True)]
    asking = status("laptop-sam", timedelta(0), reaches=["laptop-jo"])
    _, rows, _ = peers_view(desired, [*holders, asking], NOW, SINTEL, requester="laptop-sam")
    assert [r.node for r in rows] == ["laptop-jo", "pi"]
    asking = status("laptop-sam", timedelta(0), reaches=["pi"])
    _, rows, _ = peers_view(desired, [*holders, asking], NOW, SINTEL, requester="laptop-sam")
    assert [r.node for r in rows] == ["pi", "laptop-jo"]
    # Off the fabric, the order is the fleet's (by node name).
    _, rows, _ = peers_view(desired, [*holders, status("laptop-sam", timedelta(0))], NOW, SINTEL,
                            requester="laptop-sam")
    assert [r.node for r in rows] == ["laptop-jo", "pi"]
