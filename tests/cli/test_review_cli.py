"""``tva review BASE HEAD`` as CI runs it: a real git repo, the installed ``tva`` script, and
the exit codes 0 (no effect), 2 (effect) and 1 (invalid HEAD or error)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from controller.review import MARKER, MAX_COMMENT
from tests.review.support import change, edit, fleet_repo, statuses, write_statuses

TVA = Path(sys.executable).parent / "tva"


def tva(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(TVA), *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


@pytest.fixture
def repo(tmp_path: Path, git_env: None) -> tuple[Path, str, Path]:
    path, base = fleet_repo(tmp_path / "fleet")
    return path, base, write_statuses(tmp_path / "status", statuses())


def test_a_change_with_an_effect_exits_2_with_a_comment(repo: tuple[Path, str, Path]) -> None:
    path, base, status = repo
    change(path, edit("fleet.yaml", "prune: false", "prune: true"), "prune")
    proc = tva("review", base, "HEAD", "--status", str(status), "--markdown", cwd=path)
    assert proc.returncode == 2, proc.stderr
    md = proc.stdout
    assert md.startswith(MARKER) and len(md) <= MAX_COMMENT
    summary, _, details = md.partition("<details>")
    assert "DANGER: Data removal: 1 copy (1.0 GiB) would be deleted on nas" in summary
    assert "warning: Prune switched on" in summary
    assert "<summary>Desired-state changes (1)</summary>" in details
    assert "fleet review-lab: policy.custody.prune: false -&gt; true" not in details, \
        "only < and & are escaped"
    assert "fleet review-lab: policy.custody.prune: false -> true" in details
    assert "Traceback" not in proc.stderr


def test_no_effect_exits_0(repo: tuple[Path, str, Path]) -> None:
    path, base, status = repo
    change(path, edit("fleet.yaml", "suspend: false", "suspend: false  # not now"), "comment")
    proc = tva("review", base, "HEAD", "--repo", str(path), "--status", str(status),
               cwd=path.parent)
    assert proc.returncode == 0, proc.stderr
    assert "No effect" in proc.stdout


def test_json_is_the_full_review(repo: tuple[Path, str, Path]) -> None:
    path, base, status = repo
    head = change(path, edit("custody/films.yaml", "min: 1", "min: 2"))
    proc = tva("review", base, head, "--status", str(status), "--json",
               "--now", "2025-06-01T20:00:00Z", cwd=path)
    assert proc.returncode == 2, proc.stderr
    r = json.loads(proc.stdout)
    assert r["format"] == "tva.review/v1" and r["effect"] is True
    assert r["now"] == "2025-06-01T20:00:00Z"
    assert [x["code"] for x in r["risks"]] == ["below-floor"]


def test_an_invalid_head_exits_1_with_file_and_line(repo: tuple[Path, str, Path]) -> None:
    path, base, status = repo
    change(path, edit("custody/films.yaml", "min: 1", "min: lots"), "typo")
    proc = tva("review", base, "HEAD", "--status", str(status), "--markdown", cwd=path)
    assert proc.returncode == 1
    assert "custody/films.yaml:5" in proc.stderr and "invalid" in proc.stderr
    assert proc.stdout.startswith(MARKER) and "is invalid" in proc.stdout
    assert "custody/films.yaml:5" in proc.stdout


@pytest.mark.parametrize("args", [
    ["--status", "x", "--fleet-ref"],
    ["--markdown", "--json"],
    ["--now", "yesterday"],
])
def test_usage_errors_exit_1(repo: tuple[Path, str, Path], args: list[str]) -> None:
    path, base, _ = repo
    proc = tva("review", base, "HEAD", *args, cwd=path)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error:") and "Traceback" not in proc.stderr


def test_unknown_revision_exits_1(repo: tuple[Path, str, Path]) -> None:
    path, _, status = repo
    proc = tva("review", "origin/main", "HEAD", "--status", str(status), cwd=path)
    assert proc.returncode == 1
    assert "revision 'origin/main' not found" in proc.stderr
