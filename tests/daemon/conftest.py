"""A one-node fleet repo (bare remote + a checkout to commit from) around a real daemon."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from controller import waiting
from controller.daemon.daemon import Daemon, DaemonConfig
from tests.support.gitrepo import clone_checkout, commit_files, git
from tests.support.transmission import TransmissionDaemon, make_payload_torrent

FLEET = """\
apiVersion: tva/v1
kind: Fleet
name: solo
policy:
  freshness: {stale_after: 10m, grace: 2h}
"""


def device(name: str, daemon: TransmissionDaemon) -> str:
    return f"""\
apiVersion: tva/v1
kind: Device
name: {name}
class: server
always_on: true
services: [transmission, controller]
storage:
  - path: {daemon.download_dir}
    capacity: 1GiB
addresses:
  transmission_rpc: {daemon.url}
"""


def collection(torrent_rel: str) -> str:
    return f"""\
apiVersion: tva/v1
kind: Collection
name: films
items:
  - name: Test film
    torrent: {torrent_rel}
"""


RULE = """\
apiVersion: tva/v1
kind: CustodyRule
name: films
select: {collections: [films]}
min: 1
"""


@dataclass
class SoloFleet:
    remote: Path
    checkout: Path
    daemon: TransmissionDaemon
    infohash: str
    torrent_rel: str
    state_dir: Path
    status_dir: Path

    def commit(self, files: dict[str, str | None], message: str) -> str:
        return commit_files(self.checkout, files, message)

    def controller(self, **overrides: Any) -> Daemon:
        config = DaemonConfig(
            node="solo", repo=str(self.remote), state_dir=str(self.state_dir),
            status_dir=str(self.status_dir), listen="off", host_player=False, poll=0.3,
        )
        for k, v in overrides.items():
            setattr(config, k, v)
        return Daemon(config)


@pytest.fixture
def solo_fleet(
    tmp_path: Path, git_env: None, transmission_daemon: Callable[..., TransmissionDaemon]
) -> Iterator[SoloFleet]:
    tr = transmission_daemon("solo")
    payload_dir = tmp_path / "payload"
    torrent, infohash, data = make_payload_torrent(payload_dir, 256 * 1024, name="film.bin")
    shutil.copy(data, tr.download_dir / "film.bin")  # the data is already there: it completes
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "--quiet", "--bare", "-b", "main", str(remote))
    seed = tmp_path / "seed"
    seed.mkdir()
    git(seed, "init", "--quiet", "-b", "main")
    git(seed, "config", "user.name", "owner")
    git(seed, "config", "user.email", "owner@example.invalid")
    git(seed, "remote", "add", "origin", str(remote))
    (seed / "torrents").mkdir()
    shutil.copy(torrent, seed / "torrents" / "film.torrent")
    git(seed, "add", "torrents/film.torrent")
    commit_files(seed, {
        "fleet.yaml": FLEET,
        "devices/solo.yaml": device("solo", tr),
        "items/films.yaml": collection("torrents/film.torrent"),
    }, "a fleet of one", push=False)
    git(seed, "push", "--quiet", "origin", "main")
    checkout = clone_checkout(remote, tmp_path / "owner", "owner")
    yield SoloFleet(remote, checkout, tr, infohash, "torrents/film.torrent",
                    tmp_path / "state", tmp_path / "statuses")


def wait_for(predicate: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    """Poll until ``predicate()`` is truthy; fail with ``what`` after ``timeout`` seconds."""
    return waiting.wait_for(predicate, timeout, what=what)
