"""Benchmark: a re-pin against a plain copy over the same link (issue 18).

    .venv/bin/python bench/repin.py [--size-mib 200] [--big] [--holders 1,2] [--small 100] [--skip-peer]
                                    [--version 3.00] [--threads] [--repeat 1] [--only-repin]
                                    [--link-mbit N]

Real nodes of the lab (a transmission-daemon and a tva controller each) at their own addresses
in a private network namespace, one fleet repo; each node's controller runs in a process of its
own, as on a fleet node (``--threads``: all as threads of the lab's process, as the lab tests
run them). ``--version`` says which Transmission every node runs (3.00, 4.1). The nodes share
one loopback, which moves bytes at memory speed; ``--link-mbit`` caps what each node receives at
that many Mbit/s (a home link: 1000, 2500), for the plain copy and the re-pin alike. Reported in
one run:

1. **Plain copy** (the baseline): ``curl`` fetches the item's file from an HTTP server bound to
   the holder's address, to a file on the fetcher's side; median of three.
2. **Re-pin**: ``nas`` holds a ``--size-mib`` item; a commit raises its floor to 2 and ``laptop``
   fetches it (tva's way: web seeds from the holder's controller, the peer path as fallback).
   From two holders (``--holders``): three nodes, ``nas`` and ``seedbox`` hold it, the floor
   goes to 3 and ``laptop`` fetches from both at once.
   Latencies commit -> add, add -> first byte, first byte -> complete; the transfer rate and
   its ratio to the plain copy; the bytes fetched (``downloadedEver``) over the item's size
   (above 1: blocks fetched twice). ``--repeat`` re-pins each size and holder count that many
   times (interleaved). ``--skip-peer`` leaves out the same re-pin over the peer path
   alone (web seeds off), measured for comparison. ``--big`` adds a 1 GiB item.
3. **Node gone**: three nodes, the item on ``nas`` and ``laptop``; ``laptop`` stops; from the
   moment ``seedbox`` sees it gone past grace to the first byte on ``seedbox``.
4. **Many small items**: ``--small`` items of 5 MiB re-pinned from one holder at once, against
   one item of their total size.

Goals (issue 18): transfer rate >= 0.5x the plain copy; add -> first byte <= 3 s median;
gone -> first byte <= 5 s; the small items within 2x the time of the one big item.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controller.daemon.node import NodeRuntime
from controller.lab.fleet import Payload, collection_yaml, rule_yaml
from controller.lab.lab import Lab, NodeSpec, wait
from controller.lab.netns import run_isolated, shape_downlinks
from controller.lab.transmission import TRANSMISSION_3, VERSIONS

MiB = 1 << 20
NAS, LAPTOP, SEEDBOX = (NodeSpec("nas", "server", ["home"]), NodeSpec("laptop", "laptop", ["home"]),
                        NodeSpec("seedbox", "seedbox", ["remote"]))


def plain_copy(lab: Lab, holder: str, fetcher: str, payload: Payload, tmp: Path) -> float:
    """Seconds for curl to copy the payload's file from an HTTP server at the holder's address
    into a file at the fetcher's address (median of three)."""
    src = lab.nodes[holder]
    handler = partial(SimpleHTTPRequestHandler, directory=str(payload.data.parent))
    server = ThreadingHTTPServer((src.ip, 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://{src.ip}:{server.server_address[1]}/{payload.name}"
    times = []
    try:
        for i in range(3):
            out = tmp / f"curl-{i}.bin"
            start = time.monotonic()
            subprocess.run(["curl", "-sS", "--fail", "--interface", lab.nodes[fetcher].ip, "-o",
                            str(out), url], check=True, timeout=600)
            times.append(time.monotonic() - start)
            out.unlink()
    finally:
        server.shutdown()
        server.server_close()
    return statistics.median(times)


def first_byte_and_done(lab: Lab, node: str, infohash: str, timeout: float) -> tuple[float, float]:
    """Monotonic times of the first byte and of completion on ``node`` (polled every 20 ms)."""
    first = wait(lambda: time.monotonic() if (lab.percent(node, infohash) or 0) > 0 else None,
                 timeout, f"the first byte on {node}", interval=0.02)
    done = wait(lambda: time.monotonic() if (lab.percent(node, infohash) or 0) >= 1 else None,
                timeout, f"{node} to complete", interval=0.1)
    return first, done


def added_at(lab: Lab, node: str, infohash: str, timeout: float) -> float:
    return wait(lambda: time.monotonic() if infohash in lab.nodes[node].torrents() else None,
                timeout, f"the add on {node}", interval=0.02)


def one_item(lab: Lab, size: int, *holders: str) -> Payload:
    """Commit one public item of ``size`` bytes, start the lab, and give each of ``holders`` a
    complete copy by hand."""
    item = lab.repo.payload("item.bin", size)
    files = lab.base_files()
    files["items/items.yaml"] = collection_yaml("items", [item], provenance="public")
    lab.repo.commit(files, "one item")
    lab.start()
    for holder in holders:
        lab.seed(holder, item)
    return item


def specs(names: list[NodeSpec], version: str) -> list[NodeSpec]:
    return [NodeSpec(s.name, s.cls, s.labels, version) for s in names]


def repin(root: Path, size: int, webseeds: bool, holders: int = 1, version: str = TRANSMISSION_3,
          processes: bool = True, link_mbit: int = 0) -> dict[str, Any]:
    """nas (and seedbox, for two holders) hold one item; a commit raises the floor by one;
    laptop fetches it."""
    if link_mbit:
        shape_downlinks(Lab.addresses(3), link_mbit)
    if not webseeds:
        NodeRuntime._webseeds = lambda self, action: []  # type: ignore[method-assign]
    nodes = [NAS, LAPTOP] if holders == 1 else [NAS, SEEDBOX, LAPTOP]
    lab = Lab(root, specs(nodes, version), stale_after="20s", grace="60s", processes=processes)
    try:
        item = one_item(lab, size, *(["nas", "seedbox"][:holders]))
        wait(lambda: all(n.passes >= 2 for n in lab.nodes.values()), 60, "two passes everywhere")
        os.sync()  # the payload and its copies written back: neither measurement pays for them
        copy = plain_copy(lab, "nas", "laptop", item, root) if webseeds else None
        os.sync()
        committed = time.monotonic()
        lab.repo.commit({"custody/items.yaml": rule_yaml("items", "items", holders + 1)},
                        "one more copy")
        added = added_at(lab, "laptop", item.infohash, 120)
        first, done = first_byte_and_done(lab, "laptop", item.infohash, 600)
        fetched = lab.nodes["laptop"].torrents()[item.infohash]["downloadedEver"]
        return {"size": size, "holders": holders, "copy": copy, "commit_add": added - committed,
                "fetched": fetched / size,
                "add_first": first - added, "first_done": done - first,
                "rate": size / max(done - first, 1e-6)}
    finally:
        lab.stop()


def gone(root: Path, size: int) -> dict[str, Any]:
    """nas and laptop hold the item; laptop stops; seedbox takes the baton."""
    lab = Lab(root, [NAS, LAPTOP, SEEDBOX], stale_after="4s", grace="8s")
    try:
        item = one_item(lab, size, "nas", "laptop")
        lab.repo.commit({"custody/items.yaml": rule_yaml("items", "items", 2,
                                                         exclude=["seedbox"])},
                        "two copies, not on the seedbox")
        wait(lambda: all(n.daemon and n.daemon.passes >= 2 for n in lab.nodes.values()), 60,
             "two passes everywhere")
        lab.repo.commit({"custody/items.yaml": rule_yaml("items", "items", 2)}, "anywhere")
        lab.stop("laptop")
        seedbox = lab.nodes["seedbox"]
        seen = wait(lambda: time.monotonic() if seedbox.daemon and seedbox.daemon.last and
                    seedbox.daemon.last.view.nodes["laptop"].freshness.value == "gone" else None,
                    120, "the seedbox to see the laptop gone", interval=0.02)
        first, _ = first_byte_and_done(lab, "seedbox", item.infohash, 300)
        return {"gone_first": first - seen}
    finally:
        lab.stop()


def small(root: Path, count: int) -> dict[str, Any]:
    """``count`` items of 5 MiB re-pinned from one holder, against one item of their size."""
    lab = Lab(root, [NAS, LAPTOP], stale_after="20s", grace="60s", processes=True)
    try:
        items = [lab.repo.payload(f"small-{i:03d}.bin", 5 * MiB) for i in range(count)]
        big = lab.repo.payload("big.bin", 5 * MiB * count)
        files = lab.base_files()
        files["items/small.yaml"] = collection_yaml("small", items, provenance="public")
        files["items/big.yaml"] = collection_yaml("big", [big], provenance="public")
        fleet = files["fleet.yaml"] or ""
        files["fleet.yaml"] = fleet.replace("max_new_pins_per_node: 5",
                                            f"max_new_pins_per_node: {count + 1}")
        lab.repo.commit(files, "many small items and one big one")
        lab.start()
        for p in [*items, big]:
            lab.seed("nas", p)
        start = time.monotonic()
        lab.repo.commit({"custody/big.yaml": rule_yaml("big", "big", 2)}, "the big one")
        wait(lambda: (lab.percent("laptop", big.infohash) or 0) >= 1, 900, "the big item")
        one = time.monotonic() - start
        start = time.monotonic()
        lab.repo.commit({"custody/small.yaml": rule_yaml("small", "small", 2)}, "the small ones")
        wait(lambda: all((lab.percent("laptop", p.infohash) or 0) >= 1 for p in items), 1800,
             "every small item")
        return {"one": one, "many": time.monotonic() - start, "count": count}
    finally:
        lab.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=200)
    ap.add_argument("--big", action="store_true", help="also a 1 GiB item")
    ap.add_argument("--holders", default="1,2", help="re-pin from this many holders (1, 2)")
    ap.add_argument("--small", type=int, default=100, help="small items (0: skip)")
    ap.add_argument("--skip-peer", action="store_true", help="no peer-path-only comparison")
    ap.add_argument("--version", default=TRANSMISSION_3, choices=VERSIONS,
                    help="the Transmission every node runs")
    ap.add_argument("--threads", action="store_true",
                    help="controllers as threads of one process (as the lab tests run them)")
    ap.add_argument("--repeat", type=int, default=1, help="re-pins per size and holder count")
    ap.add_argument("--only-repin", action="store_true", help="no node-gone, no small items")
    ap.add_argument("--link-mbit", type=int, default=0,
                    help="cap what each node receives at this many Mbit/s (0: the loopback's speed)")
    ap.add_argument("--root", default="/tmp/tva-bench-repin")
    args = ap.parse_args()
    root = Path(args.root)
    shutil.rmtree(root, ignore_errors=True)
    addresses = Lab.addresses(3)
    sizes = [args.size_mib * MiB] + ([1024 * MiB] if args.big else [])
    counts = [int(n) for n in args.holders.split(",")]
    link = f"{args.link_mbit} Mbit/s per node" if args.link_mbit else "the loopback's speed"
    print(f"Transmission {args.version}, controllers as "
          f"{'threads of one process' if args.threads else 'processes'}, links at {link}",
          flush=True)
    runs = [(s, h, i) for s in sizes for i in range(args.repeat) for h in counts]
    for n, (size, holders, i) in enumerate(runs):
        r = run_isolated(repin, addresses, root / f"repin-{n}-{size}-{holders}", size, True,
                         holders, args.version, not args.threads, args.link_mbit, timeout=3600)
        copy_rate = size / r["copy"]
        print(f"{size // MiB} MiB re-pin from {holders} holder(s): commit->add {r['commit_add']:.2f}s, add->first byte "
              f"{r['add_first']:.2f}s, first byte->done {r['first_done']:.2f}s, "
              f"{r['rate'] / MiB:.1f} MiB/s; plain copy {copy_rate / MiB:.1f} MiB/s; "
              f"ratio {r['rate'] / copy_rate:.2f}; fetched {r['fetched']:.2f}x the item",
              flush=True)
        if not args.skip_peer and size == sizes[0] and holders == counts[0] and i == 0:
            p = run_isolated(repin, addresses, root / f"peer-{size}", size, False, 1,
                             args.version, not args.threads, args.link_mbit, timeout=3600)
            print(f"{size // MiB} MiB over the peer path alone: add->first byte "
                  f"{p['add_first']:.2f}s, {p['rate'] / MiB:.1f} MiB/s; ratio "
                  f"{p['rate'] / copy_rate:.2f}", flush=True)
    if args.only_repin:
        return
    g = run_isolated(gone, addresses, root / "gone", 20 * MiB, timeout=1800)
    print(f"node seen gone past grace -> first byte elsewhere: {g['gone_first']:.2f}s", flush=True)
    if args.small:
        s = run_isolated(small, addresses, root / "small", args.small, timeout=3600)
        print(f"{s['count']} x 5 MiB from one holder: {s['many']:.1f}s; one item of their size: "
              f"{s['one']:.1f}s; ratio {s['many'] / s['one']:.2f}", flush=True)


if __name__ == "__main__":
    main()
