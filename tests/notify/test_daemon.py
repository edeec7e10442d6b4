"""A real daemon (real Transmission, real git remote) telling its owner through a local server
that speaks Discord's webhook protocol: a refused commit, and a target that fails first."""

from __future__ import annotations

import json
import logging
import re

import pytest
from prometheus_client import generate_latest

from controller.daemon.daemon import Daemon
from schemas.journal import JournalEntry, Outcome
from schemas.plan import ActionKind
from tests.daemon.conftest import FLEET, RULE, SoloFleet, solo_fleet, wait_for
from tests.notify.conftest import DISCORD_TOKEN
from tests.support.notify import FakeService

__all__ = ["solo_fleet"]

NOTIFY = """\
notify:
  below_floor_after: 0s
  targets:
    - name: chat
      url: {env: TVA_DISCORD_URL}
"""


GHOST = """\
apiVersion: tva/v1
kind: Device
name: ghost
class: server
services: [transmission, controller]
storage: [{path: /srv/ghost, capacity: 1GiB}]
"""


@pytest.fixture
def telling(solo_fleet: SoloFleet, discord_server: FakeService, allow_loopback: None,
            monkeypatch: pytest.MonkeyPatch) -> Daemon:
    monkeypatch.setenv("TVA_DISCORD_URL", f"discord://1234567890/{DISCORD_TOKEN}")
    solo_fleet.commit({"fleet.yaml": FLEET + NOTIFY}, "tell the owner on Discord")
    d = solo_fleet.controller(notify_endpoints={"discord": discord_server.base + "/api/webhooks"},
                              notify_backoff=(0.5, 2.0))
    d.start()
    yield d
    d.stop()


def _passes_later(d: Daemon, n: int = 3) -> None:
    start = d.passes
    d.wake("test")
    wait_for(lambda: d.passes >= start + n or (d.wake("test") and False), what=f"{n} more passes")


def test_a_refused_commit_is_told_once_with_file_and_line_then_resolved(
    solo_fleet: SoloFleet, telling: Daemon, discord_server: FakeService,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    wait_for(lambda: telling.last and telling.last.desired.fleet.notify.targets, what="notify on")
    solo_fleet.commit({"custody/films.yaml": RULE.replace("min: 1", "min: 1\nmni: 2")}, "typo")

    def refused() -> list[str]:
        return [t for t in discord_server.texts() if "refused revision" in t]

    wait_for(refused, what="a message about the refused revision")
    _passes_later(telling)
    [text] = refused()
    assert "custody/films.yaml:6" in text and "mni" in text

    solo_fleet.commit({"custody/films.yaml": RULE}, "fix the typo")
    wait_for(lambda: [t for t in discord_server.texts() if "resolved: refused revision" in t],
             what="the resolution")
    _passes_later(telling)
    assert len([t for t in discord_server.texts() if "resolved: refused revision" in t]) == 1
    assert len(refused()) == 2  # the message, and its resolution

    # the webhook token is nowhere the owner or a reviewer reads
    seen = json.dumps(telling.status_json()) + json.dumps(telling.plan_json()) + caplog.text
    assert DISCORD_TOKEN not in seen
    assert DISCORD_TOKEN not in json.dumps(telling.notifier.book)
    metrics = generate_latest(telling.metrics.registry).decode()
    assert 'tva_revisions_refused_total{reason="InvalidRevision"} 1.0' in metrics
    assert DISCORD_TOKEN not in metrics


def test_a_failing_target_backs_off_and_the_fleet_keeps_converging(
    solo_fleet: SoloFleet, telling: Daemon, discord_server: FakeService,
) -> None:
    wait_for(lambda: telling.last and telling.last.desired.fleet.notify.targets, what="notify on")
    discord_server.fail_next(500, 429, 429, 500)
    solo_fleet.commit({"custody/films.yaml": RULE.replace("min: 1", "min: 2"),
                       "devices/ghost.yaml": GHOST},
                      "two copies, one of them on a device that never reports")

    def held() -> bool:
        client = solo_fleet.daemon.client()
        return solo_fleet.infohash in {t.hash_string for t in
                                       client.get_torrents(arguments=["hashString"])}

    wait_for(held, what="the copy this node can keep")
    wait_for(discord_server.delivered, what="the message, after the failures")
    assert len(discord_server.requests) >= 5
    texts = discord_server.texts()
    assert len(texts) == 1
    assert re.search(r"below floor: Test film is down to [01] of 2 copies", texts[0])
    assert "floor unreachable" in texts[0]
    metrics = generate_latest(telling.metrics.registry).decode()
    assert 'tva_notifications_total{outcome="failed",target="chat"}' in metrics
    assert 'tva_notifications_total{outcome="sent",target="chat"} 1.0' in metrics
    assert 'tva_items_below_floor{rule="films"} 1.0' in metrics
    assert 'tva_item_copies_bucket{le="1.0",rule="films"} 1.0' in metrics \
        or 'tva_item_copies_bucket{le="1",rule="films"} 1.0' in metrics
    assert "tva_notifier 1.0" in metrics
    assert 'tva_node_status_age_seconds{freshness="fresh",node="solo"}' in metrics


def test_an_acquisition_is_told_once_with_its_commit(
    solo_fleet: SoloFleet, telling: Daemon, discord_server: FakeService,
) -> None:
    """The acquirer's commit reaching the fleet is news: one message naming the release, the
    entry and the commit, not repeated on later passes or revisions, and never "resolved"."""
    wait_for(lambda: telling.last and telling.last.desired.fleet.notify.targets, what="notify on")
    key = "5f1d0c6a2b8e9d4700112233445566778899aabb"
    searched = telling.clock().isoformat()
    sha = solo_fleet.commit({
        "sources/public.yaml": "apiVersion: tva/v1\nkind: Source\nname: public\n"
                               "provenance: public\n",
        f"items/acquired/{key}.yaml": f"""\
apiVersion: tva/v1
kind: Collection
name: acquired-{key[:16]}
provenance: public
source: public
labels: [acquired]
items:
- {{name: Night Film, infohash: {key}, magnet: 'magnet:?xt=urn:btih:{key}'}}
acquired:
  entry: film Night Film
  source: public
  release: Night.Film.2024.1080p.WEB-GOOD
  searched_at: '{searched}'
  reason: best of 1
""",
    }, "Acquire Night.Film.2024.1080p.WEB-GOOD")

    def told() -> list[str]:
        return [t for t in discord_server.texts() if "acquired:" in t]

    wait_for(told, what="the acquisition's message")
    solo_fleet.commit({"custody/films.yaml": RULE.replace("min: 1", "min: 1  # later")}, "later")
    wait_for(lambda: telling.last and telling.last.desired.revision != sha, what="a later revision")
    _passes_later(telling)
    [text] = told()
    assert (f"acquired: acquired Night.Film.2024.1080p.WEB-GOOD for film Night Film from source "
            f"public, commit {sha[:12]}") in text
    assert "resolved: acquired" not in " ".join(discord_server.texts())
    assert f"acquired/{key}" in {c["key"] for c in telling.notifier.open_conditions()}


def test_the_node_publishes_its_searches_failing_in_a_row(
    solo_fleet: SoloFleet, telling: Daemon,
) -> None:
    """What its journal says of its searches travels in its status, for whichever node tells."""
    wait_for(lambda: telling.last is not None, what="a first pass")
    now = telling.clock()
    target = "watch/tv/film-night-film"
    telling.runtime.journal.append(
        JournalEntry(at=now, node="solo", action_id=f"solo/research/{target}",
                     kind=ActionKind.research, target=target, outcome=Outcome.failed,
                     error=f"no acceptable release ({i})")
        for i in range(3))

    def published() -> list[dict[str, object]]:
        status = telling.status_json() or {}
        return list(status.get("searches", []))

    telling.wake("test")
    wait_for(published, what="the failing searches in the status")
    [search] = published()
    assert search["target"] == target and search["failures"] == 3
    assert str(search["error"]).startswith("no acceptable release (")
