"""The fleet's statuses cannot be read for a few passes: the daemon never plans as if alone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from controller.daemon.node import PassOutcome
from controller.status import GitStatusTransport
from schemas.desired import StatusPolicy
from schemas.observed import (
    NodeStatus,
    StorageStatus,
    TorrentState,
    TorrentStatus,
    TransmissionStatus,
)
from schemas.plan import ActionKind
from tests.daemon.conftest import RULE, SoloFleet, wait_for
from tests.daemon.test_end_to_end import held
from tests.support.gitrepo import clone_checkout

PEER = """\
apiVersion: tva/v1
kind: Device
name: peer
class: server
always_on: true
services: [transmission, controller]
storage: [{path: /srv/peer, capacity: 1TiB}]
addresses: {transmission_rpc: 'http://127.0.0.1:9', peer: '127.0.0.1:51413'}
"""


def publish_peer(fleet: SoloFleet) -> None:
    """The peer holds the film, complete: the floor of 1 is met without the solo node."""
    status = NodeStatus(
        node="peer", observed_at=datetime.now(UTC), controller_version="test",
        transmission=TransmissionStatus(reachable=True, torrents=[TorrentStatus(
            infohash=fleet.infohash, name="film.bin", size=256 * 1024, percent_done=1.0,
            state=TorrentState.seeding, labels=["tva", "tva:custody/films"],
            download_dir="/srv/peer")]),
        storage=[StorageStatus(path="/srv/peer", free=1 << 39, total=1 << 40)],
    )
    checkout = clone_checkout(fleet.remote, fleet.checkout.parent / "peer", "peer")
    with GitStatusTransport.for_fleet(checkout, StatusPolicy(), node="peer") as t:
        t.publish(status)


@pytest.mark.slow  # about a minute: CI runs it, a local run leaves it out (README)
def test_no_adds_while_the_status_remote_is_unreachable(solo_fleet: SoloFleet) -> None:
    solo_fleet.commit({"devices/peer.yaml": PEER, "custody/films.yaml": RULE}, "a peer holds it")
    publish_peer(solo_fleet)
    d = solo_fleet.controller(status_dir=None)
    passes: list[PassOutcome] = []
    d.listeners.append(passes.append)  # every finished pass, the very first one included
    d.start()
    try:
        wait_for(lambda: d.last and any(s.node == "peer" for s in d.last.statuses),
                 what="a pass that read the peer's status")
        assert solo_fleet.infohash not in held(solo_fleet)
        wait_for(lambda: passes, what="the first pass to finish")
        first = passes[0]
        assert first.status.present_since == first.now, "present since its first pass"
        solo_fleet.remote.rename(solo_fleet.remote.with_name("moved-away.git"))
        seen: set[datetime] = set()

        def unread_pass() -> bool:
            d.wakeup.notify("test")
            last = d.last
            if last is not None and any(w.code == "statuses-unread" for w in last.plan.warnings):
                seen.add(last.now)
            return len(seen) >= 3

        wait_for(unread_pass, what="three passes that could not read the statuses")
        last = d.last
        assert last is not None
        assert [a for a in last.plan.actions if a.kind is ActionKind.add] == []
        assert any(s.node == "peer" for s in last.statuses), "the view read last stays in force"
        assert last.status.present_since == first.now, "no gap: still present since the start"
        assert solo_fleet.infohash not in held(solo_fleet)
        adds = [e for e in d.runtime.journal.entries(None) if e.kind is ActionKind.add]
        assert adds == []
    finally:
        d.stop()
