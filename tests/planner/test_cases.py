"""Golden planner cases: a fleet (the base in cases/_fleet plus per-case files) and compact
node statuses in, expected action ids, reason fragments and warnings out.

Each case is one readable YAML file in tests/planner/cases/ (format: cases/README.md).
"""

from __future__ import annotations

import re
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.desired import load_fleet
from controller.planner import plan
from schemas.desired import DesiredState
from schemas.plan import Plan
from tests.planner.harness import journal_entries, key_of, node_status

CASES = Path(__file__).parent / "cases"
DEFAULT_NOW = "2025-06-01T20:00:00+00:00"


def _case_files() -> list[Path]:
    return sorted(p for p in CASES.glob("*.yaml"))


def _subst(desired: DesiredState, text: str) -> str:
    return re.sub(r"\{([^}]+)\}", lambda m: key_of(desired, m.group(1)), text)


def run_case(case: dict[str, Any], tmp_path: Path) -> tuple[DesiredState, Plan]:
    fleet = tmp_path / "fleet"
    shutil.copytree(CASES / "_fleet", fleet)
    for rel, content in (case.get("files") or {}).items():
        target = fleet / rel
        if content is None:
            target.unlink()
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    desired = load_fleet(str(fleet)).desired
    now = datetime.fromisoformat(str(case.get("now", DEFAULT_NOW)))
    statuses = [node_status(desired, name, spec or {}, now)
                for name, spec in (case.get("nodes") or {}).items()]
    journal = journal_entries(desired, case.get("journal") or [], now)
    return desired, plan(desired, statuses, now, nodes=case.get("plan_nodes"), journal=journal,
                         unread=bool(case.get("unread", False)))


@pytest.mark.parametrize("path", _case_files(), ids=lambda p: p.stem)
def test_case(path: Path, tmp_path: Path) -> None:
    case = yaml.safe_load(path.read_text())
    desired, p = run_case(case, tmp_path)
    expect = case["expect"]
    by_id = {a.id: a for a in p.actions}
    shown = "\n".join(f"  {a.id}: {a.reason}" for a in p.actions) or "  (none)"
    for exp in expect.get("actions", []):
        aid = _subst(desired, exp["id"])
        assert aid in by_id, f"{aid} missing; plan has:\n{shown}"
        action = by_id[aid]
        for fragment in exp.get("reason", []):
            assert fragment in action.reason, f"{aid}: {fragment!r} not in {action.reason!r}"
        if "relies_on" in exp:
            assert action.relies_on == sorted(exp["relies_on"])
        if "rule" in exp:
            assert action.rule == exp["rule"], f"{aid}: rule {action.rule!r}"
        for k, v in (exp.get("params") or {}).items():
            assert action.params.get(k) == v, f"{aid}: params[{k}] = {action.params.get(k)!r}"
    for absent in expect.get("absent", []):
        prefix = _subst(desired, absent)
        hits = [a for a in by_id if a.startswith(prefix)]
        assert not hits, f"{prefix} must not be planned; plan has:\n{shown}"
    if expect.get("only"):
        wanted = sorted(_subst(desired, e["id"]) for e in expect.get("actions", []))
        assert sorted(by_id) == wanted, f"plan has:\n{shown}"
    warnings = "\n".join(f"  {w.code}: {w.message}" for w in p.warnings) or "  (none)"
    for exp in expect.get("warnings", []):
        matching = [w for w in p.warnings if w.code == exp["code"]
                    and all(f in w.message for f in exp.get("message", []))
                    and exp.get("severity", w.severity.value) == w.severity.value]
        assert matching, f"warning {exp} missing; warnings:\n{warnings}"
    for code in expect.get("no_warnings", []):
        assert all(w.code != code for w in p.warnings), f"unexpected {code}:\n{warnings}"
    duties = {d.duty: d for d in p.duties}
    for duty, exp in (expect.get("duties") or {}).items():
        assert duties[duty].nodes == exp["nodes"], f"{duty}: {duties[duty]}"
        assert exp.get("reason", "") in duties[duty].reason, f"{duty}: {duties[duty].reason}"
    if "suspended" in expect:
        assert p.suspended is expect["suspended"]
    if "deferred" in expect:
        assert p.summary.deferred == expect["deferred"]
