"""The fleet view: each device's newest status joined with its freshness (controller/planner/freshness.py).

The reference fleet's policy: ``stale_after: 10m``, ``grace: 2h``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from controller.desired import load_fleet
from controller.planner import Freshness, build_fleet_view
from schemas.desired import DesiredState, TrustLevel
from schemas.observed import NodeStatus, TransmissionStatus
from tests.conftest import REFERENCE_FLEET

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
STALE_AFTER = timedelta(minutes=10)
GRACE = timedelta(hours=2)
SECOND = timedelta(seconds=1)


@pytest.fixture(scope="module")
def desired() -> DesiredState:
    d = load_fleet(str(REFERENCE_FLEET)).desired
    assert d.fleet.policy.freshness.stale_after == STALE_AFTER
    assert d.fleet.policy.freshness.grace == GRACE
    return d


def status(node: str, age: timedelta, version: str = "1") -> NodeStatus:
    return NodeStatus(
        node=node,
        observed_at=NOW - age,
        controller_version=version,
        transmission=TransmissionStatus(reachable=True),
    )


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        (timedelta(0), Freshness.fresh),
        (STALE_AFTER, Freshness.fresh),
        (STALE_AFTER + SECOND, Freshness.stale),
        (GRACE, Freshness.stale),
        (GRACE + SECOND, Freshness.gone),
        (timedelta(days=30), Freshness.gone),
    ],
    ids=["just-now", "at-stale-after", "past-stale-after", "at-grace", "past-grace", "a-month"],
)
def test_freshness_by_age_against_the_policy(
    desired: DesiredState, age: timedelta, expected: Freshness
) -> None:
    view = build_fleet_view(desired, [status("nas", age)], NOW)
    assert view.nodes["nas"].freshness is expected
    assert view.nodes["nas"].age == age


def test_a_device_that_never_reported_is_unknown(desired: DesiredState) -> None:
    view = build_fleet_view(desired, [status("nas", timedelta(0))], NOW)
    for name in ("laptop", "tv", "seedbox"):
        node = view.nodes[name]
        assert (node.freshness, node.age, node.status) == (Freshness.unknown, None, None)
    assert view.status("laptop") is None


def test_every_device_has_a_view_and_nothing_else(desired: DesiredState) -> None:
    view = build_fleet_view(desired, [], NOW)
    assert sorted(view.nodes) == sorted(desired.devices) == ["laptop", "nas", "seedbox", "tv"]


@pytest.mark.parametrize("order", ["newest-first", "newest-last"])
def test_the_newest_status_of_a_node_wins_whatever_the_order(
    desired: DesiredState, order: str
) -> None:
    old = status("nas", GRACE + SECOND, version="old")
    new = status("nas", timedelta(minutes=1), version="new")
    statuses = [new, old] if order == "newest-first" else [old, new]
    view = build_fleet_view(desired, statuses, NOW)
    assert view.status("nas") == new
    assert view.nodes["nas"].freshness is Freshness.fresh


def test_statuses_of_nodes_that_are_not_devices_are_ignored(desired: DesiredState) -> None:
    view = build_fleet_view(
        desired, [status("retired-box", timedelta(0)), status("tv", timedelta(0))], NOW
    )
    assert "retired-box" not in view.nodes
    assert view.status("retired-box") is None
    assert view.nodes["tv"].freshness is Freshness.fresh


def test_a_status_slightly_in_the_future_counts_as_age_zero(desired: DesiredState) -> None:
    ahead = status("laptop", -timedelta(minutes=4))  # the laptop's clock runs 4 minutes fast
    view = build_fleet_view(desired, [ahead], NOW)
    assert view.nodes["laptop"].age == timedelta(0)
    assert view.nodes["laptop"].freshness is Freshness.fresh
    assert view.nodes["laptop"].ahead is None


def test_a_status_far_in_the_future_is_stale(desired: DesiredState) -> None:
    ahead = status("laptop", -timedelta(hours=3))  # 3 hours fast, or a forged status
    view = build_fleet_view(desired, [ahead], NOW)
    assert view.nodes["laptop"].freshness is Freshness.stale
    assert view.nodes["laptop"].ahead == timedelta(hours=3)


def test_ages_compare_instants_across_time_zones(desired: DesiredState) -> None:
    plus_two = timezone(timedelta(hours=2))
    st = NodeStatus(
        node="nas",
        observed_at=(NOW - timedelta(minutes=11)).astimezone(plus_two),
        controller_version="1",
        transmission=TransmissionStatus(reachable=True),
    )
    view = build_fleet_view(desired, [st], NOW)
    assert view.nodes["nas"].age == timedelta(minutes=11)
    assert view.nodes["nas"].freshness is Freshness.stale


def test_trust_comes_from_the_desired_state(desired: DesiredState) -> None:
    archive = desired.devices["tv"].model_copy(update={"trust": TrustLevel.trusted})
    changed = desired.model_copy(update={"devices": {**desired.devices, "tv": archive}})
    view = build_fleet_view(changed, [], NOW)
    assert view.nodes["tv"].trust is TrustLevel.trusted
    assert view.nodes["tv"].freshness is Freshness.unknown  # trust does not fake freshness
    assert view.nodes["nas"].trust is TrustLevel.normal


def test_the_fleets_own_policy_sets_the_thresholds(desired: DesiredState) -> None:
    policy = desired.fleet.policy
    tight = policy.freshness.model_copy(
        update={"stale_after": timedelta(seconds=30), "grace": timedelta(minutes=5)}
    )
    fleet = desired.fleet.model_copy(
        update={"policy": policy.model_copy(update={"freshness": tight})}
    )
    changed = desired.model_copy(update={"fleet": fleet})
    statuses = [
        status("nas", timedelta(seconds=30)),
        status("laptop", timedelta(minutes=1)),
        status("tv", timedelta(minutes=6)),
    ]
    view = build_fleet_view(changed, statuses, NOW)
    assert [view.nodes[n].freshness for n in ("nas", "laptop", "tv", "seedbox")] == [
        Freshness.fresh,
        Freshness.stale,
        Freshness.gone,
        Freshness.unknown,
    ]
