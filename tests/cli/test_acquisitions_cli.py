"""``tva fleet acquisitions``: entries satisfied, searched or waiting; acquired items; the
acquirer's last search results (from its state dir)."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from controller.cli import fleet as fleet_cmd
from controller.journal import Journal
from schemas.journal import JournalEntry, Outcome
from schemas.plan import ActionKind
from tests.cli.support import tva
from tests.conftest import REFERENCE_FLEET

TARGET = "watch/films-wanted/film-night-film"


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    repo = tmp_path / "fleet"
    shutil.copytree(REFERENCE_FLEET, repo)
    (repo / "watchlists" / "films-wanted.yaml").write_text(
        "apiVersion: tva/v1\nkind: Watchlist\nname: films-wanted\ndevice: tv\n"
        "search: [public]\nentries:\n  - {film: Night Film}\n  - {film: Sintel}\n")
    return repo


def _view(capsys: pytest.CaptureFixture[str], repo: Path, **kw: Any) -> dict[str, Any]:
    rc = fleet_cmd.run("acquisitions", str(repo), status_dir=str(repo / ".status"),
                       as_json=True, **kw)
    assert rc == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


def test_entries_satisfied_and_searched(fleet: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _view(capsys, fleet, state_dir=str(fleet / "no-state"))
    rows = {(r["watchlist"], r["entry"]): r for r in data["entries"]}
    assert data["acquirer"] == "nas"
    assert rows[("films-wanted", "film Sintel")]["state"] == "satisfied"
    night = rows[("films-wanted", "film Night Film")]
    assert night["state"] == "search-planned" and night["target"] == TARGET
    assert night["sources"] == ["public"] and "search public for tv" in night["why"]
    assert data["proposed"] == [] and data["last_results"] == {}


def test_the_acquirers_state_shows_backoff_and_why_releases_were_refused(
        fleet: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    state.mkdir()
    now = datetime.fromisoformat(_view(capsys, fleet)["now"])
    Journal(str(state / "nas.journal.jsonl")).append([JournalEntry(
        at=now - timedelta(minutes=5), node="nas", action_id=f"nas/research/{TARGET}",
        kind=ActionKind.research, target=TARGET, outcome=Outcome.failed,
        error="no acceptable release")])
    (state / "nas.acquisitions.json").write_text(json.dumps({TARGET: {
        "at": now.isoformat(), "outcome": "nothing", "results": 1,
        "refused": [{"title": "Night.Film.CAM", "why": "blocked word 'CAM'"}]}}))
    data = _view(capsys, fleet, state_dir=str(state))
    night = next(r for r in data["entries"] if r["entry"] == "film Night Film")
    assert night["state"] == "waiting" and "1 failed search in a row" in night["why"]
    assert data["last_results"][TARGET]["refused"][0]["why"] == "blocked word 'CAM'"
    # The same as a table, through the CLI.
    assert tva("fleet", "acquisitions", "--repo", str(fleet), "--status",
               str(fleet / ".status"), "--state-dir", str(state)) == 0
    text = capsys.readouterr().out
    assert "Watchlist entries" in text and "waiting" in text and "'CAM'" in text
