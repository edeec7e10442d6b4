"""Benchmark: what the notifications and the fleet metrics add to a pass, in the same run.

    .venv/bin/python bench/facts.py [--holdings 50000,200000] [--nodes 10] [--repeat 3]

The daemon derives the fleet's open conditions and custody figures (``facts_of``,
controller/planner/alerts.py) from the same planning pass as its plan, so their cost is the
walk over every rule's items and the nodes' conditions. On the synthetic fleet of
``bench/plan.py`` this times, as CPU seconds (median of ``--repeat``), the planning pass with
its plan (``run_pass`` + ``plan_of``) and ``facts_of`` on its result, and prints the ratio.
Goal: facts <= 10% of the pass.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.plan import COPIES, NOW, median_time, write_fleet, write_statuses
from controller.desired import load_fleet
from controller.planner.alerts import facts_of
from controller.planner.context import Context
from controller.planner.core import plan_of, run_pass
from controller.planner.ledger import Ledger
from controller.status.directory import DirectoryStatusTransport


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--holdings", default="50000,200000")
    ap.add_argument("--nodes", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}, {args.nodes} nodes, "
          f"CPU seconds, median of {args.repeat}")
    print(f"{'holdings':>9} {'pass+plan':>10} {'facts':>8} {'facts/pass':>10} {'alerts':>7}")
    for holdings in (int(h) for h in args.holdings.split(",")):
        t_pass, t_facts, alerts = measure(holdings, args.nodes, args.repeat)
        print(f"{holdings:>9} {t_pass:>9.3f}s {t_facts:>7.3f}s {t_facts / t_pass:>10.2f} "
              f"{alerts:>7}", flush=True)


def measure(holdings: int, n_nodes: int, repeat: int) -> tuple[float, float, int]:
    n_items = max(1, holdings // COPIES)
    with tempfile.TemporaryDirectory(prefix="tva-bench-facts-") as tmp:
        fleet_dir, status_dir = Path(tmp) / "fleet", Path(tmp) / "status"
        nodes = write_fleet(fleet_dir, n_items, n_nodes)
        write_statuses(status_dir, nodes, n_items)
        statuses = DirectoryStatusTransport(status_dir).read_all()
        desired = load_fleet(str(fleet_dir)).desired

        def planned() -> tuple[Context, Ledger]:
            ctx, ledger, _ = run_pass(desired, statuses, NOW)
            plan_of(ctx, ledger)
            return ctx, ledger

        t_pass, (ctx, ledger) = median_time(planned, repeat)
        t_facts, facts = median_time(lambda: facts_of(ctx, ledger), repeat)
    return t_pass, t_facts, len(facts.alerts)

if __name__ == "__main__":
    main()
