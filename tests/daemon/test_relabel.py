"""Transmission killed (SIGKILL) right after tva added a torrent brings it back without tva's
labels; the next pass of a real daemon sets them again from the journal."""

from __future__ import annotations

from tests.daemon.conftest import RULE, SoloFleet, wait_for


def labels(fleet: SoloFleet) -> list[str] | None:
    found = fleet.daemon.client().get_torrents([fleet.infohash], arguments=["hashString", "labels"])
    return sorted(found[0].fields.get("labels") or []) if found else None


def test_labels_lost_in_a_crash_of_transmission_are_set_again(solo_fleet: SoloFleet) -> None:
    d = solo_fleet.controller()
    d.start()
    try:
        solo_fleet.commit({"custody/films.yaml": RULE}, "keep one copy")
        wait_for(lambda: labels(solo_fleet) == ["tva", "tva:custody/films"], what="the add")
    finally:
        d.stop()
    # The crash: SIGKILL. Transmission 3.00 writes a new torrent's .torrent and resume files
    # lazily, so it comes back without its labels, or (killed sooner) not at all; the second
    # case is made the first by adding it back bare, as a restore from disk would, and labels a
    # racing save kept are taken away: the state after the crash is always "there, unlabelled".
    tr = solo_fleet.daemon
    assert tr.process is not None
    tr.process.kill()
    tr.process.wait()
    tr.process = None
    tr.start()
    if labels(solo_fleet) is None:
        metainfo = (solo_fleet.checkout / solo_fleet.torrent_rel).read_bytes()
        tr.client().add_torrent(metainfo, download_dir=str(tr.download_dir))
    wait_for(lambda: labels(solo_fleet) is not None, what="the torrent back")
    tr.client().change_torrent(solo_fleet.infohash, labels=[])
    assert labels(solo_fleet) == []

    again = solo_fleet.controller()
    again.start()
    try:
        wait_for(lambda: labels(solo_fleet) == ["tva", "tva:custody/films"], what="labels set again")
    finally:
        again.stop()
    relabelled = [e for e in again.runtime.journal.entries() if e.kind.value == "set-labels"]
    assert relabelled and relabelled[-1].outcome.value == "ok"
