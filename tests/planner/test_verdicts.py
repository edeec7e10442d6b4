"""A node's own verdict on its copies (dead by its journal's strikes, broken by a data error)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controller.desired import load_fleet
from controller.planner import plan, verdicts, with_verdicts
from schemas.desired import DesiredState
from schemas.journal import JournalEntry, Outcome
from schemas.observed import CopyVerdict
from schemas.plan import ActionKind
from tests.planner.harness import key_of, node_status

NOW = datetime(2025, 6, 1, 20, 0, tzinfo=UTC)
CASES = Path(__file__).parent / "cases" / "_fleet"


@pytest.fixture(scope="module")
def desired() -> DesiredState:
    return load_fleet(str(CASES)).desired


def strikes(desired: DesiredState, node: str, item: str, n: int) -> list[JournalEntry]:
    key = key_of(desired, item)
    return [JournalEntry(at=NOW - timedelta(hours=h), node=node, action_id=f"{node}/strike/{key}",
                         kind=ActionKind.record_strike, target=key, outcome=Outcome.ok,
                         progress=int(0.4 * 2 * 1024**3), detail="stalled")
            for h in range(n, 0, -1)]


def tv(desired: DesiredState) -> object:
    return node_status(desired, "tv", {"age": "1m", "torrents": [
        {"item": "Bravo"},
        {"item": "Alpha", "pct": 0.4, "activity": "12h", "added": "2d"},
        {"item": "Charlie", "pct": 0.5, "error": 3, "error_string": "No space left on device"},
    ]}, NOW)


def test_dead_by_the_nodes_own_strikes_and_broken_by_a_data_error(desired: DesiredState) -> None:
    status = tv(desired)
    alpha, charlie = key_of(desired, "Alpha"), key_of(desired, "Charlie")
    got = verdicts(desired, status, NOW, strikes(desired, "tv", "Alpha", 3))  # type: ignore[arg-type]
    assert got == {alpha: CopyVerdict.dead, charlie: CopyVerdict.broken}
    fewer = verdicts(desired, status, NOW, strikes(desired, "tv", "Alpha", 1))  # type: ignore[arg-type]
    assert fewer == {charlie: CopyVerdict.broken}


def test_published_verdict_makes_other_nodes_plan_the_same(desired: DesiredState) -> None:
    """nas has none of tv's strikes in its journal; with tv's verdict published, the plans that
    tv and nas compute for the fleet are the same."""
    journal = strikes(desired, "tv", "Alpha", 3)
    own = with_verdicts(desired, tv(desired), NOW, journal)  # type: ignore[arg-type]
    assert {t.infohash: t.verdict for t in own.transmission.torrents}[key_of(desired, "Alpha")] \
        is CopyVerdict.dead
    others = [node_status(desired, "nas", {"age": "2m", "torrents": [{"item": "Alpha"}]}, NOW),
              node_status(desired, "laptop", {"age": "2m"}, NOW)]
    seen_by_tv = plan(desired, [*others, own], NOW, journal=journal)
    seen_by_nas = plan(desired, [*others, own], NOW)
    custody = {a.id for a in seen_by_tv.actions if a.rule and a.rule.startswith("custody/")}
    assert f"laptop/add/{key_of(desired, 'Alpha')}" in custody, "the dead copy is re-pinned"
    assert custody == {a.id for a in seen_by_nas.actions
                       if a.rule and a.rule.startswith("custody/")}
