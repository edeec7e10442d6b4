"""Benchmark: how fast a commit becomes an action, and how quiet an idle daemon is.

    .venv/bin/python bench/converge.py [--rounds 20] [--torrents 10000] [--idle 60]

1. **Commit to action.** A real transmission-daemon, a fleet repo as a local checkout followed by
   ``tva run --local`` (watchfiles on the checkout's git directory). Each round commits one new
   item under a custody rule for this node and measures the time until the torrent is visible in
   Transmission. Baseline, measured in the same run against the same daemon: adding the same kind
   of torrent directly over RPC and seeing it listed. Reports the median of ``--rounds`` and the
   ratio to the baseline (goal: median <= 2 s).
2. **Idle CPU.** The same daemon then holds ``--torrents`` torrents (made by the benchmark, added
   paused); after the daemon's first full pass, the process's CPU time over ``--idle`` seconds of
   wall time is measured (goal: CPU seconds / wall seconds <= 0.01). Baseline: the same window
   with no tva daemon running (the benchmark's own idle cost).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.observe import add_torrents
from controller.daemon.daemon import Daemon, DaemonConfig
from controller.lab.fleet import git
from controller.lab.transmission import TransmissionDaemon, make_payload_torrent
from controller.waiting import wait_for


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def fleet(repo: Path, tr: TransmissionDaemon) -> None:
    (repo / "fleet.yaml").write_text(
        "apiVersion: tva/v1\nkind: Fleet\nname: bench\n"
        "policy: {freshness: {stale_after: 10m, grace: 2h}}\n")
    (repo / "devices").mkdir()
    (repo / "devices/node.yaml").write_text(
        f"apiVersion: tva/v1\nkind: Device\nname: node\nclass: server\nalways_on: true\n"
        f"storage: [{{path: {tr.download_dir}, capacity: 1TiB}}]\n"
        f"addresses: {{transmission_rpc: {tr.url}}}\n")
    (repo / "custody").mkdir()
    (repo / "custody/bench.yaml").write_text(
        "apiVersion: tva/v1\nkind: CustodyRule\nname: bench\nselect: {collections: [bench]}\nmin: 1\n")


def collection(payloads: list[tuple[str, str]]) -> str:
    items = "\n".join(f"  - name: {name}\n    torrent: {rel}" for name, rel in payloads) or "  []"
    head = "apiVersion: tva/v1\nkind: Collection\nname: bench\nitems:\n"
    return head + items + "\n" if payloads else "apiVersion: tva/v1\nkind: Collection\nname: bench\nitems: []\n"


def listed(client: Any, infohash: str) -> Callable[[], bool]:
    return lambda: bool(client.get_torrents([infohash], arguments=["hashString"]))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--torrents", type=int, default=10_000)
    ap.add_argument("--idle", type=float, default=60.0)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="tva-bench-converge-"))
    tr = TransmissionDaemon(root=root / "tr").start()
    try:
        repo = root / "fleet"
        repo.mkdir()
        git(repo, "init", "-q", "-b", "main")
        fleet(repo, tr)
        (repo / "items").mkdir()
        (repo / "torrents").mkdir()
        (repo / "items/bench.yaml").write_text(collection([]))
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", "fleet")
        daemon = Daemon(DaemonConfig(node="node", repo=str(repo), state_dir=str(root / "state"),
                                     local=True, status_dir=str(root / "status"), listen="off",
                                     host_player=False))
        daemon.start()
        wait_for(lambda: daemon.passes >= 1, 60, what="first pass")
        client = tr.client()

        # Baseline: a direct RPC add of a comparable torrent, until it is listed.
        base: list[float] = []
        for i in range(args.rounds):
            torrent, infohash, _ = make_payload_torrent(root / "direct", 64 * 1024, name=f"direct-{i}.bin")
            t0 = time.perf_counter()
            client.add_torrent(torrent.read_bytes(), paused=True)
            wait_for(listed(client, infohash), 30, 0.005)
            base.append(time.perf_counter() - t0)

        # Commit -> torrent visible in Transmission, through tva run --local.
        rounds: list[float] = []
        payloads: list[tuple[str, str]] = []
        for i in range(args.rounds):
            torrent, infohash, _ = make_payload_torrent(root / "payloads", 64 * 1024, name=f"item-{i}.bin")
            rel = f"torrents/item-{i}.torrent"
            shutil.copy(torrent, repo / rel)
            payloads.append((f"item-{i}", rel))
            (repo / "items/bench.yaml").write_text(collection(payloads))
            git(repo, "add", "-A")
            t0 = time.perf_counter()
            git(repo, "commit", "-qm", f"item {i}")
            wait_for(listed(client, infohash), 60, 0.005)
            rounds.append(time.perf_counter() - t0)
        med, med_base = statistics.median(rounds), statistics.median(base)
        print(f"commit -> torrent in Transmission: median {med:.3f} s over {args.rounds} rounds "
              f"(min {min(rounds):.3f}, max {max(rounds):.3f}); direct RPC add: median {med_base:.3f} s; "
              f"ratio {med / med_base:.1f}x; goal median <= 2 s: {'met' if med <= 2 else 'MISSED'}")

        # Idle: many torrents, nothing to do.
        print(f"adding {args.torrents} paused torrents ...", file=sys.stderr)
        add_torrents(tr, args.torrents)
        # As bench/observe.py does: a restart makes the daemon keep its resume data instead of
        # queueing 10,000 data checks, i.e. a daemon that has held these torrents for a while.
        tr.stop()
        tr.start()
        client = tr.client()
        daemon.wakeup.notify("bench")
        before = daemon.passes
        wait_for(lambda: daemon.passes > before, 120, what="a pass over the new torrents")
        time.sleep(5)  # let that pass's publish and logging settle
        c0, w0 = cpu(), time.monotonic()
        time.sleep(args.idle)
        busy = (cpu() - c0) / (time.monotonic() - w0)
        daemon.stop()
        c0, w0 = cpu(), time.monotonic()
        time.sleep(min(args.idle, 10))
        floor = (cpu() - c0) / (time.monotonic() - w0)
        print(f"idle daemon over {args.torrents} torrents: {busy:.4f} CPU s per wall s "
              f"(same process without the daemon: {floor:.4f}); goal <= 0.01: "
              f"{'met' if busy <= 0.01 else 'MISSED'}")
    finally:
        tr.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
