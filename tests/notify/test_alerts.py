"""The fleet's open conditions and its one notifier are pure data of (desired, statuses, now)."""

from __future__ import annotations

import random
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from controller.desired import load_fleet
from controller.planner.alerts import NEWS_WINDOW, SEARCH_FAILING_AFTER, fleet_facts
from controller.planner.searches import failing_searches, with_searches
from schemas.desired import DesiredState
from schemas.journal import JournalEntry, Outcome
from schemas.notify import EventKind
from schemas.observed import (
    Condition,
    ConditionStatus,
    FailingSearch,
    NodeStatus,
    TransmissionStatus,
)
from schemas.plan import ActionKind
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


NIGHT = "5f1d0c6a2b8e9d4700112233445566778899aabb"


def _acquisitions(tmp_path: Path, searched: str) -> DesiredState:
    """The case fleet with a searchable source, a watchlist that wants two films, and one of
    them acquired at ``searched``."""
    fleet = tmp_path / "acq"
    shutil.copytree(CASES, fleet)
    (fleet / "sources" / "public.yaml").write_text(
        "apiVersion: tva/v1\nkind: Source\nname: public\nprovenance: public\nsearch: true\n"
        "indexer: {url: 'http://192.168.1.5:9696/1/api'}\n")
    (fleet / "watchlists" / "films.yaml").write_text(
        "apiVersion: tva/v1\nkind: Watchlist\nname: films\ndevice: tv\nsearch: [public]\n"
        "entries:\n  - {film: Night Film}\n  - {film: Day Film}\n")
    (fleet / "items" / "acquired.yaml").write_text(f"""\
apiVersion: tva/v1
kind: Collection
name: acquired-{NIGHT[:16]}
provenance: public
source: public
labels: [acquired]
items:
- {{name: Night Film, infohash: {NIGHT}, magnet: 'magnet:?xt=urn:btih:{NIGHT}'}}
acquired:
  watchlist: films
  entry: film Night Film
  source: public
  release: Night.Film.2024.1080p.WEB-GOOD @everyone
  searched_at: '{searched}'
  reason: best of 1
""")
    loaded = load_fleet(str(fleet))
    assert loaded.desired is not None, loaded.problems
    return loaded.desired.model_copy(update={"revision": "0123456789abcdef0123"})


def test_an_acquisition_is_news_keyed_by_its_infohash_while_recent(tmp_path: Path) -> None:
    desired = _acquisitions(tmp_path, (NOW - timedelta(hours=1)).isoformat())
    facts = fleet_facts(desired, _fleet(desired), NOW)
    [news] = [a for a in facts.alerts if a.kind is EventKind.acquired]
    assert news.key == f"acquired/{NIGHT}"
    assert news.message == ("acquired Night.Film.2024.1080p.WEB-GOOD @everyone for film Night "
                            "Film (watchlist/films) from source public, commit 0123456789ab")
    assert news.after == timedelta(0)
    later = fleet_facts(desired, _fleet(desired), NOW + NEWS_WINDOW)
    assert [a for a in later.alerts if a.kind is EventKind.acquired] == []


def test_an_old_acquisition_is_not_news(tmp_path: Path) -> None:
    desired = _acquisitions(tmp_path, "2020-01-01T00:00:00+00:00")
    facts = fleet_facts(desired, _fleet(desired), NOW)
    assert [a for a in facts.alerts if a.kind is EventKind.acquired] == []


def _failing(desired: DesiredState, target: str, failures: int, node: str = "nas",
             age: str = "1m") -> list[NodeStatus]:
    statuses = _fleet(desired, **{node: {"age": age}})
    i = next(i for i, s in enumerate(statuses) if s.node == node)
    search = FailingSearch(target=target, failures=failures, error="indexer said 500",
                           at=NOW - timedelta(minutes=5))
    statuses[i] = statuses[i].model_copy(update={"searches": [search]})
    return statuses


def test_a_search_that_keeps_failing_is_told_per_entry(tmp_path: Path) -> None:
    desired = _acquisitions(tmp_path, (NOW - timedelta(days=30)).isoformat())
    target = "watch/films/film-day-film"
    below = fleet_facts(desired, _failing(desired, target, SEARCH_FAILING_AFTER - 1), NOW)
    assert [a for a in below.alerts if a.kind is EventKind.search_failing] == []
    facts = fleet_facts(desired, _failing(desired, target, SEARCH_FAILING_AFTER), NOW)
    [alert] = [a for a in facts.alerts if a.kind is EventKind.search_failing]
    assert alert.key == f"search-failing/{target}"
    assert alert.message == ("film Day Film (watchlist/films): 3 searches on nas failed in a "
                             "row; the last: indexer said 500")
    # a stale acquirer's report still holds; a gone one's does not
    stale = fleet_facts(desired, _failing(desired, target, 3, age="30m"), NOW)
    assert [a.key for a in stale.alerts if a.kind is EventKind.search_failing] == [alert.key]
    gone = fleet_facts(desired, _failing(desired, target, 3, age="3h"), NOW)
    assert [a for a in gone.alerts if a.kind is EventKind.search_failing] == []


def test_a_satisfied_entry_resolves_its_failing_search(tmp_path: Path) -> None:
    """Night Film is in the fleet (acquired): failures the acquirer still reports for it are
    no condition; neither are those of a target no entry lacks."""
    desired = _acquisitions(tmp_path, (NOW - timedelta(days=30)).isoformat())
    for target in ("watch/films/film-night-film", "watch/nope/film-x"):
        facts = fleet_facts(desired, _failing(desired, target, 5), NOW)
        assert [a for a in facts.alerts if a.kind is EventKind.search_failing] == []


def test_the_acquirer_publishes_searches_failing_in_a_row() -> None:
    def entry(minutes: int, target: str, outcome: Outcome, node: str = "nas") -> JournalEntry:
        return JournalEntry(at=NOW + timedelta(minutes=minutes), node=node,
                            action_id=f"{node}/research/{target}", kind=ActionKind.research,
                            target=target, outcome=outcome,
                            error="no acceptable release\nfor X" if outcome is Outcome.failed else "")

    a, b, c = "watch/films/film-a", "watch/films/film-b", "watch/films/film-c"
    journal = [
        entry(3, a, Outcome.failed), entry(1, a, Outcome.failed), entry(2, a, Outcome.ok),
        entry(4, a, Outcome.failed), entry(5, a, Outcome.started),
        entry(1, b, Outcome.failed), entry(2, b, Outcome.ok),
        entry(1, c, Outcome.failed), entry(2, c, Outcome.failed, node="tv"),
        entry(1, "0" * 40, Outcome.failed),  # the reaper's re-search of a dead item
    ]
    got = failing_searches("nas", journal)
    assert [(f.target, f.failures) for f in got] == [(a, 2), (c, 1)]
    assert got[0].error == "no acceptable release for X" and got[0].at == NOW + timedelta(minutes=4)
    status = _fleet_status_of("nas")
    published = with_searches(status, journal)
    assert published.searches == got
    assert with_searches(published, []).searches == []


def _fleet_status_of(node: str) -> NodeStatus:
    return NodeStatus(node=node, observed_at=NOW, controller_version="test",
                      transmission=TransmissionStatus(reachable=True))
