"""The Transmission actuator against a real transmission-daemon (3.00 and 4.1): every verb does what it says,
applying it again changes nothing, and a refused change is permanent.

Shares the node's ``TransmissionClient`` with an observer, as the daemon does.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from controller.act.transmission import TransmissionActuator
from controller.clients.transmission import TransmissionClient, WriteRefused
from controller.errors import PermanentError
from schemas.plan import Action, ActionKind, action_id
from tests.support.transmission import TransmissionDaemon, make_payload_torrent, wait_for

pytestmark = pytest.mark.transmission_versions  # each daemon test runs on 3.00 and 4.1

WAIT = 60.0


def action(kind: ActionKind, target: str, **params: object) -> Action:
    return Action(id=action_id("solo", kind, target), node="solo", kind=kind, target=target,
                  reason="test", params=params)


@pytest.fixture
def daemon(transmission_daemon: Callable[..., TransmissionDaemon]) -> TransmissionDaemon:
    return transmission_daemon()


@pytest.fixture
def actuator(daemon: TransmissionDaemon) -> TransmissionActuator:
    return TransmissionActuator(TransmissionClient(daemon.url, timeout=10))


def fields(daemon: TransmissionDaemon, infohash: str) -> dict[str, object]:
    found = daemon.client().get_torrents([infohash], arguments=[
        "hashString", "labels", "status", "trackers", "percentDone", "downloadDir"])
    return dict(found[0].fields) if found else {}


def test_add_is_idempotent_and_sets_labels_and_trackers(
    daemon: TransmissionDaemon, actuator: TransmissionActuator, tmp_path: Path
) -> None:
    torrent, infohash, _ = make_payload_torrent(tmp_path / "payload", 64 * 1024)
    actuator.metainfo = lambda a: torrent.read_bytes()
    add = action(ActionKind.add, infohash, paused=True, labels=["tva", "tva:custody/films"],
                 trackers=["http://127.0.0.1:9/announce"])
    assert actuator.apply(add) == "done"
    assert actuator.apply(add) == "no-op"
    got = fields(daemon, infohash)
    assert sorted(got["labels"]) == ["tva", "tva:custody/films"]  # type: ignore[arg-type]
    assert [t["announce"] for t in got["trackers"]] == ["http://127.0.0.1:9/announce"]  # type: ignore[attr-defined]


def test_labels_lost_after_an_add_are_set_again_by_the_same_add(
    daemon: TransmissionDaemon, actuator: TransmissionActuator, tmp_path: Path
) -> None:
    """A torrent that is there without tva's labels (added by hand, or labels lost in a crash
    between the add and the label edit) gets them from the next add."""
    torrent, infohash, _ = make_payload_torrent(tmp_path / "payload", 64 * 1024)
    daemon.client().add_torrent(torrent.read_bytes(), paused=True)
    assert actuator.apply(action(ActionKind.add, infohash, labels=["tva"])) == "done"
    assert fields(daemon, infohash)["labels"] == ["tva"]


def test_stop_and_start_carry_their_labels(
    daemon: TransmissionDaemon, actuator: TransmissionActuator, tmp_path: Path
) -> None:
    torrent, infohash, _ = make_payload_torrent(tmp_path / "payload", 64 * 1024)
    actuator.metainfo = lambda a: torrent.read_bytes()
    actuator.apply(action(ActionKind.add, infohash, labels=["tva"]))
    # Transmission 3.00 starts a torrent when its first check ends, even if it was stopped
    # during the check: stop it once it has settled (a daemon's next pass would stop it again).
    wait_for(lambda: fields(daemon, infohash)["status"] in (4, 6), WAIT, what="settled")
    stop = action(ActionKind.stop, infohash, labels_add=["tva:vpn-stopped"])
    assert actuator.apply(stop) == "done"
    wait_for(lambda: fields(daemon, infohash)["status"] == 0, WAIT, what="stopped")
    assert actuator.apply(stop) == "no-op"
    assert "tva:vpn-stopped" in fields(daemon, infohash)["labels"]  # type: ignore[operator]
    start = action(ActionKind.start, infohash, labels_remove=["tva:vpn-stopped"])
    assert actuator.apply(start) == "done"
    wait_for(lambda: fields(daemon, infohash)["status"] != 0, WAIT, what="started")
    assert fields(daemon, infohash)["labels"] == ["tva"]


def test_remove_torrent_keeps_the_data_and_remove_data_does_not(
    daemon: TransmissionDaemon, actuator: TransmissionActuator, tmp_path: Path
) -> None:
    kept, kept_hash, kept_data = make_payload_torrent(tmp_path / "a", 64 * 1024)
    gone, gone_hash, gone_data = make_payload_torrent(tmp_path / "b", 64 * 1024)
    downloads = Path(daemon.download_dir)
    for data in (kept_data, gone_data):
        (downloads / data.name).write_bytes(data.read_bytes())
    for torrent in (kept, gone):
        daemon.client().add_torrent(torrent.read_bytes(), paused=True)
    for infohash in (kept_hash, gone_hash):
        actuator.apply(action(ActionKind.verify, infohash))
        wait_for(lambda h=infohash: fields(daemon, h).get("percentDone") == 1, WAIT, what="verified")
    assert actuator.apply(action(ActionKind.remove_torrent, kept_hash)) == "done"
    assert actuator.apply(action(ActionKind.remove_data, gone_hash)) == "done"
    wait_for(lambda: not (downloads / gone_data.name).exists(), WAIT, what="data removed")
    assert (downloads / kept_data.name).exists()
    assert fields(daemon, kept_hash) == {} and fields(daemon, gone_hash) == {}
    assert actuator.apply(action(ActionKind.remove_data, gone_hash)) == "no-op"


def test_holds_complete_answers_live(
    daemon: TransmissionDaemon, actuator: TransmissionActuator, tmp_path: Path
) -> None:
    torrent, infohash, data = make_payload_torrent(tmp_path / "payload", 64 * 1024)
    assert actuator.holds_complete(infohash) is False
    (Path(daemon.download_dir) / data.name).write_bytes(data.read_bytes())
    daemon.client().add_torrent(torrent.read_bytes(), paused=True)
    wait_for(lambda: actuator.holds_complete(infohash), WAIT, what="complete")


def test_a_refused_change_is_permanent(actuator: TransmissionActuator) -> None:
    with pytest.raises(WriteRefused) as refused:
        actuator.apply(action(ActionKind.start, "ab" * 20))
    assert isinstance(refused.value, PermanentError)
