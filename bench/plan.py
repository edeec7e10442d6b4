"""Benchmark: planning a synthetic fleet against loading the plan's inputs, in the same run.

    .venv/bin/python bench/plan.py [--holdings 1000,50000,500000] [--nodes 10] [--repeat 3]

For each size, builds a fleet repo on disk (10 devices; items in collections of 5,000 (the loader caps a file at 1 MiB);
one custody rule over everything, min 3 max 6 with prune; a watchlist) and one NodeStatus JSON
file per node (each item held by 5 nodes on average: mostly complete seeds, some downloads in
progress, a few stalled; one node stale, one gone), each as a steady fleet reports it: a safe
Transmission session (DHT, PEX and LPD off) and tracker URLs with the node's token (redacted,
as statuses carry them), so the plan holds only the fleet's real work. Then it times, each as the median of
``--repeat`` runs:

- *load*: what a controller does to get the inputs: parse every NodeStatus JSON file
  (``DirectoryStatusTransport.read_all``) and load the desired state (``load_fleet``: YAML,
  checks);
- *view*: freshness of every node (``build_fleet_view``), shown on its own: ``plan`` does it too;
- *plan*: ``plan(desired, statuses, now)`` for the whole fleet.

Times are CPU time of this process (``time.process_time``), so that other work on a shared
machine does not distort the ratios; the inputs are read from the page cache.

Goals (issue 4): plan <= 2x load at 500k holdings; 10x the input costs <= 12x the time. Both
ratios are printed, and the plan is also compared with the status parse alone (the part of
the load that grows with holdings).
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from controller.desired import load_fleet
from controller.planner import build_fleet_view, plan
from controller.status.directory import DirectoryStatusTransport
from schemas.observed import (
    NodeStatus,
    SessionStatus,
    StorageStatus,
    TorrentState,
    TorrentStatus,
    TrackerResult,
    TransmissionStatus,
)

NOW = datetime(2025, 6, 1, 20, 0, tzinfo=UTC)
PER_COLLECTION = 5_000
COPIES = 5
GiB = 1 << 30


def key(i: int) -> str:
    return hashlib.sha1(f"bench-item-{i}".encode()).hexdigest()


def write_fleet(root: Path, n_items: int, n_nodes: int) -> list[str]:
    nodes = [f"node{i:02d}" for i in range(n_nodes)]
    (root / "devices").mkdir(parents=True)
    (root / "items").mkdir()
    (root / "custody").mkdir()
    (root / "watchlists").mkdir()
    (root / "fleet.yaml").write_text(
        "apiVersion: tva/v1\nkind: Fleet\nname: bench\npolicy:\n"
        "  custody: {prune: true, max_new_pins_per_node: 50, reserve: 10GiB}\n")
    for i, name in enumerate(nodes):
        cls = "server" if i < 4 else ("desktop" if i < 7 else "laptop")
        player = "\nservices: [transmission, player, controller]" if i == 7 else ""
        (root / "devices" / f"{name}.yaml").write_text(
            f"apiVersion: tva/v1\nkind: Device\nname: {name}\nclass: {cls}\nalways_on: {i < 4}\n"
            f"labels: [home]{player}\nstorage: [{{path: /srv/{name}, capacity: 64TiB}}]\n"
            f"addresses: {{controller_api: 'http://{name}.lan:8700', peer: '{name}.lan:51413'}}\n")
    collections = []
    for c in range(0, n_items, PER_COLLECTION):
        cname = f"c{c // PER_COLLECTION:03d}"
        collections.append(cname)
        lines = [f"apiVersion: tva/v1\nkind: Collection\nname: {cname}\nprovenance: fleet\nitems:"]
        for i in range(c, min(c + PER_COLLECTION, n_items)):
            lines.append(f"  - {{name: 'item {i}', infohash: {key(i)}, size: {1 + i % 4}GiB, "
                         f"episode: {i}}}")
        (root / "items" / f"{cname}.yaml").write_text("\n".join(lines) + "\n")
    (root / "custody" / "all.yaml").write_text(
        "apiVersion: tva/v1\nkind: CustodyRule\nname: all\n"
        f"select: {{collections: [{', '.join(collections)}]}}\nmin: 3\nmax: 6\n")
    (root / "watchlists" / "shows.yaml").write_text(
        "apiVersion: tva/v1\nkind: Watchlist\nname: shows\ndevice: node07\n"
        "entries: [{show: bench, collection: c000, keep_next: 5}]\n")
    return nodes


def write_statuses(root: Path, nodes: list[str], n_items: int) -> int:
    root.mkdir(parents=True)
    per_node: dict[str, list[TorrentStatus]] = {n: [] for n in nodes}
    holdings = 0
    for i in range(n_items):
        k = key(i)
        h = int(k[:8], 16)
        first = h % len(nodes)
        copies = COPIES - 1 + (h >> 8) % 3  # 4..6 copies: some items over max, most fine
        for j in range(copies):
            node = nodes[(first + j * 3) % len(nodes)]
            roll = (h >> (12 + j)) % 100
            pct = 1.0 if roll < 95 else (0.6 if roll < 99 else 0.3)
            stalled = roll == 99
            per_node[node].append(TorrentStatus(
                infohash=k, name=f"item {i}", size=(1 + i % 4) * GiB, percent_done=pct,
                state=TorrentState.seeding if pct >= 1 else TorrentState.downloading,
                labels=["tva", "tva:custody/all"], download_dir=f"/srv/{node}",
                peers_connected=0 if stalled else 3, peers_sending=0 if stalled else 1,
                rate_download=0 if stalled else 100_000,
                last_activity=NOW - (timedelta(hours=9) if stalled else timedelta(minutes=3)),
                done_date=NOW - timedelta(days=30) if pct >= 1 else None,
                added_date=NOW - timedelta(days=31),
                # Tokened, as the actuator writes it and the status redacts it: the URL without
                # the token is the stale one the privacy step sets again.
                trackers=[TrackerResult(announce=f"http://{node}.lan:8700/announce/<token>",
                                        last_announce_ok=True, last_announce_result="Success")],
            ))
            holdings += 1
    transport = DirectoryStatusTransport(root)
    for idx, node in enumerate(nodes):
        age = timedelta(minutes=30) if idx == 8 else timedelta(hours=3) if idx == 9 else timedelta(minutes=1)
        transport.publish(NodeStatus(
            node=node, observed_at=NOW - age, controller_version="bench",
            transmission=TransmissionStatus(
                reachable=True, torrents=per_node[node],
                session=SessionStatus(dht=False, pex=False, lpd=False)),
            storage=[StorageStatus(path=f"/srv/{node}", free=60 << 40, total=64 << 40)],
        ))
    return holdings


def median_time(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times = []
    result = None
    for _ in range(repeat):
        start = time.process_time()
        result = fn()
        times.append(time.process_time() - start)
    return statistics.median(times), result


def bench(holdings: int, n_nodes: int, repeat: int) -> dict[str, Any]:
    n_items = max(1, holdings // COPIES)
    with tempfile.TemporaryDirectory(prefix="tva-bench-plan-") as tmp:
        fleet_dir, status_dir = Path(tmp) / "fleet", Path(tmp) / "status"
        nodes = write_fleet(fleet_dir, n_items, n_nodes)
        real = write_statuses(status_dir, nodes, n_items)
        transport = DirectoryStatusTransport(status_dir)

        t_status, statuses = median_time(transport.read_all, repeat)
        t_desired, loaded = median_time(lambda: load_fleet(str(fleet_dir)), repeat)
        desired = loaded.desired
        t_view, _ = median_time(lambda: build_fleet_view(desired, statuses, NOW), repeat)
        t_plan, p = median_time(lambda: plan(desired, statuses, NOW), repeat)
    load = t_status + t_desired
    return {
        "holdings": real, "items": n_items, "load_status": t_status, "load_desired": t_desired,
        "view": t_view, "load": load, "plan": t_plan, "actions": len(p.actions),
        "ratio": t_plan / load, "ratio_status": t_plan / t_status,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--holdings", default="1000,50000,500000")
    ap.add_argument("--nodes", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    sizes = [int(s) for s in args.holdings.split(",")]
    print(f"python {platform.python_version()} on {platform.machine()}, {args.nodes} nodes, "
          f"CPU seconds, median of {args.repeat}")
    print(f"{'holdings':>9} {'items':>7} {'status':>8} {'desired':>8} {'view':>6} {'load':>8} "
          f"{'plan':>8} {'plan/load':>9} {'plan/status':>11} {'actions':>7}")
    rows = []
    for n in sizes:
        r = bench(n, args.nodes, args.repeat)
        rows.append(r)
        print(f"{r['holdings']:>9} {r['items']:>7} {r['load_status']:>7.3f}s {r['load_desired']:>7.3f}s "
              f"{r['view']:>5.3f}s {r['load']:>7.3f}s {r['plan']:>7.3f}s {r['ratio']:>9.2f} "
              f"{r['ratio_status']:>11.2f} {r['actions']:>7}", flush=True)
    for a, b in pairwise(rows):
        grow = b["holdings"] / a["holdings"]
        print(f"{a['holdings']} -> {b['holdings']} holdings (x{grow:.0f}): plan time x"
              f"{b['plan'] / a['plan']:.1f}, load time x{b['load'] / a['load']:.1f}")


if __name__ == "__main__":
    main()
