"""The fleet's open conditions and its one notifier are pure data of (desired, statuses, now)."""

from __future__ import annotations

import random
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from controller.desired import load_fleet
from controller.planner.alerts import fleet_facts
from schemas.desired import DesiredState
from schemas.notify import EventKind
from schemas.observed import Condition, ConditionStatus, NodeStatus
from tests.planner.harness import key_of, node_status

CASES = Path(__file__).resolve().parent.parent / "planner" / "cases" / "_fleet"
NOW = datetime.fromisoformat("2025-06-01T20:00:00+00:00")


@pytest.fixture
def desired(tmp_path: Path) -> DesiredState:
    fleet = tmp_path / "fleet"
    shutil.copytree(CASES, fleet)
    return load_fleet(str(fleet)).desired


def _fleet(desired: DesiredState, laptop_age: str = "1m", **extra: dict[str, object]) -> list[NodeStatus]:
    specs: dict[str, dict[str, object]] = {
        "nas": {"torrents": [{"item": "Alpha"}, {"item": "Bravo"}, {"item": "Charlie"},
                             {"item": "Secret One"}]},
        "laptop": {"age": laptop_age, "vpn": {"home-wg": "up"}, "torrents": [{"item": "Alpha"}]},
        "tv": {"torrents": [{"item": "Bravo"}, {"item": "Charlie"}, {"item": "Secret One"}]},
        "seedbox": {},
    }
    for name, spec in extra.items():
        specs[name] = {**specs[name], **spec}
    return [node_status(desired, n, s, NOW) for n, s in specs.items()]


def test_a_quiet_fleet_has_no_open_conditions(desired: DesiredState) -> None:
    facts = fleet_facts(desired, _fleet(desired), NOW)
    assert [a.key for a in facts.alerts] == []
    assert facts.notifier in {n for n, d in desired.devices.items() if "controller" in d.services}
    alpha = key_of(desired, "Alpha")
    assert any(f.key == alpha and f.counted == 2 and f.min == 2 for f in facts.custody)
    assert sum(facts.health.values()) == 8


def test_a_stale_holder_puts_its_item_below_the_floor_with_a_threshold(desired: DesiredState) -> None:
    facts = fleet_facts(desired, _fleet(desired, laptop_age="30m"), NOW)
    alpha = key_of(desired, "Alpha")
    below = [a for a in facts.alerts if a.kind is EventKind.below_floor]
    assert [a.key for a in below] == [f"below-floor/films/{alpha}"]
    assert below[0].message == "Alpha is down to 1 of 2 copies (custody/films)"
    assert below[0].after == desired.fleet.notify.below_floor_after == timedelta(minutes=10)
    assert not [a for a in facts.alerts if a.kind is EventKind.copy_lost]  # stale, not gone


def test_a_node_gone_past_grace_is_a_lost_copy(desired: DesiredState) -> None:
    facts = fleet_facts(desired, _fleet(desired, laptop_age="3h"), NOW)
    lost = [a for a in facts.alerts if a.kind is EventKind.copy_lost]
    assert [a.key for a in lost] == ["copy-lost/laptop"]
    assert "laptop is gone (no status for 3h" in lost[0].message and "Alpha" in lost[0].message


def test_the_notifier_is_one_fresh_node_and_the_next_takes_over(desired: DesiredState) -> None:
    first = fleet_facts(desired, _fleet(desired), NOW).notifier
    assert first is not None
    statuses = _fleet(desired, **{first: {"age": "30m"}})
    second = fleet_facts(desired, statuses, NOW).notifier
    assert second is not None and second != first
    # every node computes the same, whatever order the statuses come in
    for _ in range(5):
        random.shuffle(statuses)
        assert fleet_facts(desired, statuses, NOW).notifier == second


def test_the_same_inputs_give_the_same_conditions(desired: DesiredState) -> None:
    statuses = _fleet(desired, laptop_age="3h")
    once = fleet_facts(desired, statuses, NOW)
    statuses.reverse()
    again = fleet_facts(desired, statuses, NOW)
    assert once.alerts == again.alerts and once.alerts


def test_a_refused_revision_names_file_and_line(desired: DesiredState) -> None:
    statuses = _fleet(desired)
    nas = next(s for s in statuses if s.node == "nas")
    refused = Condition(
        type="Synced", status=ConditionStatus.false, reason="InvalidRevision",
        message="revision 0123456789ab is invalid; fedcba987654 stays in force: "
        "devices/nas.yaml:12: class: unknown value 'toaster'", since=NOW)
    statuses[statuses.index(nas)] = nas.model_copy(update={"conditions": [refused]})
    facts = fleet_facts(desired, statuses, NOW)
    assert [a.key for a in facts.alerts] == ["refused-revision/0123456789ab"]
    assert "devices/nas.yaml:12" in facts.alerts[0].message


def test_a_kill_switch_holding_torrents_is_told(desired: DesiredState) -> None:
    facts = fleet_facts(desired, _fleet(desired, laptop={"vpn": {"home-wg": "down"}}), NOW)
    assert "vpn-down/laptop/home-wg" in [a.key for a in facts.alerts]


def test_no_statuses_read_means_no_custody_alarm(desired: DesiredState) -> None:
    """A node that could read nobody's status must not report everything as lost."""
    own = [s for s in _fleet(desired) if s.node == "tv"]
    assert [a for a in fleet_facts(desired, own, NOW).alerts if a.kind is EventKind.below_floor]
    facts = fleet_facts(desired, own, NOW, unread=True)
    assert facts.notifier == "tv"
    assert [a for a in facts.alerts if a.kind is EventKind.below_floor] == []


@pytest.mark.parametrize("laptop_age", ["1m", "30m", "3h"])
def test_the_counted_copies_are_the_custody_views(desired: DesiredState, laptop_age: str) -> None:
    from controller.planner import custody_view

    statuses = _fleet(desired, laptop_age=laptop_age,
                      tv={"torrents": [{"item": "Bravo", "pct": 0.5}, {"item": "Charlie", "error": 3}]})
    facts = fleet_facts(desired, statuses, NOW)
    view = {(r.rule, r.key): len(r.counted) for r in custody_view(desired, statuses, NOW)}
    assert {(f.rule, f.key): f.counted for f in facts.custody} == view
