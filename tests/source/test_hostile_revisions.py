"""A hostile revision on a real git remote: over budget, slow to validate, crashing a decoder,
or naming paths one reader sees and another does not. The last good revision stays in force,
and a checkout (``tva validate``) and the daemon's git reader agree."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import controller.desired.loader as loader
import controller.source.git as source_git
from controller.clients.git import GitRepo
from controller.desired import load_fleet
from controller.desired.loader import Budget
from controller.errors import ValidationFailed
from controller.source.git import GitSource
from controller.source.gittree import load_revision
from tests.support.gitrepo import clone_checkout, commit_files, git

NESTED = b"d4:infol" + b"l" * 5000 + b"e" * 5000 + b"ee"
"""A .torrent whose bencode nests 5,000 lists deep (a recursive decoder runs out of stack)."""


def _collection(name: str, items: int) -> str:
    lines = [f"apiVersion: tva/v1\nkind: Collection\nname: {name}\nitems:\n"]
    for i in range(items):
        lines.append(f"  - name: item {i}\n    infohash: {i:040x}\n")
    return "".join(lines)


def test_one_blob_behind_many_paths_is_parsed_once(fleet_remote: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    owner = clone_checkout(fleet_remote, tmp_path / "owner", "owner")
    big = _collection("big", 3000)
    commit_files(owner, {f"items/copy{i}.yaml": big for i in range(8)}, "one blob, eight paths")
    calls: list[int] = []
    real = loader.parse_documents

    def counting(text: str) -> Any:
        if "name: big" in text:
            calls.append(len(text))
        return real(text)

    monkeypatch.setattr(loader, "parse_documents", counting)
    with GitRepo.open(fleet_remote) as repo, pytest.raises(ValidationFailed) as failed:
        load_revision(repo, "main")
    assert len(calls) == 1, "eight paths to one blob cost one parse"
    assert any("copy" in p.file for p in failed.value.problems), failed.value.problems[:3]  # duplicates


def test_a_revision_over_budget_is_invalid_in_both_readers(fleet_remote: Path, tmp_path: Path) -> None:
    owner = clone_checkout(fleet_remote, tmp_path / "owner", "owner")
    files = len([p for p in owner.rglob("*.yaml") if ".git" not in p.parts])
    budget = Budget(files=files + 2)
    source = GitSource(str(fleet_remote), str(tmp_path / "node"), budget=budget)
    good = source.refresh()
    assert good.current
    extra = {f"items/extra{i}.yaml": _collection(f"extra{i}", 1) for i in range(3)}
    bad = commit_files(owner, extra, "three more files than the budget allows")
    rev = source.refresh()
    assert rev.seen == bad and rev.applied == good.applied and rev.desired == good.desired
    assert [p.message for p in rev.problems] == [f"more than {files + 2} YAML files"]
    with pytest.raises(ValidationFailed) as checkout:
        load_fleet(str(owner), budget=budget)
    assert [p.message for p in checkout.value.problems] == [f"more than {files + 2} YAML files"]

    with pytest.raises(ValidationFailed) as slow:
        load_fleet(str(owner), budget=Budget(seconds=0))
    assert [p.message for p in slow.value.problems] == ["validating this revision took longer than 0 s"]
    with pytest.raises(ValidationFailed) as large:
        load_fleet(str(owner), budget=Budget(bytes=4096))
    assert [p.message for p in large.value.problems][-1].startswith("the revision's fleet files hold more than")


def test_validation_runs_beside_the_loop_and_the_last_good_revision_stays(
    fleet_remote: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = clone_checkout(fleet_remote, tmp_path / "owner", "owner")
    release = threading.Event()
    done = threading.Event()
    real = source_git.load_revision

    def held(*args: Any, **kwargs: Any) -> Any:
        if not release.wait(60):
            raise AssertionError("never released")
        return real(*args, **kwargs)

    source = GitSource(str(fleet_remote), str(tmp_path / "node"), wait=0.2, on_validated=done.set)
    good = source.refresh()
    assert good.current
    done.clear()
    monkeypatch.setattr(source_git, "load_revision", held)
    new = commit_files(owner, {"README": "a new revision\n"}, "a revision that takes long to validate")
    rev = source.refresh()  # returns without the verdict: the pass goes on with the last good one
    assert rev.validating and rev.seen == new and rev.applied == good.applied and rev.desired is not None
    release.set()
    assert done.wait(60)
    rev = source.refresh()
    assert rev.current and rev.applied == new
    source.close()


def test_a_loader_crash_keeps_the_last_good_revision_and_validate_says_where(
    fleet_remote: Path, tmp_path: Path
) -> None:
    owner = clone_checkout(fleet_remote, tmp_path / "owner", "owner")
    source = GitSource(str(fleet_remote), str(tmp_path / "node"))
    good = source.refresh()
    (owner / "torrents").mkdir()
    (owner / "torrents" / "deep.torrent").write_bytes(NESTED)
    git(owner, "add", "torrents/deep.torrent")
    bad = commit_files(owner, {"items/deep.yaml": (
        "apiVersion: tva/v1\nkind: Collection\nname: deep\nitems:\n"
        "  - name: Deep\n    torrent: torrents/deep.torrent\n")}, "a deeply nested .torrent")
    rev = source.refresh()
    assert rev.seen == bad and rev.applied == good.applied and rev.desired == good.desired
    assert [(p.file, p.line, p.field) for p in rev.problems] == [("items/deep.yaml", 6, "items[0].torrent")]
    assert "nested too deeply" in rev.problems[0].message

    shown = tmp_path / "fleet[x]\\"  # a path rich would read as markup
    owner.rename(shown)
    proc = subprocess.run([sys.executable, "-m", "controller.cli.main", "validate", str(shown)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    assert f"{shown}/items/deep.yaml:6: items[0].torrent:" in proc.stderr
    assert f"{shown}: invalid (1 problem)" in proc.stderr
    assert "[red]" not in proc.stderr + proc.stdout and "[/red]" not in proc.stderr + proc.stdout


@pytest.mark.parametrize("path", ["./film.torrent", "torrents//film.torrent", ".hidden/film.torrent",
                                  "/torrents/film.torrent", "torrents/../film.torrent", "torrents/"])
def test_one_path_rule_for_every_reader(fleet_remote: Path, tmp_path: Path, path: str) -> None:
    owner = clone_checkout(fleet_remote, tmp_path / "owner", "owner")
    for where in ("film.torrent", "torrents/film.torrent", ".hidden/film.torrent"):
        (owner / where).parent.mkdir(exist_ok=True)
        (owner / where).write_bytes(b"d4:infod6:lengthi1e4:name1:x12:piece lengthi16384e6:pieces20:"
                                    + b"\x00" * 20 + b"ee")
        git(owner, "add", "-f", where)
    commit_files(owner, {"items/path.yaml": (
        "apiVersion: tva/v1\nkind: Collection\nname: path\nitems:\n"
        f"  - name: Film\n    torrent: {path!r}\n")}, "a torrent path in another spelling")
    with pytest.raises(ValidationFailed) as checkout:
        load_fleet(str(owner))
    with GitRepo.open(fleet_remote) as repo, pytest.raises(ValidationFailed) as committed:
        load_revision(repo, "main")
    seen = [(p.line, p.field, p.message) for p in checkout.value.problems]
    assert seen == [(p.line, p.field, p.message) for p in committed.value.problems]
    assert seen and seen[0][:2] == (6, "items[0].torrent"), seen


def _garbage_head(clone: Path) -> None:
    (clone / ".git" / "HEAD").write_text("garbage\n")


def _garbage_config(clone: Path) -> None:
    (clone / ".git" / "config").write_text("[core\n\x00garbage\n")


@pytest.mark.parametrize("damage", [_garbage_head, _garbage_config], ids=["head", "config"])
def test_a_damaged_clone_is_moved_aside_and_cloned_again(
    fleet_remote: Path, tmp_path: Path, damage: Any
) -> None:
    owner = clone_checkout(fleet_remote, tmp_path / "owner", "owner")
    workdir = tmp_path / "state" / "fleet"
    source = GitSource(str(fleet_remote), str(workdir))
    assert source.refresh().current
    source.close()
    damage(workdir)
    new = commit_files(owner, {"README": "after the damage\n"}, "a revision after the damage")

    source = GitSource(str(fleet_remote), str(workdir))  # a restart, or the next pass
    rev = source.refresh()
    assert rev.current and rev.applied == new and rev.error is None
    aside = [p.name for p in workdir.parent.iterdir() if p.name.startswith("fleet.damaged-")]
    assert len(aside) == 1 and source.generation == 1
    source.close()


def test_a_remote_without_the_branch_is_not_blamed_on_the_clone(tmp_path: Path, git_env: None) -> None:
    remote = tmp_path / "empty.git"
    git(tmp_path, "init", "--quiet", "--bare", "-b", "main", str(remote))
    workdir = tmp_path / "state" / "fleet"
    source = GitSource(str(remote), str(workdir))
    for _ in range(2):
        rev = source.refresh()
        assert rev.desired is None and rev.error is not None
    assert [p.name for p in workdir.parent.iterdir()] == ["fleet"], "nothing moved aside"
    assert source.generation == 0
    source.close()
