"""``tva plan`` and ``tva fleet ...`` on the reference fleet and its sample statuses."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from controller.cli import fleet as fleet_cmd
from controller.cli import plan as plan_cmd
from controller.errors import PermanentError
from controller.status.directory import DirectoryStatusTransport
from schemas.journal import JournalEntry
from schemas.observed import NodeStatus
from schemas.plan import Plan
from tests.cli.support import tva
from tests.conftest import REFERENCE_FLEET, REPO_ROOT

STATUS = REFERENCE_FLEET / ".status"
TVA = Path(sys.executable).parent / "tva"


def _run_tva(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(TVA), *args], capture_output=True, text=True, cwd=REPO_ROOT,
                          timeout=120)


def test_tva_plan_reference_fleet_json_is_a_valid_plan() -> None:
    proc = _run_tva("plan", "fleet-state", "--all", "--status", "fleet-state/.status", "--json")
    assert proc.returncode == 2, proc.stderr
    plan = Plan.model_validate_json(proc.stdout)
    assert plan.nodes == ["laptop", "nas", "seedbox", "tv"]
    assert plan.actions and plan.summary.actions == len(plan.actions)
    ids = {a.id for a in plan.actions}
    assert "tv/player-set/volume" in ids
    assert any(a.startswith("tv/add/") for a in ids)
    assert not any(a.node == "laptop" for a in plan.actions), "the laptop is stale: no actions"
    assert "Traceback" not in proc.stderr


def test_plan_for_one_node_and_markdown(capsys: pytest.CaptureFixture[str]) -> None:
    rc = plan_cmd.run(str(REFERENCE_FLEET), node="tv", status_dir=str(STATUS), markdown=True)
    out = capsys.readouterr().out
    assert rc == 2
    assert "| node | kind | target | why |" in out
    rows = [line for line in out.splitlines() if line.startswith("| tv ")]
    assert rows
    assert not [line for line in out.splitlines() if line.startswith(("| seedbox ", "| nas "))]
    assert "**remove-data**" in out


def test_human_output_groups_actions_by_node(capsys: pytest.CaptureFixture[str]) -> None:
    rc = plan_cmd.run(str(REFERENCE_FLEET), all_nodes=True, status_dir=str(STATUS))
    captured = capsys.readouterr()
    assert rc == 2
    assert "Duties" in captured.out and "tv:" in captured.out and "seedbox:" in captured.out
    assert "Plan:" in captured.out
    assert "planned as of the newest status" in captured.err


def test_no_changes_exits_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Apply the reference plan to the statuses (by hand: the added copies complete, removed
    ones go, the option is set) and the next plan has nothing to do."""
    from controller.cli.inputs import load_inputs
    from controller.planner import plan
    from tests.planner.harness import simulate

    inputs = load_inputs(str(REFERENCE_FLEET), status_dir=str(STATUS))
    statuses = {s.node: s for s in inputs.statuses}
    journal: list[JournalEntry] = []
    for _ in range(4):
        p = plan(inputs.desired, list(statuses.values()), inputs.now, journal=journal)
        if not p.actions:
            break
        statuses, journal = simulate(inputs.desired, p, statuses, journal, inputs.now)
    status_dir = tmp_path / "status"
    transport = DirectoryStatusTransport(status_dir)
    for st in statuses.values():
        transport.publish(st)
    rc = plan_cmd.run(str(REFERENCE_FLEET), status_dir=str(status_dir), as_json=True,
                      now=inputs.now.isoformat(), journal=journal)
    out = capsys.readouterr().out
    assert rc == 0, out
    assert json.loads(out)["actions"] == []


def test_transport_object_gives_the_same_plan(capsys: pytest.CaptureFixture[str]) -> None:
    class Frozen:
        def read_all(self) -> list[NodeStatus]:
            return DirectoryStatusTransport(STATUS).read_all()

    now = "2025-06-01T19:59:00Z"
    assert plan_cmd.run(str(REFERENCE_FLEET), status_dir=str(STATUS), as_json=True, now=now) == 2
    from_dir = json.loads(capsys.readouterr().out)
    assert plan_cmd.run(str(REFERENCE_FLEET), transport=Frozen(), as_json=True, now=now) == 2
    assert json.loads(capsys.readouterr().out) == from_dir


def test_errors_exit_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert tva("plan", str(REFERENCE_FLEET), "--node", "toaster", "--status", str(STATUS)) == 1
    assert "not a device" in capsys.readouterr().err
    assert tva("plan", str(REFERENCE_FLEET), "--status", str(STATUS), "--now", "yesterday") == 1
    assert "ISO 8601" in capsys.readouterr().err
    broken = tmp_path / "fleet"
    shutil.copytree(REFERENCE_FLEET, broken)
    (broken / "custody" / "films.yaml").write_text("apiVersion: tva/v1\nkind: CustodyRule\nname: films\n")
    assert tva("plan", str(broken), "--status", str(STATUS)) == 1
    assert "films.yaml" in capsys.readouterr().err


def test_without_status_every_node_is_unknown(capsys: pytest.CaptureFixture[str]) -> None:
    rc = plan_cmd.run(str(REFERENCE_FLEET), as_json=True, now="2025-06-01T20:00:00Z")
    captured = capsys.readouterr()
    assert rc == 0
    assert "every node is unknown" in captured.err
    warnings = {w["code"] for w in json.loads(captured.out)["warnings"]}
    assert "floor-unreachable" in warnings


def _view(capsys: pytest.CaptureFixture[str], view: str, **kw: Any) -> dict[str, Any]:
    rc = fleet_cmd.run(view, str(REFERENCE_FLEET), status_dir=str(STATUS), as_json=True, **kw)
    assert rc == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


def test_fleet_duties_view(capsys: pytest.CaptureFixture[str]) -> None:
    data = _view(capsys, "duties")
    duties = {d["duty"]: d for d in data["duties"]}
    assert duties["public_swarm_face"]["nodes"] == ["seedbox"]
    assert "pinned" in duties["acquirer"]["reason"]
    assert data["nodes"]["laptop"] == "stale"


def test_fleet_custody_view(capsys: pytest.CaptureFixture[str]) -> None:
    data = _view(capsys, "custody")
    rows = {(r["rule"], r["name"]): r for r in data["rows"]}
    wedding = rows[("home-videos", "Wedding")]
    assert wedding["state"] == "below-floor" and wedding["counted"] == ["nas"]
    assert wedding["away"] == ["laptop"] and any(a.startswith("tv/add/") for a in wedding["actions"])
    holiday = rows[("home-videos", "Holiday 2023")]
    assert holiday["state"] == "waiting" and holiday["actions"] == []
    one = _view(capsys, "custody", item="Sintel")
    assert [r["name"] for r in one["rows"]] == ["Sintel"]


def test_fleet_reaper_view(capsys: pytest.CaptureFixture[str]) -> None:
    data = _view(capsys, "reaper")
    assert data["counts"].get("stalled") == 1
    stalled = [r for r in data["rows"] if r["health"] == "stalled"]
    assert stalled[0]["node"] == "seedbox" and stalled[0]["cause"] == "stalled"
    assert any("/reannounce/" in a for a in stalled[0]["actions"])


def test_fleet_peers_view(capsys: pytest.CaptureFixture[str]) -> None:
    data = _view(capsys, "peers", item="Sintel", node="laptop")
    holders = {p["node"] for p in data["peers"]}
    assert holders == {"nas", "tv", "seedbox"}
    assert data["item"]["provenance"] == "public"
    assert any("re-search: allowed" in g for g in data["gates"])
    # Sintel is public: the seedbox (the public face) fetches it, the rest from the fleet.
    assert any(g.startswith("public: seedbox fetches it from the public swarm") for g in data["gates"])
    with pytest.raises(PermanentError, match="needs an ITEM"):
        fleet_cmd.run("peers", str(REFERENCE_FLEET), status_dir=str(STATUS))
    assert tva("fleet", "peers", "--repo", str(REFERENCE_FLEET), "--status", str(STATUS)) != 0


def test_fleet_ref_reads_statuses_published_through_git(
    fleet_remote: Path, clone: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Statuses published on the fleet repo's status refs (a real bare remote and clones) give
    the same plan as the same statuses read from a directory."""
    from controller.desired import load_fleet
    from controller.status.gitstatus import GitStatusTransport

    policy = load_fleet(str(REFERENCE_FLEET)).desired.fleet.status
    for st in DirectoryStatusTransport(STATUS).read_all():
        with GitStatusTransport.for_fleet(clone(fleet_remote, st.node), policy, node=st.node) as t:
            t.publish(st)
    reader = clone(fleet_remote, "reviewer")
    now = "2025-06-01T19:59:00Z"
    assert plan_cmd.run(str(reader), fleet_ref=True, as_json=True, now=now) == 2
    from_git = json.loads(capsys.readouterr().out)
    assert plan_cmd.run(str(REFERENCE_FLEET), status_dir=str(STATUS), as_json=True, now=now) == 2
    from_dir = json.loads(capsys.readouterr().out)
    assert from_git["actions"] == from_dir["actions"]
    assert tva("plan", str(reader), "--fleet-ref", "--status", str(STATUS)) == 1
    assert "one source of fleet status" in capsys.readouterr().err
