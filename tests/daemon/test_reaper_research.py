"""The reaper's last rung, run by a real daemon (issue 14): a real Transmission, a real fleet repo,
the fake Torznab indexer on a real socket.

A one-node fleet (``solo``, also the acquirer) keeps a public film that nobody seeds: its torrent
is added and never moves. With the reaper's thresholds at seconds, it is stalled, struck, dead;
the ladder reannounces and verifies it, and with no fleet holder the acquirer searches the
film's source for its name. The indexer has a release of the same size: the daemon commits it as
a replacement naming the dead item, and on that revision adds the replacement (whose data is
already on disk, so it completes), leaving the dead torrent in place.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from controller.daemon.daemon import Daemon, DaemonConfig
from controller.lab.transmission import make_payload_torrent
from controller.nodeconfig import current, install
from schemas.node import NodeConfig
from tests.daemon.conftest import device, wait_for
from tests.support.gitrepo import clone_checkout, commit_files, git
from tests.support.torznab import FakeIndexer, FakeRelease
from tests.support.transmission import TransmissionDaemon

SIZE = 256 * 1024
FLEET = """\
apiVersion: tva/v1
kind: Fleet
name: solo
policy:
  freshness: {stale_after: 10m, grace: 2h}
  sync: {poll: 1s, resync: 1s}
  reaper: {stalled_after: 1s, strike_interval: 1s, dead_strikes: 2, reannounce_every: 1s,
           verify_every: 1s, research_every: 1h}
"""


def _files(tr: TransmissionDaemon, indexer: FakeIndexer) -> dict[str, str | None]:
    return {
        "fleet.yaml": FLEET,
        "devices/solo.yaml": device("solo", tr),
        "duties.yaml": "apiVersion: tva/v1\nkind: Duties\npins: {acquirer: solo}\n",
        "sources/public.yaml": (
            "apiVersion: tva/v1\nkind: Source\nname: public\nprovenance: public\nsearch: true\n"
            f"indexer: {{url: \"{indexer.url}\"}}\n"),
        "items/old.yaml": (
            "apiVersion: tva/v1\nkind: Collection\nname: old\nsource: public\nitems:\n"
            f"  - {{name: Old Film, torrent: torrents/old.torrent, size: {SIZE}}}\n"),
        "custody/old.yaml": (
            "apiVersion: tva/v1\nkind: CustodyRule\nname: old\nselect: {collections: [old]}\n"
            "min: 1\n"),
    }


@pytest.fixture
def no_node_config() -> Iterator[None]:
    before = current()
    install(NodeConfig())
    try:
        yield
    finally:
        install(before)


def test_a_dead_item_is_re_searched_and_superseded_by_a_commit(
    tmp_path: Path, git_env: None, no_node_config: None,
    transmission_daemon: Callable[..., TransmissionDaemon],
) -> None:
    tr = transmission_daemon("solo")
    indexer = FakeIndexer().start()
    try:
        # The dead film: metainfo in the repo, its data nowhere.
        dead_torrent, dead, _ = make_payload_torrent(tmp_path / "dead", SIZE, name="old.bin")
        # The replacement: same size, served by the indexer, its data already on disk.
        title = "Old.Film.1999.720p-GRP"
        good_torrent, good, good_data = make_payload_torrent(tmp_path / "good", SIZE,
                                                             name=f"{title}.bin")
        shutil.copy(good_data, tr.download_dir / good_data.name)
        indexer.add(FakeRelease(title, good_torrent.read_bytes(), good, SIZE, seeders=5,
                                modes=("search",)))
        big_torrent, big, _ = make_payload_torrent(tmp_path / "big", SIZE * 3, name="big.bin")
        indexer.add(FakeRelease("Old.Film.1999.1080p-BIG", big_torrent.read_bytes(), big,
                                SIZE * 3, seeders=50, modes=("search",)))
        remote = tmp_path / "remote.git"
        git(tmp_path, "init", "--quiet", "--bare", "-b", "main", str(remote))
        owner = clone_checkout(remote, tmp_path / "owner", "owner")
        git(owner, "symbolic-ref", "HEAD", "refs/heads/main")
        (owner / "torrents").mkdir()
        shutil.copy(dead_torrent, owner / "torrents" / "old.torrent")
        git(owner, "add", "torrents/old.torrent")
        first = commit_files(owner, _files(tr, indexer), "a film nobody seeds")
        daemon = Daemon(DaemonConfig(
            node="solo", repo=str(remote), state_dir=str(tmp_path / "state"),
            status_dir=str(tmp_path / "statuses"), listen="off", host_player=False, poll=0.3))
        daemon.start()
        try:
            wait_for(lambda: git(remote, "rev-parse", "main") != first, 120,
                     "the acquirer to commit a replacement")
            client = tr.client()
            wait_for(lambda: any(t.hash_string == good and t.percent_done == 1.0
                                 for t in client.get_torrents(arguments=["hashString",
                                                                          "percentDone"])),
                     60, "the daemon to add the replacement")
        finally:
            daemon.stop()
        journal = [json.loads(line) for line in
                   (tmp_path / "state" / "solo.journal.jsonl").read_text().splitlines()]
        held = {t.hash_string for t in client.get_torrents(arguments=["hashString"])}
    finally:
        indexer.stop()
    # One search, of the dead item's name, on its own source...
    assert [(q["t"], q["q"]) for q in indexer.searches()] == [("search", "Old Film")]
    # ...by this daemon, after the ladder's earlier rungs: strikes, a reannounce, a verify...
    done = [(e["kind"], e["outcome"]) for e in journal if e["target"] == dead]
    searched = done.index(("research", "ok"))
    for step in ("record-strike", "reannounce", "verify"):
        assert (step, "ok") in done[:searched], done
    # ...one commit, naming the dead item it supersedes, with the release of the right size.
    new = git(remote, "rev-list", f"{first}..main").splitlines()
    assert len(new) == 1
    assert git(remote, "log", "-1", "--format=%s", new[0]) == (
        f"Supersede dead item {dead[:12]} with {title}")
    item = git(remote, "show", f"main:items/acquired/{good}.yaml")
    assert f"supersedes: {dead}" in item and "name: Old Film" in item
    # The replacement is held complete; the dead torrent is left in place, not deleted.
    assert {dead, good} <= held
