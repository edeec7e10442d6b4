"""The daemon against a real transmission-daemon and a real bare git remote (issue 5)."""

from __future__ import annotations

from typing import Any

import pytest

from controller.daemon.daemon import Daemon
from schemas.observed import ConditionStatus
from tests.daemon.conftest import RULE, SoloFleet, wait_for
from tests.support.gitrepo import commit_files


def held(fleet: SoloFleet) -> set[str]:
    client = fleet.daemon.client()
    return {t.hash_string for t in client.get_torrents(arguments=["hashString"])}


def synced(d: Daemon) -> ConditionStatus | None:
    last = d.last
    if last is None:
        return None
    for c in last.status.conditions:
        if c.type == "Synced":
            return c.status
    return None


@pytest.fixture
def running(solo_fleet: SoloFleet) -> Daemon:
    d = solo_fleet.controller()
    d.start()
    yield d
    d.stop()


def test_commit_adds_then_removal_of_rule_keeps_data_then_invalid_is_refused_then_revert(
    solo_fleet: SoloFleet, running: Daemon
) -> None:
    first = wait_for(lambda: running.last_revision and running.last_revision.applied, what="first pass")
    assert held(solo_fleet) == set()

    # A commit that puts the item under custody on this node: the torrent appears.
    added = solo_fleet.commit({"custody/films.yaml": RULE}, "keep one copy of the films")
    assert added != first
    wait_for(lambda: solo_fleet.infohash in held(solo_fleet), what="the torrent to appear")
    # Transmission 3.00 ignores labels on add: the same action sets them just after (a read in
    # between sees none), so the labels are waited for, not read once.
    def labelled() -> Any:
        t = solo_fleet.daemon.client().get_torrent(solo_fleet.infohash,
                                                   arguments=["labels", "downloadDir"])
        return t if {"tva", "tva:custody/films"} <= set(t.labels) else None
    t = wait_for(labelled, what="the torrent's labels")
    assert t.download_dir.rstrip("/") == str(solo_fleet.daemon.download_dir)

    # The rule goes away with prune off: nothing is removed, and the plan says why.
    removed = solo_fleet.commit({"custody/films.yaml": None}, "stop keeping films")
    wait_for(lambda: running.last and running.last.desired.revision == removed, what="the removal commit")
    wait_for(lambda: running.last and running.last.status.desired_revision == removed, what="a pass on it")
    assert solo_fleet.infohash in held(solo_fleet)
    plan = running.last.plan
    assert not [a for a in plan.actions if a.destructive]
    assert any("left in place" in w.message for w in plan.warnings), plan.warnings

    # An invalid commit: nothing applied, status names the file and line, the previous revision stays.
    bad = solo_fleet.commit({"custody/films.yaml": RULE.replace("min: 1", "min: 1\nmni: 2")}, "typo")
    wait_for(lambda: synced(running) is ConditionStatus.false, what="Synced=False")
    cond = next(c for c in running.last.status.conditions if c.type == "Synced")
    assert cond.reason == "InvalidRevision"
    assert "custody/films.yaml:6" in cond.message and "mni" in cond.message
    assert running.last.status.desired_revision == removed
    assert running.last_revision is not None and running.last_revision.seen == bad
    assert solo_fleet.infohash in held(solo_fleet)

    # A revert converges again.
    fixed = solo_fleet.commit({"custody/films.yaml": RULE}, "fix the typo")
    wait_for(lambda: synced(running) is ConditionStatus.true
             and running.last.status.desired_revision == fixed, what="convergence after the fix")
    assert running.last.plan.actions == [] or all(a.kind.value != "add" for a in running.last.plan.actions)


def test_local_checkout_commit_is_picked_up_by_watching(solo_fleet: SoloFleet) -> None:
    """``tva run --local``: a commit in the checkout wakes the daemon (watchfiles on .git)."""
    d = solo_fleet.controller(repo=str(solo_fleet.checkout), local=True)
    d.start()
    try:
        wait_for(lambda: d.passes >= 1, what="first pass")
        commit_files(solo_fleet.checkout, {"custody/films.yaml": RULE}, "keep one copy", push=False)
        # Within 60 s, far shorter than the idle resync (200 s here): only the watcher can do it.
        wait_for(lambda: solo_fleet.infohash in held(solo_fleet), what="the torrent to appear")
    finally:
        d.stop()
