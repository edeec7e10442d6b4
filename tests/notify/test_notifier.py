"""The notifier's book and delivery, against a local ntfy server: one message per burst, no
repeats (across restarts and sender changes), resolutions, thresholds, the per-target rate
limit, quiet hours and backoff. The clocks are the test's, so nothing here waits."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from controller.clients.notify import NotifyClient
from controller.daemon.notifier import Notifier, in_quiet_hours
from controller.planner.alerts import FleetFacts
from schemas.desired import DesiredState
from schemas.notify import Alert, EventKind, QuietHours
from tests.notify.conftest import NTFY_TOPIC
from tests.support.notify import FakeService

T0 = datetime.fromisoformat("2025-06-01T12:00:00+00:00")


class Clocks:
    def __init__(self) -> None:
        self.now = T0
        self.mono = 1000.0

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        self.mono += seconds


def _desired(**notify: Any) -> DesiredState:
    targets = notify.pop("targets", [{"name": "phone", "url": {"env": "TVA_NTFY_URL"}}])
    return DesiredState.model_validate({
        "fleet": {"apiVersion": "tva/v1", "kind": "Fleet", "name": "home",
                  "notify": {"targets": targets, **notify}},
        "devices": {},
    })


def _alert(key: str, kind: EventKind = EventKind.below_floor, after: float = 0) -> Alert:
    return Alert(key=key, kind=kind, subject=key, message=f"{key} needs attention",
                 after=timedelta(seconds=after))


def _facts(*alerts: Alert, notifier: str | None = "nas") -> FleetFacts:
    return FleetFacts(alerts=list(alerts), notifier=notifier)


@pytest.fixture
def clocks() -> Clocks:
    return Clocks()


@pytest.fixture
def ntfy(ntfy_server: FakeService, monkeypatch: pytest.MonkeyPatch,
         allow_loopback: None) -> FakeService:
    monkeypatch.setenv("TVA_NTFY_URL", f"ntfy://127.0.0.1:{ntfy_server.port}/{NTFY_TOPIC}")
    return ntfy_server


def _notifier(tmp_path: Path, clocks: Clocks, node: str = "nas") -> Notifier:
    return Notifier(node, str(tmp_path), NotifyClient(), clock=lambda: clocks.now,
                    backoff=(30.0, 600.0), monotonic=lambda: clocks.mono)


def test_a_burst_is_one_message_and_is_not_repeated(tmp_path: Path, clocks: Clocks,
                                                    ntfy: FakeService) -> None:
    n = _notifier(tmp_path, clocks)
    burst = [_alert("below-floor/films/a"), _alert("below-floor/films/b"),
             _alert("copy-lost/laptop", EventKind.copy_lost)]
    n.update(_desired(), _facts(*burst), clocks.now)
    n.deliver()
    [text] = ntfy.texts()
    assert text.startswith("tva home: 3 new\n")
    assert "- below floor: below-floor/films/a needs attention" in text
    assert "- copy lost: copy-lost/laptop needs attention" in text
    clocks.advance(60)
    n.update(_desired(), _facts(*burst), clocks.now)
    n.deliver()
    restarted = _notifier(tmp_path, clocks)  # the book survives a restart
    restarted.update(_desired(), _facts(*burst), clocks.now)
    restarted.deliver()
    assert len(ntfy.texts()) == 1


def test_a_cleared_condition_is_resolved_once(tmp_path: Path, clocks: Clocks,
                                              ntfy: FakeService) -> None:
    n = _notifier(tmp_path, clocks)
    a, b = _alert("below-floor/films/a"), _alert("below-floor/films/b")
    n.update(_desired(), _facts(a, b), clocks.now)
    n.deliver()
    n.update(_desired(), _facts(b), clocks.now)
    n.deliver()
    n.update(_desired(), _facts(b), clocks.now)
    n.deliver()
    texts = ntfy.texts()
    assert len(texts) == 2
    assert texts[1] == "tva home: 1 resolved\n- resolved: below floor: below-floor/films/a needs attention"


def test_below_the_threshold_nothing_is_sent_and_a_blip_is_forgotten(
    tmp_path: Path, clocks: Clocks, ntfy: FakeService,
) -> None:
    n = _notifier(tmp_path, clocks)
    blip = _alert("below-floor/films/a", after=600)
    n.update(_desired(), _facts(blip), clocks.now)
    n.deliver()
    clocks.advance(300)
    n.update(_desired(), _facts(), clocks.now)  # it came back within ten minutes
    n.deliver()
    assert ntfy.requests == []
    n.update(_desired(), _facts(blip), clocks.now)
    clocks.advance(601)
    n.update(_desired(), _facts(blip), clocks.now)
    n.deliver()
    assert len(ntfy.texts()) == 1


def test_only_the_notifier_sends_and_its_successor_sends_the_resolution(
    tmp_path: Path, clocks: Clocks, ntfy: FakeService,
) -> None:
    nas = _notifier(tmp_path / "nas", clocks, "nas")
    tv = _notifier(tmp_path / "tv", clocks, "tv")
    a = _alert("below-floor/films/a")
    for node in (nas, tv):
        node.update(_desired(), _facts(a, notifier="nas"), clocks.now)
        node.deliver()
    assert len(ntfy.texts()) == 1
    # nas goes away: tv is the notifier now, and does not repeat what nas told
    tv.update(_desired(), _facts(a, notifier="tv"), clocks.now)
    tv.deliver()
    assert len(ntfy.texts()) == 1
    tv.update(_desired(), _facts(notifier="tv"), clocks.now)
    tv.deliver()
    assert len(ntfy.texts()) == 2 and "resolved" in ntfy.texts()[1]


def test_the_rate_limit_holds_and_groups(tmp_path: Path, clocks: Clocks,
                                         ntfy: FakeService) -> None:
    desired = _desired(targets=[{"name": "phone", "url": {"env": "TVA_NTFY_URL"},
                                 "max_per_hour": 1}])
    n = _notifier(tmp_path, clocks)
    n.update(desired, _facts(_alert("k/1")), clocks.now)
    n.deliver()
    for i in range(2, 5):
        clocks.advance(60)
        n.update(desired, _facts(*[_alert(f"k/{j}") for j in range(1, i + 1)]), clocks.now)
        wait = n.deliver()
        assert 0 < wait <= 3600
    assert len(ntfy.texts()) == 1
    clocks.advance(3600)
    n.deliver()
    texts = ntfy.texts()
    assert len(texts) == 2 and texts[1].startswith("tva home: 3 new")


def test_quiet_hours_hold_messages_until_they_end(tmp_path: Path, clocks: Clocks,
                                                  ntfy: FakeService) -> None:
    desired = _desired(quiet_hours={"begin": "11:00", "end": "13:30", "timezone": "UTC"})
    n = _notifier(tmp_path, clocks)
    n.update(desired, _facts(_alert("k/1")), clocks.now)
    n.deliver()
    assert ntfy.requests == []
    clocks.advance(2 * 3600)
    n.deliver()
    assert len(ntfy.texts()) == 1


def test_quiet_hours_across_midnight_in_a_time_zone() -> None:
    quiet = QuietHours(begin="23:00", end="07:00", timezone="Europe/Paris")
    assert in_quiet_hours(quiet, datetime.fromisoformat("2025-06-01T22:30:00+00:00"))  # 00:30
    assert not in_quiet_hours(quiet, datetime.fromisoformat("2025-06-01T12:00:00+00:00"))


@pytest.mark.parametrize("codes", [(500,), (429, 429), (500, 429, 429)])
def test_a_failing_service_backs_off_then_delivers(tmp_path: Path, clocks: Clocks,
                                                   ntfy: FakeService, codes: tuple[int, ...]) -> None:
    ntfy.fail_next(*codes)
    n = _notifier(tmp_path, clocks)
    n.update(_desired(), _facts(_alert("k/1")), clocks.now)
    waits = []
    for _ in range(10):
        before = len(ntfy.requests)
        waits.append(n.deliver())
        again = n.deliver()  # right away: the backoff holds it
        assert len(ntfy.requests) - before <= 1 and again > 0
        if ntfy.delivered():
            break
        clocks.advance(waits[-1])
    assert len(ntfy.texts()) == 1
    assert len(ntfy.requests) == len(codes) + 1
    assert waits[0] == 30.0  # the first wait after a failure, then doubling
    if len(codes) > 1:
        assert waits[1] == 60.0


def test_names_from_the_repo_cannot_ping_everyone_or_smuggle_controls() -> None:
    from controller.daemon.notifier import render

    _title, body = render("home", [{"key": "k", "kind": "below-floor", "event": "open",
                                   "message": "@everyone \x1b[2J<@123> is down to 1 of 2"}])
    assert "@" not in body and "\x1b" not in body
    assert "\uff20everyone \\x1b[2J<\uff20123>" in body


@pytest.mark.parametrize("content", [
    "not json", '{"version": 1, "open": [], "outbox": {}, "sent": {}}',
    '{"version": 1, "open": {"k": {"since": "yesterday", "told": [], "kind": "x", "message": ""}},'
    ' "outbox": {}, "sent": {}}',
    '{"version": 1, "open": {}, "outbox": {"phone": [{"key": 1}]}, "sent": {}}',
])
def test_a_malformed_book_starts_over(tmp_path: Path, clocks: Clocks, ntfy: FakeService,
                                      content: str) -> None:
    (tmp_path / "nas.notify.json").write_text(content)
    n = _notifier(tmp_path, clocks)
    n.update(_desired(), _facts(_alert("k/1")), clocks.now)
    n.deliver()
    assert len(ntfy.texts()) == 1


def test_a_condition_that_clears_while_its_message_is_sent_is_resolved(
    tmp_path: Path, clocks: Clocks, ntfy: FakeService,
) -> None:
    n = _notifier(tmp_path, clocks)
    a = _alert("below-floor/films/a")
    n.update(_desired(), _facts(a), clocks.now)
    real_send = n.client.send

    def send_and_clear(target: Any, title: str, body: str) -> None:
        real_send(target, title, body)
        n.update(_desired(), _facts(), clocks.now)  # a pass runs meanwhile: it cleared

    n.client.send = send_and_clear  # type: ignore[method-assign]
    n.deliver()
    n.client.send = real_send  # type: ignore[method-assign]
    n.deliver()
    texts = ntfy.texts()
    assert len(texts) == 2 and texts[1].startswith("tva home: 1 resolved")


def test_a_kind_from_a_newer_version_is_shown_as_written() -> None:
    from controller.daemon.notifier import render

    _title, body = render("home", [{"key": "k", "kind": "acquisition-failed", "event": "open",
                                    "message": "x"}])
    assert body == "- acquisition-failed: x"


def test_news_is_told_once_as_first_seen_and_never_resolved(tmp_path: Path, clocks: Clocks,
                                                            ntfy: FakeService) -> None:
    """An acquisition is one-shot: told on the pass it appears, not again on later passes, a
    restart or a later revision, and no "resolved" when it is no longer news."""
    news = Alert(key="acquired/ab12", kind=EventKind.acquired, subject="film Night Film",
                 message="acquired Night.Film.1080p for film Night Film, commit 0123456789ab")
    n = _notifier(tmp_path, clocks)
    n.update(_desired(), _facts(news), clocks.now)
    later = news.model_copy(update={"message": "acquired Night.Film.1080p for film Night "
                                               "Film, commit fedcba987654"})
    n.update(_desired(), _facts(later), clocks.now)  # a later revision before delivery
    n.deliver()
    assert ntfy.texts() == ["tva home: 1 new\n- acquired: acquired Night.Film.1080p for "
                            "film Night Film, commit 0123456789ab"]
    clocks.advance(3600)
    restarted = _notifier(tmp_path, clocks)
    restarted.update(_desired(), _facts(later), clocks.now)
    restarted.deliver()
    restarted.update(_desired(), _facts(), clocks.now)  # out of the news window
    restarted.deliver()
    assert len(ntfy.texts()) == 1
    assert restarted.open_conditions() == []


def test_news_that_leaves_the_window_before_delivery_still_goes_out(
        tmp_path: Path, clocks: Clocks, ntfy: FakeService) -> None:
    news = Alert(key="acquired/cd34", kind=EventKind.acquired, subject="film Other",
                 message="acquired Other.720p for film Other, commit 0123456789ab")
    n = _notifier(tmp_path, clocks)
    n.update(_desired(), _facts(news), clocks.now)
    n.update(_desired(), _facts(), clocks.now)
    n.deliver()
    assert ntfy.texts() == ["tva home: 1 new\n- acquired: acquired Other.720p for film Other, "
                            "commit 0123456789ab"]


def test_a_node_that_does_not_send_takes_news_as_told(tmp_path: Path, clocks: Clocks,
                                                      ntfy: FakeService) -> None:
    news = Alert(key="acquired/ef56", kind=EventKind.acquired, subject="s", message="m")
    other = _notifier(tmp_path, clocks, node="tv")
    other.update(_desired(), _facts(news, notifier="nas"), clocks.now)
    other.deliver()
    assert ntfy.texts() == []
    [entry] = other.open_conditions()
    assert entry["told"] == ["phone"]
    # when it becomes the notifier later, the news is not repeated
    other.update(_desired(), _facts(news, notifier="tv"), clocks.now)
    other.deliver()
    assert ntfy.texts() == []
