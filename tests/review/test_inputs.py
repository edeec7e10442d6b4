"""What a review reads: revisions straight from commits, an invalid BASE, and the fleet
status from the status refs of a real remote (as CI reads it)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from controller.cli import review as review_cmd
from controller.errors import PermanentError, ValidationFailed
from controller.review import inputs
from controller.review.inputs import load_revisions, open_repo, read_statuses
from controller.status import GitStatusTransport
from tests.review.support import (
    FLEET,
    NOW,
    change,
    edit,
    fleet_repo,
    key,
    statuses,
    write_statuses,
)
from tests.support.gitrepo import git, make_fleet_remote

BROKEN = {"custody/films.yaml": "apiVersion: tva/v1\nkind: CustodyRule\nname: films\n"
          "select: {collections: [films]}\nmin: many\n"}


def _json(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


def test_an_invalid_base_is_compared_as_its_newest_valid_ancestor(
        tmp_path: Path, git_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    repo, good = fleet_repo(tmp_path / "fleet")
    bad = change(repo, BROKEN, "broken films rule")
    head = change(repo, edit("custody/films.yaml", "min: 1", "min: 2") | {}, "fix and raise")
    status = write_statuses(tmp_path / "status", statuses())
    rc = review_cmd.run(bad, head, repo=str(repo), status_dir=str(status), as_json=True)
    r = _json(capsys)
    assert rc == 2
    assert r["base"]["revision"] == bad and r["base"]["compared"] == good
    assert r["base"]["valid"] is False
    assert any("custody/films.yaml:5" in p and "min" in p for p in r["base"]["problems"])
    assert any("newest valid ancestor" in n for n in r["notes"])
    # Compared with what controllers run (good), not with the broken text: one change.
    assert [c["text"] for c in r["changes"]] == ["custody films: min: 1 -> 2"]
    assert [a["id"] for a in r["delta"]["pins"]] == [f"seedbox/add/{key('Charlie')}"]


def test_an_invalid_base_without_a_valid_ancestor_is_an_empty_fleet(
        tmp_path: Path, git_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "fleet"
    repo.mkdir()
    git(repo, "init", "--quiet", "--initial-branch=main")
    git(repo, "config", "user.name", "t")
    git(repo, "config", "user.email", "t@example.invalid")
    first = change(repo, {"README.md": "fleet repo, to be filled\n"}, "start")
    import shutil

    for f in FLEET.rglob("*.yaml"):
        dest = repo / f.relative_to(FLEET)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, dest)
    git(repo, "add", "--all")
    head = change(repo, {"README.md": "the fleet\n"}, "the fleet")
    rc = review_cmd.run(first, head, repo=str(repo), as_json=True, now=NOW.isoformat())
    r = _json(capsys)
    assert rc == 2
    assert r["base"]["compared"] is None and r["base"]["valid"] is False
    assert any("empty fleet" in n for n in r["notes"])
    texts = [c["text"] for c in r["changes"]]
    assert "device nas added (class server)" in texts
    assert "custody films added (min 1, max 2)" in texts
    assert any("no fleet status given" in n for n in r["notes"])


def test_the_walk_back_is_bounded(tmp_path: Path, git_env: None,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inputs, "MAX_WALK", 3)
    repo, _ = fleet_repo(tmp_path / "fleet")
    change(repo, BROKEN, "broken")
    for i in range(3):
        change(repo, {"notes.txt": f"{i}\n"}, f"still broken {i}")
    head = change(repo, {"custody/films.yaml": (FLEET / "custody/films.yaml").read_text()}, "fix")
    revs = load_revisions(open_repo(str(repo)), "HEAD~1", head)
    assert revs.base is None and "within 3 commits" in revs.notes[0]
    # One commit less to walk, and the fleet's first commit is found.
    revs = load_revisions(open_repo(str(repo)), "HEAD~2", head)
    assert revs.base is not None and revs.base_info.compared == git(repo, "rev-parse", "HEAD~5")


def test_an_invalid_head_raises_with_located_problems(tmp_path: Path, git_env: None) -> None:
    repo, base = fleet_repo(tmp_path / "fleet")
    head = change(repo, BROKEN)
    with pytest.raises(ValidationFailed) as e:
        load_revisions(open_repo(str(repo)), base, head)
    assert any(p.file == "custody/films.yaml" and p.line == 5 for p in e.value.problems)


def test_not_a_repo_or_unknown_revision_is_an_error(tmp_path: Path, git_env: None) -> None:
    with pytest.raises(PermanentError, match="not a git repository"):
        open_repo(str(tmp_path))
    repo, _ = fleet_repo(tmp_path / "fleet")
    with pytest.raises(PermanentError, match="not found"):
        load_revisions(open_repo(str(repo)), "no-such-branch", "HEAD")


def test_fleet_ref_reads_the_status_refs_of_the_remote(
        tmp_path: Path, git_env: None, clone: Callable[[Path, str], Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    """Nodes publish their status to the fleet repo's remote; CI's fresh clone has only the
    branches, and ``--fleet-ref`` fetches the status refs before planning."""
    remote = make_fleet_remote(tmp_path / "remote" / "fleet.git", FLEET)
    observed = statuses()
    for s in observed:
        with GitStatusTransport(clone(remote, s.node), node=s.node) as t:
            t.publish(s)
    ci = clone(remote, "ci")
    base = git(ci, "rev-parse", "HEAD")
    head = change(ci, edit("custody/films.yaml", "min: 1", "min: 2"), "raise films")
    # Before fetching, the checkout has no status: read_statuses says so rather than guessing.
    none, notes = read_statuses(repo=str(ci), fetch=False)
    assert none == [] and any("every node is unknown" in n for n in notes)

    rc = review_cmd.run(base, head, repo=str(ci), fleet_ref=True, as_json=True)
    via_git = _json(capsys)
    status = write_statuses(tmp_path / "status", observed)
    review_cmd.run(base, head, repo=str(ci), status_dir=str(status), as_json=True)
    via_dir = _json(capsys)
    assert rc == 2
    assert {s["node"]: s["freshness"] for s in via_git["statuses"]} == dict.fromkeys(
        ["laptop", "nas", "seedbox", "tv"], "fresh")
    for field in ("now", "changes", "delta", "risks", "floors", "capacity"):
        assert via_git[field] == via_dir[field], field
    # Offline (no fetch), the refs fetched above are still there.
    review_cmd.run(base, head, repo=str(ci), fleet_ref=True, fetch=False, as_json=True)
    assert _json(capsys)["delta"] == via_git["delta"]


def test_fleet_ref_with_an_unreachable_remote_says_so(
        tmp_path: Path, git_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    repo, base = fleet_repo(tmp_path / "fleet")
    git(repo, "remote", "add", "origin", str(tmp_path / "gone.git"))
    head = change(repo, edit("custody/films.yaml", "min: 1", "min: 2"))
    rc = review_cmd.run(base, head, repo=str(repo), fleet_ref=True, as_json=True,
                        now=NOW.isoformat())
    r = _json(capsys)
    assert rc == 2
    assert any("could not fetch the status refs from origin" in n for n in r["notes"])
    assert {s["freshness"] for s in r["statuses"]} == {"unknown"}
