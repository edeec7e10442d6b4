"""The review tests' fleet (tests/review/fleet) and observed state, in a real git repo.

Every node is fresh at ``NOW`` and holds complete, tva-labelled copies, so BASE plans nothing:
whatever a review shows comes from the change under test. ``fleet_repo`` commits the fleet as
BASE; ``change`` commits file edits on top (a PR's head).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

from controller.status import DirectoryStatusTransport
from schemas.observed import (
    NodeStatus,
    PlayerStatus,
    SessionStatus,
    StorageStatus,
    TorrentState,
    TorrentStatus,
    TransmissionStatus,
    VpnState,
)
from tests.support.gitrepo import commit_files, git

NOW = datetime(2025, 6, 1, 20, 0, tzinfo=UTC)
FLEET = Path(__file__).resolve().parent / "fleet"
GiB = 1 << 30
MiB = 1 << 20

ITEMS: dict[str, tuple[str, int]] = {
    "Alpha": ("a000000000000000000000000000000000000001", GiB),
    "Bravo": ("a000000000000000000000000000000000000002", 2 * GiB),
    "Charlie": ("a000000000000000000000000000000000000003", GiB),
    "Holiday": ("b000000000000000000000000000000000000001", 4 * GiB),
    "Wedding": ("b000000000000000000000000000000000000002", 8 * GiB),
    "Secret One": ("c000000000000000000000000000000000000001", GiB),
    "Secret Two": ("c000000000000000000000000000000000000002", GiB),
    "Show E1": ("d000000000000000000000000000000000000001", 500 * MiB),
    "Show E2": ("d000000000000000000000000000000000000002", 500 * MiB),
    "Show E3": ("d000000000000000000000000000000000000003", 500 * MiB),
    "Show E4": ("d000000000000000000000000000000000000004", 500 * MiB),
}
HOLDINGS: dict[str, list[str]] = {
    "nas": ["Alpha", "Bravo", "Charlie", "Holiday", "Wedding", "Secret One", "Secret Two",
            "Show E1", "Show E2", "Show E3", "Show E4"],
    "tv": ["Alpha", "Holiday", "Wedding", "Show E1", "Show E2", "Show E3"],
    "laptop": ["Bravo", "Secret One"],
    "seedbox": ["Alpha"],
}
FREE: dict[str, int] = {"nas": 3072 * GiB, "tv": 800 * GiB, "laptop": 300 * GiB,
                        "seedbox": 900 * GiB}
ROOTS = {"nas": "/srv/media", "tv": "/srv/tv-media", "laptop": "/home/sam/Media",
         "seedbox": "/data"}


def key(name: str) -> str:
    return ITEMS[name][0]


def torrent(node: str, name: str) -> TorrentStatus:
    k, size = ITEMS[name]
    return TorrentStatus(
        infohash=k, name=name, size=size, percent_done=1.0, state=TorrentState.seeding,
        labels=["tva"], download_dir=ROOTS[node], last_activity=NOW - timedelta(minutes=5),
        done_date=NOW - timedelta(days=5), added_date=NOW - timedelta(days=6),
    )


def node_status(node: str, holdings: list[str], free: int) -> NodeStatus:
    player = None
    if node in ("tv", "laptop"):
        player = PlayerStatus(reachable=True, idle=True, options={"volume": 70},
                              watched=[key("Show E1")] if node == "tv" else [])
    return NodeStatus(
        node=node, observed_at=NOW - timedelta(minutes=1), controller_version="test",
        transmission=TransmissionStatus(reachable=True, rpc_version=16,
                                        torrents=[torrent(node, n) for n in holdings],
                                        session=SessionStatus(dht=False, pex=False, lpd=False)),
        storage=[StorageStatus(path=ROOTS[node], free=free, total=free * 2)],
        player=player,
        vpn=[VpnState(profile="home-wg", interface="wg-home", up=True)] if node == "laptop" else [],
    )


def statuses(*, free: Mapping[str, int] | None = None,
             holdings: Mapping[str, list[str]] | None = None) -> list[NodeStatus]:
    free = {**FREE, **(free or {})}
    held = {**HOLDINGS, **(holdings or {})}
    return [node_status(n, held[n], free[n]) for n in sorted(held)]


def write_statuses(directory: Path, items: list[NodeStatus]) -> Path:
    transport = DirectoryStatusTransport(directory)
    for s in items:
        transport.publish(s)
    return directory


def fleet_repo(path: Path, source: Path = FLEET) -> tuple[Path, str]:
    """A git repo at ``path`` whose one commit (on main) is the fleet; returns (path, sha)."""
    shutil.copytree(source, path)
    git(path, "init", "--quiet", "--initial-branch=main")
    git(path, "config", "user.name", "fleet-owner")
    git(path, "config", "user.email", "owner@example.invalid")
    git(path, "add", "--all")
    git(path, "commit", "--quiet", "--no-gpg-sign", "-m", "The fleet")
    return path, git(path, "rev-parse", "HEAD")


def change(repo: Path, files: Mapping[str, str | None], message: str = "A change") -> str:
    """Commit edits (text, or None to delete) on top of the checkout; the new commit id."""
    return commit_files(repo, files, message, push=False)


def edit(rel: str, old: str, new: str) -> dict[str, str]:
    """``rel`` of the test fleet with ``old`` replaced by ``new`` (which must be there)."""
    text = (FLEET / rel).read_text()
    assert old in text, f"{old!r} is not in {rel}"
    return {rel: text.replace(old, new)}
