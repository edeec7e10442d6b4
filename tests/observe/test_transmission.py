"""The Transmission observer against a real transmission-daemon (issue 3 acceptance), on
each supported version (3.00 and 4.1: the ``transmission_versions`` matrix).

Every test starts its own daemon on free ports, adds real torrents made from random bytes and
waits (polling, generous timeouts) for the daemon to reach a state before asserting on what the
observer reports.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import transmission_rpc

from controller.errors import AuthError, PermanentError
from controller.observe.transmission import DEFAULT_MAX_GAP, TransmissionObserver
from schemas.observed import TorrentState, TorrentStatus, TransmissionStatus
from tests.support.transmission import (
    Tracker,
    TransmissionDaemon,
    make_payload_torrent,
    wait_for,
)

pytestmark = pytest.mark.transmission_versions  # each daemon test runs on 3.00 and 4.1

WAIT = 60.0
SETTLED = {TorrentState.stopped, TorrentState.downloading, TorrentState.seeding}


@pytest.fixture
def daemon(transmission_daemon: Callable[..., TransmissionDaemon]) -> TransmissionDaemon:
    return transmission_daemon()


@pytest.fixture
def client(daemon: TransmissionDaemon) -> transmission_rpc.Client:
    return daemon.client()


@pytest.fixture
def observer(daemon: TransmissionDaemon) -> Iterator[TransmissionObserver]:
    obs = TransmissionObserver(daemon.url, timeout=10)
    yield obs
    obs.close()


def add(
    client: transmission_rpc.Client,
    torrent: Path,
    *,
    paused: bool,
    labels: list[str] | None = None,
) -> None:
    added = client.add_torrent(torrent.read_bytes(), paused=paused)
    if labels:  # add_torrent's labels= is ignored by Transmission 3.00 (LAB.md)
        client.change_torrent(added.id, labels=labels)


def torrent(status: TransmissionStatus, infohash: str) -> TorrentStatus:
    return next(t for t in status.torrents if t.infohash == infohash)


def wait_status(
    observer: TransmissionObserver,
    predicate: Callable[[TransmissionStatus], bool],
    what: str,
) -> TransmissionStatus:
    """Poll with full passes of ``observer`` until ``predicate`` holds."""

    def look() -> TransmissionStatus | None:
        status = observer.full()
        return status if predicate(status) else None

    return wait_for(look, timeout=WAIT, what=what)


def settled(status: TransmissionStatus, *hashes: str) -> bool:
    held = {t.infohash: t for t in status.torrents}
    return all(h in held and held[h].state in SETTLED for h in hashes)


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- full passes ------------------------------------------------------------------------------


def test_full_pass_reports_paused_and_running_torrents(
    daemon: TransmissionDaemon,
    client: transmission_rpc.Client,
    observer: TransmissionObserver,
    tmp_path: Path,
) -> None:
    paused_torrent, paused_hash, _ = make_payload_torrent(tmp_path / "src", 40_000)
    add(client, paused_torrent, paused=True, labels=["films", "tva"])
    # The running one has its data in the download dir already, so it checks and seeds.
    running_torrent, running_hash, data = make_payload_torrent(tmp_path / "src", 70_000)
    shutil.copy(data, daemon.download_dir / data.name)
    add(client, running_torrent, paused=False)

    status = wait_status(
        observer,
        lambda s: (
            settled(s, paused_hash, running_hash)
            and torrent(s, running_hash).state is TorrentState.seeding
        ),
        "both torrents settled",
    )

    assert status.reachable and status.error == ""
    assert status.rpc_version is not None and status.rpc_version >= 15
    assert status.version
    assert [t.infohash for t in status.torrents] == sorted([paused_hash, running_hash])

    paused = torrent(status, paused_hash)
    assert paused.state is TorrentState.stopped
    assert paused.percent_done == 0.0 and not paused.complete
    assert paused.size == 40_000
    assert paused.labels == ["films", "tva"]
    assert paused.name == f"{paused_torrent.name.removesuffix('.torrent')}"
    assert paused.download_dir == str(daemon.download_dir)
    assert paused.done_date is None
    assert paused.added_date is not None and paused.added_date.tzinfo is UTC
    assert abs(paused.added_date - datetime.now(UTC)) < timedelta(hours=1)
    assert not paused.errored and paused.trackers == []

    running = torrent(status, running_hash)
    assert running.percent_done == 1.0 and running.complete
    assert running.size == 70_000
    assert running.labels == []
    assert not running.errored


def test_torrent_completes_when_its_data_appears_and_is_verified(
    daemon: TransmissionDaemon,
    client: transmission_rpc.Client,
    observer: TransmissionObserver,
    tmp_path: Path,
) -> None:
    path, infohash, data = make_payload_torrent(tmp_path / "src", 100_000)
    add(client, path, paused=True)
    before = wait_status(observer, lambda s: settled(s, infohash), "torrent added")
    assert torrent(before, infohash).percent_done == 0.0

    shutil.copy(data, daemon.download_dir / data.name)
    client.verify_torrent(infohash)

    after = wait_status(
        observer,
        lambda s: settled(s, infohash) and torrent(s, infohash).complete,
        "verified complete",
    )
    done = torrent(after, infohash)
    assert done.percent_done == 1.0
    assert done.state is TorrentState.stopped  # verified, still paused
    assert not done.errored


def test_data_removed_under_a_torrent_is_a_local_error(
    daemon: TransmissionDaemon,
    client: transmission_rpc.Client,
    observer: TransmissionObserver,
    tmp_path: Path,
) -> None:
    path, infohash, data = make_payload_torrent(tmp_path / "src", 50_000)
    shutil.copy(data, daemon.download_dir / data.name)
    add(client, path, paused=False)
    wait_status(observer, lambda s: torrent(s, infohash).state is TorrentState.seeding, "seeding")

    client.stop_torrent(infohash)
    wait_status(observer, lambda s: torrent(s, infohash).state is TorrentState.stopped, "stop")
    (daemon.download_dir / data.name).unlink()
    client.start_torrent(infohash)

    status = wait_status(observer, lambda s: torrent(s, infohash).errored, "a local error")
    broken = torrent(status, infohash)
    assert broken.error == 3  # local error, as opposed to 1-2 (tracker)
    assert broken.error_string


def test_tracker_error_and_tracker_results(
    transmission_daemon: Callable[..., TransmissionDaemon],
    tracker: Tracker,
    tmp_path: Path,
) -> None:
    daemon = transmission_daemon()
    client = daemon.client()
    forgotten_path, forgotten, _ = make_payload_torrent(
        tmp_path / "src", 30_000, trackers=[tracker.announce_url]
    )
    known_path, known, _ = make_payload_torrent(
        tmp_path / "src", 30_000, trackers=[tracker.announce_url]
    )
    tracker.fail(forgotten, "unregistered torrent")
    tracker.swarm(known, seeders=3, leechers=1)
    add(client, forgotten_path, paused=False)
    add(client, known_path, paused=False)

    # By default, tracker details come only for torrents whose tracker complained.
    observer = TransmissionObserver(daemon.url, timeout=10)
    status = wait_status(
        observer,
        lambda s: torrent(s, forgotten).errored and tracker.announced(known) > 0,
        "tracker error",
    )
    bad = torrent(status, forgotten)
    assert bad.error == 2
    assert "unregistered torrent" in bad.error_string
    [result] = bad.trackers
    assert result.announce == tracker.announce_url
    assert result.last_announce_ok is False
    assert result.last_announce_result == "unregistered torrent"
    assert result.last_announce_time is not None and result.last_announce_time.tzinfo is UTC
    good = torrent(status, known)
    assert good.error == 0 and good.trackers == []

    everything = TransmissionObserver(daemon.url, timeout=10, all_tracker_stats=True)
    status = wait_status(
        everything,
        lambda s: (
            bool(torrent(s, known).trackers)
            and torrent(s, known).trackers[0].last_announce_ok is True
        ),
        "a successful announce",
    )
    [ok] = torrent(status, known).trackers
    assert ok.announce == tracker.announce_url
    assert (ok.seeders, ok.leechers) == (3, 1)
    assert torrent(status, forgotten).trackers[0].last_announce_ok is False


# -- incremental passes -----------------------------------------------------------------------


def test_incremental_pass_returns_just_the_change(
    daemon: TransmissionDaemon,
    client: transmission_rpc.Client,
    observer: TransmissionObserver,
    tmp_path: Path,
) -> None:
    hashes = []
    for _ in range(3):
        path, infohash, _ = make_payload_torrent(tmp_path / "src", 20_000)
        add(client, path, paused=True)
        hashes.append(infohash)
    a, b, c = hashes
    watcher = TransmissionObserver(daemon.url)  # its passes leave ``observer``'s memory alone
    wait_status(watcher, lambda s: settled(s, a, b, c), "three paused torrents")

    base = observer.observe_full()
    assert base.full and set(base.changed) == {a, b, c}

    quiet = observer.incremental(base.status)
    assert not quiet.full
    assert quiet.nothing_changed
    assert quiet.status == base.status

    client.start_torrent(b)
    wait_status(watcher, lambda s: torrent(s, b).state is TorrentState.downloading, "b started")
    started = observer.incremental(quiet.status)
    assert not started.full
    assert started.changed == (b,) and started.removed == ()
    assert torrent(started.status, b).state is TorrentState.downloading
    assert torrent(started.status, a) == torrent(base.status, a)

    client.remove_torrent(c)
    removed = observer.incremental(started.status)
    assert not removed.full
    assert removed.removed == (c,) and removed.changed == ()
    assert [t.infohash for t in removed.status.torrents] == sorted([a, b])

    # The removed id stays in the daemon's 60-second window: seen again, it changes nothing.
    again = observer.incremental(removed.status)
    assert not again.full and again.removed == () and again.changed == ()

    path, d, _ = make_payload_torrent(tmp_path / "src", 20_000)
    add(client, path, paused=True)
    added = observer.incremental(again.status)
    assert not added.full
    assert added.changed == (d,) and added.removed == ()
    assert [t.infohash for t in added.status.torrents] == sorted([a, b, d])

    # What the increments add up to is what a full look at the daemon sees.
    wait_status(watcher, lambda s: settled(s, d), "d settled")
    merged = observer.incremental(added.status)
    assert not merged.full
    assert merged.status.torrents == watcher.full().torrents


def test_incremental_pass_after_a_restart_falls_back_to_a_full_pass(
    daemon: TransmissionDaemon,
    client: transmission_rpc.Client,
    observer: TransmissionObserver,
    tmp_path: Path,
) -> None:
    hashes = []
    for _ in range(3):
        path, infohash, _ = make_payload_torrent(tmp_path / "src", 20_000)
        add(client, path, paused=True)
        hashes.append(infohash)
    before = wait_status(observer, lambda s: settled(s, *hashes), "three paused torrents")

    daemon.stop()
    daemon.start()
    client = daemon.client()
    wait_for(lambda: client.session_stats().torrent_count == 3, timeout=WAIT, what="reload")

    after = observer.incremental(before)
    assert after.full  # integer ids may mean other torrents now
    assert after.status.reachable
    assert [t.infohash for t in after.status.torrents] == sorted(hashes)

    # The id map was rebuilt: a removal is attributed to the right torrent.
    gone = hashes[1]
    client.remove_torrent(gone)
    removed = observer.incremental(after.status)
    assert not removed.full
    assert removed.removed == (gone,)
    assert gone not in {t.infohash for t in removed.status.torrents}


def test_incremental_pass_falls_back_when_the_window_no_longer_covers_the_gap(
    daemon: TransmissionDaemon, client: transmission_rpc.Client, tmp_path: Path
) -> None:
    clock = Clock()
    observer = TransmissionObserver(daemon.url, clock=clock)
    path, infohash, _ = make_payload_torrent(tmp_path / "src", 20_000)
    add(client, path, paused=True)
    first = observer.observe_full()

    clock.now += DEFAULT_MAX_GAP / 2
    soon = observer.incremental(first.status)
    assert not soon.full

    clock.now += DEFAULT_MAX_GAP + 1
    late = observer.incremental(soon.status)
    assert late.full
    assert [t.infohash for t in late.status.torrents] == [infohash]

    # A snapshot that is not the observer's last one is not trusted either.
    stale = observer.incremental(first.status.model_copy(update={"torrents": []}))
    assert stale.full and stale.changed == (infohash,)


def test_incremental_passes_make_a_full_pass_now_and_then(
    daemon: TransmissionDaemon, client: transmission_rpc.Client, tmp_path: Path
) -> None:
    clock = Clock()
    observer = TransmissionObserver(daemon.url, clock=clock, full_every=20)
    path, infohash, _ = make_payload_torrent(tmp_path / "src", 20_000)
    add(client, path, paused=True)
    wait_status(TransmissionObserver(daemon.url), lambda s: settled(s, infohash), "added")
    first = observer.observe_full()

    # A label edit does not touch the activity date: full passes are what pick such edits up.
    client.change_torrent(infohash, labels=["kept"])
    clock.now += 10
    quick = observer.incremental(first.status)
    assert not quick.full
    clock.now += 11
    periodic = observer.incremental(quick.status)
    assert periodic.full
    assert torrent(periodic.status, infohash).labels == ["kept"]
    clock.now += 5
    assert not observer.incremental(periodic.status).full


# -- unreachable, refused, free space ---------------------------------------------------------


def test_stopped_daemon_is_unreachable_not_empty(
    daemon: TransmissionDaemon,
    client: transmission_rpc.Client,
    observer: TransmissionObserver,
    tmp_path: Path,
) -> None:
    path, infohash, _ = make_payload_torrent(tmp_path / "src", 20_000)
    add(client, path, paused=True)
    held = observer.observe_full()
    assert [t.infohash for t in held.status.torrents] == [infohash]

    daemon.stop()

    status = observer.full()
    assert status.reachable is False
    assert "connection refused" in status.error and daemon.url in status.error
    lost = observer.incremental(held.status)
    assert lost.status.reachable is False
    assert lost.removed == () and lost.session_changed  # "could not look", not "all gone"
    [space] = observer.free_space([str(daemon.download_dir)])
    assert space.reachable is False

    daemon.start()
    back = wait_status(observer, lambda s: s.reachable and bool(s.torrents), "back")
    assert [t.infohash for t in back.torrents] == [infohash]


def test_daemon_that_does_not_answer_in_time_is_unreachable() -> None:
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        observer = TransmissionObserver(f"http://127.0.0.1:{port}/transmission/rpc", timeout=0.5)
        status = observer.full()
    assert status.reachable is False
    assert "no answer within 0.5s" in status.error


def test_a_server_that_is_not_transmission_is_unreachable(tracker: Tracker) -> None:
    url = tracker.announce_url.replace("/announce", "/transmission/rpc")
    status = TransmissionObserver(url, timeout=5).full()
    assert status.reachable is False
    assert "not Transmission RPC" in status.error


def test_refused_credentials_raise_auth_error(
    transmission_daemon: Callable[..., TransmissionDaemon],
) -> None:
    daemon = transmission_daemon(username="tva", password="s3cret-pw")
    with pytest.raises(AuthError, match="credentials"):
        TransmissionObserver(daemon.url).full()
    with pytest.raises(AuthError) as refused:
        TransmissionObserver(daemon.url, "tva", "wrong").full()
    assert "wrong" not in str(refused.value)

    assert TransmissionObserver(daemon.url, "tva", "s3cret-pw").full().reachable
    in_url = TransmissionObserver(daemon.url.replace("http://", "http://tva:s3cret-pw@"))
    assert in_url.full().reachable
    assert "s3cret-pw" not in in_url.url


def test_client_outside_the_whitelist_raises_auth_error(
    transmission_daemon: Callable[..., TransmissionDaemon],
) -> None:
    daemon = transmission_daemon(rpc_whitelist="10.9.9.9")
    with pytest.raises(AuthError, match="rpc-whitelist"):
        TransmissionObserver(daemon.url).full()


def test_free_space_per_storage_root(
    daemon: TransmissionDaemon, observer: TransmissionObserver
) -> None:
    root, missing = str(daemon.download_dir), str(daemon.root / "not-mounted")
    capacity = {root: 2 * 10**12, missing: 10**12}

    found, absent = observer.free_space([root, missing], capacity)

    assert found.path == root and found.reachable
    assert 0 < found.free <= shutil.disk_usage(root).total
    rpc_version = observer.full().rpc_version
    assert rpc_version is not None
    if rpc_version >= 17:  # 4.x measures the total itself
        assert found.total == shutil.disk_usage(root).total
    else:  # RPC 16 reports no total: the declared capacity
        assert found.total == 2 * 10**12
    # 3.00 refuses a missing path; 4.1 answers "success" with -1 bytes: unreachable either way.
    assert absent.path == missing
    assert absent.reachable is False and absent.total == 10**12 and absent.free == 0


def test_url_must_be_http() -> None:
    with pytest.raises(PermanentError, match="http"):
        TransmissionObserver("ftp://nas/transmission/rpc")


def test_observer_output_is_deterministic(
    daemon: TransmissionDaemon, client: transmission_rpc.Client, tmp_path: Path
) -> None:
    hashes = []
    for _ in range(5):
        path, infohash, _ = make_payload_torrent(tmp_path / "src", 10_000)
        add(client, path, paused=True)
        hashes.append(infohash)
    first = wait_status(
        TransmissionObserver(daemon.url), lambda s: settled(s, *hashes), "five torrents"
    )
    second: dict[str, Any] = TransmissionObserver(daemon.url).full().model_dump(mode="json")
    assert first.model_dump(mode="json") == second
    assert [t["infohash"] for t in second["torrents"]] == sorted(hashes)
