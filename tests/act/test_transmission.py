"""The Transmission actuator against a real transmission-daemon (3.00 and 4.1): every verb does what it says,
applying it again changes nothing, and a refused change is permanent.

Shares the node's ``TransmissionClient`` with an observer, as the daemon does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from fastbencode import bdecode, bencode  # type: ignore[attr-defined]

from controller.act.metainfo import BadMetainfo
from controller.act.metainfo import magnet_with_trackers as _magnet_with_trackers
from controller.act.metainfo import with_trackers as _with_trackers
from controller.act.transmission import TransmissionActuator
from controller.clients.transmission import TransmissionClient, WriteRefused
from controller.errors import PermanentError
from schemas.plan import Action, ActionKind, action_id
from tests.support.transmission import Tracker, TransmissionDaemon, make_payload_torrent, wait_for

pytestmark = pytest.mark.transmission_versions  # each daemon test runs on 3.00 and 4.1

WAIT = 60.0
T = TypeVar("T")


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
        "hashString", "labels", "status", "trackers", "percentDone", "downloadDir", "webseeds"])
    return dict(found[0].fields) if found else {}


def test_add_is_idempotent_and_sets_labels_and_trackers(
    daemon: TransmissionDaemon, actuator: TransmissionActuator, tmp_path: Path
) -> None:
    torrent, infohash, _ = make_payload_torrent(tmp_path / "payload", 64 * 1024)
    actuator.metainfo = lambda a: torrent.read_bytes()
    urls = ["http://127.0.0.1:9/announce", "http://127.0.0.2:9/announce"]
    add = action(ActionKind.add, infohash, paused=True, labels=["tva", "tva:custody/films"],
                 trackers=urls)
    assert actuator.apply(add) == "done"
    assert actuator.apply(add) == "no-op"
    got = fields(daemon, infohash)
    assert sorted(got["labels"]) == ["tva", "tva:custody/films"]  # type: ignore[arg-type]
    trackers: list[dict[str, object]] = got["trackers"]  # type: ignore[assignment]
    assert [t["announce"] for t in trackers] == urls
    assert len({t["tier"] for t in trackers}) == len(urls)  # a tier each: each is announced to


class CountingClient(TransmissionClient):
    """The node's client, counting the changes it sends."""

    writes = 0

    def write(self, call: Callable[[Any], T]) -> T:
        self.writes += 1
        return super().write(call)


def test_labels_go_with_the_add_where_the_daemon_honours_them(
    daemon: TransmissionDaemon, tmp_path: Path
) -> None:
    client = CountingClient(daemon.url, timeout=10)
    actuator = TransmissionActuator(client)
    torrent, infohash, _ = make_payload_torrent(tmp_path / "payload", 64 * 1024)
    actuator.metainfo = lambda a: torrent.read_bytes()
    assert actuator.apply(action(ActionKind.add, infohash, paused=True, labels=["tva"])) == "done"
    assert fields(daemon, infohash)["labels"] == ["tva"]
    honoured = client.capabilities().labels_on_add
    assert honoured == (client.capabilities().rpc_version >= 17)
    assert client.writes == (1 if honoured else 2)  # 3.00: the add, then the label edit


def test_set_trackers_keeps_the_torrents_own_trackers(
    daemon: TransmissionDaemon, tmp_path: Path
) -> None:
    client = CountingClient(daemon.url, timeout=10)
    actuator = TransmissionActuator(client)
    own = "http://127.0.0.1:7/announce"
    torrent, infohash, _ = make_payload_torrent(tmp_path / "payload", 64 * 1024, trackers=[own])
    daemon.client().add_torrent(torrent.read_bytes(), paused=True)
    fleet = ["http://127.0.0.2:8/announce", "http://127.0.0.3:8/announce"]
    edit = action(ActionKind.set_trackers, infohash, add=[*fleet, own])
    assert actuator.apply(edit) == "done"
    # RPC 17+: one trackerList with the whole list; 3.00: one trackerAdd per new URL.
    assert client.writes == (1 if client.capabilities().tracker_list else 2)
    assert actuator.apply(edit) == "no-op"
    trackers: list[dict[str, object]] = fields(daemon, infohash)["trackers"]  # type: ignore[assignment]
    assert [t["announce"] for t in trackers] == [own, *fleet]
    assert len({t["tier"] for t in trackers}) == 3


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


SEED = "http://127.0.0.1:9/v1/seed/lane"
LABELS = ["tva", "tva:custody/films"]


def _added_half_there(daemon: TransmissionDaemon, actuator: TransmissionActuator, tmp_path: Path,
                      seeds: list[str], *, paused: bool = False) -> str:
    """A torrent of four pieces, the first two already in the download dir, added with
    ``seeds`` as its web seeds; from then on the holders hand out ``SEED``."""
    torrent, infohash, data = make_payload_torrent(tmp_path / "payload", 16 << 20)
    (Path(daemon.download_dir) / data.name).write_bytes(data.read_bytes()[: 8 << 20])
    actuator.metainfo = lambda a: torrent.read_bytes()
    actuator.webseeds = lambda a: seeds
    assert actuator.apply(action(ActionKind.add, infohash, labels=LABELS, paused=paused)) == "done"
    assert fields(daemon, infohash)["webseeds"] == seeds
    actuator.webseeds = lambda a: [SEED]
    return infohash


@pytest.mark.parametrize("kind", [ActionKind.drop_webseeds, ActionKind.add_webseeds])
def test_webseeds_dropped_or_added_keep_labels_and_the_data_there(
    daemon: TransmissionDaemon, actuator: TransmissionActuator, tmp_path: Path, kind: ActionKind
) -> None:
    before, after = ([SEED], []) if kind is ActionKind.drop_webseeds else ([], [SEED])
    infohash = _added_half_there(daemon, actuator, tmp_path, before)
    again = action(kind, infohash, labels=LABELS)
    assert actuator.apply(again) == "done"
    got = fields(daemon, infohash)
    assert got["webseeds"] == after and sorted(got["labels"]) == LABELS  # type: ignore[call-overload]
    # the half already there is verified and kept, not fetched again
    wait_for(lambda: 0.4 < float(fields(daemon, infohash)["percentDone"]) < 1,  # type: ignore[arg-type]
             WAIT, what="the data in place verified")
    assert actuator.apply(again) == "no-op"


@pytest.mark.parametrize("kind", [ActionKind.drop_webseeds, ActionKind.add_webseeds])
def test_a_stopped_torrent_keeps_its_web_seeds(
    daemon: TransmissionDaemon, actuator: TransmissionActuator, tmp_path: Path, kind: ActionKind
) -> None:
    seeds = [SEED] if kind is ActionKind.drop_webseeds else []
    infohash = _added_half_there(daemon, actuator, tmp_path, seeds, paused=True)
    wait_for(lambda: fields(daemon, infohash)["status"] == 0, WAIT, what="checked, stopped")
    assert actuator.apply(action(kind, infohash, labels=LABELS, paused=True)) == "no-op"
    assert fields(daemon, infohash)["webseeds"] == seeds
    assert fields(daemon, infohash)["status"] == 0, "still stopped"


def test_add_webseeds_with_none_to_be_had_leaves_the_torrent(
    daemon: TransmissionDaemon, actuator: TransmissionActuator, tmp_path: Path
) -> None:
    infohash = _added_half_there(daemon, actuator, tmp_path, [])
    actuator.webseeds = None  # no holder hands one out
    added = daemon.client().get_torrents([infohash], arguments=["hashString", "addedDate"])
    assert actuator.apply(action(ActionKind.add_webseeds, infohash, labels=LABELS)) == "no-op"
    assert daemon.client().get_torrents([infohash], arguments=["hashString", "addedDate"])[0] \
        .fields["addedDate"] == added[0].fields["addedDate"]


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


FLEET_BASE = "http://127.0.0.1:9/announce"
FLEET_URL = FLEET_BASE + "/node-token"


def test_a_fleet_only_item_never_reaches_a_foreign_tracker(
    daemon: TransmissionDaemon, tracker: Tracker, tmp_path: Path
) -> None:
    """Fleet-only items committed with a foreign tracker, in the .torrent's announce list and
    in a magnet's tr=, are added with the fleet's tracker only: the stand-in public tracker
    records no announce of them, while a public item with the same tracker (the control)
    announces to it at once."""
    actuator = TransmissionActuator(TransmissionClient(daemon.url, timeout=10),
                                    fleet_tracker=(FLEET_BASE, FLEET_URL))
    private, private_hash, _ = make_payload_torrent(tmp_path / "a", 64 * 1024,
                                                    trackers=[tracker.announce_url])
    _, magnet_hash, _ = make_payload_torrent(tmp_path / "b", 64 * 1024)
    public, public_hash, _ = make_payload_torrent(tmp_path / "c", 64 * 1024,
                                                  trackers=[tracker.announce_url])
    files = {private_hash: private.read_bytes(), public_hash: public.read_bytes()}
    actuator.metainfo = lambda a: files.get(a.target)
    actuator.apply(action(ActionKind.add, private_hash, fleet_only=True, trackers=[FLEET_BASE],
                          labels=["tva"]))
    magnet = f"magnet:?xt=urn:btih:{magnet_hash}&dn=b&tr={tracker.announce_url}&ws=http://x/b"
    actuator.apply(action(ActionKind.add, magnet_hash, fleet_only=True, magnet=magnet,
                          trackers=[FLEET_BASE], labels=["tva"]))
    actuator.apply(action(ActionKind.add, public_hash, trackers=[FLEET_BASE], labels=["tva"]))
    wait_for(lambda: tracker.announced(public_hash), WAIT, what="the control's announce")
    for infohash in (private_hash, magnet_hash):
        announced = [t["announce"] for t in fields(daemon, infohash)["trackers"]]  # type: ignore[attr-defined]
        assert announced == [FLEET_URL], infohash
        assert tracker.announced(infohash) == 0, infohash


def test_foreign_trackers_found_later_are_removed_and_stale_fleet_urls_replaced(
    daemon: TransmissionDaemon, tmp_path: Path
) -> None:
    torrent, infohash, _ = make_payload_torrent(tmp_path / "a", 64 * 1024)
    client = daemon.client()
    client.add_torrent(torrent.read_bytes(), paused=True)
    for url in ("http://127.0.0.1:9/announce", "http://127.0.0.1:10/foreign/announce"):
        client.change_torrent(infohash, tracker_add=[url])
    actuator = TransmissionActuator(TransmissionClient(daemon.url, timeout=10),
                                    fleet_tracker=(FLEET_BASE, FLEET_URL))
    only = action(ActionKind.set_trackers, infohash, add=[FLEET_BASE], only_fleet=True)
    assert actuator.apply(only) == "done"
    assert [t["announce"] for t in fields(daemon, infohash)["trackers"]] == [FLEET_URL]  # type: ignore[attr-defined]
    assert actuator.apply(only) == "no-op"


def test_set_session_changes_only_what_differs_and_only_owned_settings(
    daemon: TransmissionDaemon, actuator: TransmissionActuator
) -> None:
    daemon.client().set_session(dht_enabled=True, encryption="preferred")
    want = action(ActionKind.set_session, "session", **{
        "dht-enabled": False, "encryption": "required", "download-dir": "/etc"})
    assert actuator.apply(want) == "done"
    got = daemon.client().get_session().fields
    assert got["dht-enabled"] is False and got["encryption"] == "required"
    assert got["download-dir"] != "/etc", "a setting tva does not own is never sent"
    assert actuator.apply(want) == "no-op"


def test_an_added_torrent_announces_to_the_trackers_it_is_given(
    daemon: TransmissionDaemon, actuator: TransmissionActuator, tracker: Tracker, tmp_path: Path
) -> None:
    """The metainfo carries no tracker; the fleet's tracker goes in with the add, so every
    version announces to it (4.x would not announce to one added to a running torrent)."""
    torrent, infohash, _ = make_payload_torrent(tmp_path / "payload", 64 * 1024)
    actuator.metainfo = lambda a: torrent.read_bytes()
    assert actuator.apply(action(ActionKind.add, infohash, trackers=[tracker.announce_url])) == "done"
    wait_for(lambda: tracker.announced(infohash) > 0, WAIT, what="an announce")
    got = fields(daemon, infohash)
    assert got["hashString"] == infohash
    assert [t["announce"] for t in got["trackers"]] == [tracker.announce_url]  # type: ignore[attr-defined]


def test_trackers_go_into_the_metainfo_outside_the_info_dict(tmp_path: Path) -> None:
    own = "http://127.0.0.1:7/announce"
    torrent, infohash, _ = make_payload_torrent(tmp_path / "payload", 20_000, trackers=[own])
    original = torrent.read_bytes()
    fleet = "http://10.0.0.1:8/announce"
    changed = _with_trackers(original, [fleet, own])
    meta = bdecode(changed)
    assert hashlib.sha1(bencode(meta[b"info"])).hexdigest() == infohash
    assert meta[b"announce-list"] == [[own.encode()], [fleet.encode()]]
    assert meta[b"announce"] == own.encode()
    assert _with_trackers(changed, [fleet]) == changed  # already there
    for broken in (b"not bencode", b"li1ee"):
        with pytest.raises(BadMetainfo):
            _with_trackers(broken, [fleet])
    bare = bdecode(_with_trackers(bencode({b"info": meta[b"info"]}), [fleet]))
    assert bare[b"announce"] == fleet.encode() and bare[b"announce-list"] == [[fleet.encode()]]


def test_trackers_go_into_a_magnet_link() -> None:
    magnet = "magnet:?xt=urn:btih:" + "ab" * 20
    fleet = "http://10.0.0.1:8/announce"
    once = _magnet_with_trackers(magnet, [fleet])
    assert once == magnet + "&tr=http%3A%2F%2F10.0.0.1%3A8%2Fannounce"
    assert _magnet_with_trackers(once, [fleet]) == once
