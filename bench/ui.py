"""Benchmark: the dashboard's custody page at 50,000 holdings against computing the same plan,
in the same run.

    .venv/bin/python bench/ui.py [--holdings 50000] [--nodes 10] [--repeat 5]

The fleet and statuses are bench/plan.py's (10 devices, each item held by about 5 nodes, one
node stale, one gone, one custody rule over everything; a safe Transmission session and tokened
tracker URLs, as a steady fleet reports). Times, each the median of
``--repeat`` runs, in CPU seconds of this process (``time.process_time``, all threads):

- *plan*: ``plan(desired, statuses, now)`` for the whole fleet (what every pass computes);
- *snapshot*: the dashboard's data for one pass (``build_snapshot``: one planning pass plus the
  custody, reaper and fleet views); the app builds it once per pass, on the first request;
- *custody page*: ``GET /ui/custody`` over HTTP (in-process client, a session cookie) with the
  snapshot cached: filter and sort every item, render one page of 50 rows;
- *custody page, first*: the same request right after a pass (snapshot built, then rendered);
- *item page*: ``GET /ui/item/<key>``.

Goal (issue 16): a page renders in well under a second at 50,000 holdings; the ratio to the
plan time is printed so the figure travels across machines.
"""

from __future__ import annotations

import argparse
import platform
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi import FastAPI
from fastapi.testclient import TestClient

from bench.plan import COPIES, NOW, key, write_fleet, write_statuses
from controller.dashboard import Inputs, build_snapshot, install_dashboard
from controller.desired import load_fleet
from controller.planner import plan
from controller.status.directory import DirectoryStatusTransport

TOKEN = "bench-dashboard-token"


class Source:
    def __init__(self, inputs: Inputs) -> None:
        self.inputs = inputs
        self.version = 0

    def dashboard_version(self) -> int:
        return self.version

    def dashboard_inputs(self) -> Inputs | None:
        return self.inputs

    def dashboard_secrets(self) -> Sequence[str]:
        return ()

    def dashboard_file(self, path: str) -> str | None:
        return None


def median_time(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        start = time.process_time()
        result = fn()
        times.append(time.process_time() - start)
    return statistics.median(times), result


def bench(holdings: int, n_nodes: int, repeat: int) -> dict[str, Any]:
    n_items = max(1, holdings // COPIES)
    with tempfile.TemporaryDirectory(prefix="tva-bench-ui-") as tmp:
        fleet_dir, status_dir = Path(tmp) / "fleet", Path(tmp) / "status"
        nodes = write_fleet(fleet_dir, n_items, n_nodes)
        real = write_statuses(status_dir, nodes, n_items)
        statuses = DirectoryStatusTransport(status_dir).read_all()
        desired = load_fleet(str(fleet_dir)).desired
    inputs = Inputs(node=nodes[0], desired=desired, statuses=statuses, now=NOW)
    t_plan, p = median_time(lambda: plan(desired, statuses, NOW), repeat)
    t_snap, _ = median_time(lambda: build_snapshot(inputs), repeat)

    source = Source(inputs)
    app = FastAPI()
    install_dashboard(app, source, lambda: TOKEN)
    client = TestClient(app)
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/ui/login").text)
    assert csrf is not None
    client.post("/ui/login", data={"csrf": csrf.group(1), "token": TOKEN})

    def get(path: str) -> str:
        r = client.get(path)
        assert r.status_code == 200, (path, r.status_code)
        return str(r.text)

    def first() -> str:
        source.version += 1  # a new pass: the snapshot is built again
        return get("/ui/custody")

    t_first, _ = median_time(first, repeat)
    t_page, html = median_time(lambda: get("/ui/custody"), repeat)
    t_below, _ = median_time(lambda: get("/ui/custody?state=below-floor&page=3"), repeat)
    t_item, _ = median_time(lambda: get(f"/ui/item/{key(7)}"), repeat)
    assert "page 1 of" in html
    client.close()
    return {"holdings": real, "items": n_items, "actions": len(p.actions), "plan": t_plan, "snapshot": t_snap,
            "first": t_first, "page": t_page, "below": t_below, "item": t_item}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--holdings", default="50000")
    ap.add_argument("--nodes", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}, {args.nodes} nodes, "
          f"CPU seconds, median of {args.repeat}")
    print(f"{'holdings':>9} {'items':>7} {'plan':>7} {'snapshot':>9} {'page':>7} {'page/plan':>9} "
          f"{'first':>7} {'first/plan':>10} {'filtered':>9} {'item':>7} {'actions':>7}")
    for n in (int(s) for s in args.holdings.split(",")):
        r = bench(n, args.nodes, args.repeat)
        print(f"{r['holdings']:>9} {r['items']:>7} {r['plan']:>6.3f}s {r['snapshot']:>8.3f}s "
              f"{r['page']:>6.3f}s {r['page'] / r['plan']:>9.3f} {r['first']:>6.3f}s "
              f"{r['first'] / r['plan']:>10.2f} {r['below']:>8.3f}s {r['item']:>6.3f}s {r['actions']:>7}",
              flush=True)


if __name__ == "__main__":
    main()
