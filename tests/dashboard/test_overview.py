"""The dashboard's custody states (one sweep, rows on demand) agree with ``tva fleet custody``
(every item counted copy by copy) on every golden planner case and on the synthetic fleet."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from controller.desired import load_fleet
from controller.planner.views import custody_view, fleet_overview, reaper_view
from tests.dashboard.synthetic import fleet_inputs
from tests.planner.harness import journal_entries, node_status
from tests.planner.test_cases import CASES, DEFAULT_NOW, _case_files


@pytest.mark.parametrize("path", _case_files(), ids=lambda p: p.stem)
def test_custody_states_agree_with_the_custody_view(path: Path, tmp_path: Path) -> None:
    case = yaml.safe_load(path.read_text())
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
    overview = fleet_overview(desired, statuses, now, journal)
    full = custody_view(desired, statuses, now, journal)
    assert [(s.rule, s.key, s.state) for s in overview.custody_states] == \
        [(r.rule, r.key, r.state) for r in full]
    assert overview.custody == full
    assert overview.reaper == reaper_view(desired, statuses, now, journal)


def test_custody_states_agree_on_the_synthetic_fleet(tmp_path: Path) -> None:
    i = fleet_inputs(tmp_path / "fleet")
    overview = fleet_overview(i.desired, i.statuses, i.now, i.journal)
    full = custody_view(i.desired, i.statuses, i.now, i.journal)
    assert {s.state for s in overview.custody_states} >= {"ok", "below-floor"}
    assert overview.custody == full
