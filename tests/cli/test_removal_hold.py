"""``tva plan`` on a commit that would remove more copies than the revision's budget: the real
CLI shows the hold, the budget and how to acknowledge it; acknowledged, the removals come back,
at most ``per_pass`` per node."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import yaml

from controller.desired import load_fleet
from tests.planner.harness import node_status

CASES = Path(__file__).resolve().parents[1] / "planner" / "cases"
TVA = Path(sys.executable).parent / "tva"
NOW = "2025-06-01T20:00:00+00:00"


def fleet_from_case(name: str, tmp_path: Path) -> tuple[Path, Path]:
    case = yaml.safe_load((CASES / f"{name}.yaml").read_text())
    fleet = tmp_path / name
    shutil.copytree(CASES / "_fleet", fleet)
    for rel, content in case["files"].items():
        (fleet / rel).write_text(content)
    desired = load_fleet(str(fleet)).desired
    statuses = tmp_path / f"{name}-statuses"
    statuses.mkdir()
    now = datetime.fromisoformat(NOW)
    for node, spec in case["nodes"].items():
        (statuses / f"{node}.json").write_text(node_status(desired, node, spec, now).model_dump_json())
    return fleet, statuses


def plan(fleet: Path, statuses: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(TVA), "plan", str(fleet), "--all", "--status", str(statuses), "--now", NOW],
                          capture_output=True, text=True, timeout=120, check=False, env={"COLUMNS": "400"})


def test_a_removal_over_budget_is_held_until_acknowledged(tmp_path: Path) -> None:
    fleet, statuses = fleet_from_case("removal-hold", tmp_path)
    held = plan(fleet, statuses)
    assert "Traceback" not in held.stderr
    assert "removal-hold" in held.stdout
    assert "would remove 6 copies" in held.stdout and "budget of 4 per revision" in held.stdout
    assert "policy.removals.acknowledge: 6" in held.stdout
    assert "remove-data" not in held.stdout

    text = (fleet / "fleet.yaml").read_text().replace("per_revision: 4}", "per_revision: 4, acknowledge: 6}")
    (fleet / "fleet.yaml").write_text(text)
    acknowledged = plan(fleet, statuses)
    assert "removal-hold" not in acknowledged.stdout
    # One per node this pass, on the nodes that come and go first (their copies go first).
    assert "2 actions (2 remove-data) on 2 nodes" in acknowledged.stdout
    assert "4 deferred to later passes" in acknowledged.stdout
