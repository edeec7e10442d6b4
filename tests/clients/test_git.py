"""The git client: errors sorted by retry value, options never taken from a URL, commits written
without touching a working tree."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.clients.git import GitRepo, init_repo, ls_remote, run_git
from controller.errors import PermanentError, TemporaryError, UnreachableError


def test_a_url_that_looks_like_an_option_is_a_url(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with pytest.raises((PermanentError, UnreachableError)):
        ls_remote(f"--upload-pack=touch {marker}", ["refs/heads/main"])
    assert not marker.exists()


def test_a_missing_remote_is_unreachable(tmp_path: Path) -> None:
    with pytest.raises(UnreachableError):
        ls_remote(str(tmp_path / "nowhere.git"), [])


def test_write_commit_and_read_it_back_without_a_working_tree(tmp_path: Path) -> None:
    with init_repo(tmp_path / "bare.git", bare=True) as repo:
        sha = repo.write_commit({"status.json": b"{}\n"}, parent=None, identity="tva t <t@x>",
                                when=1_700_000_000, message="first\n")
        repo.run("update-ref", "refs/tva/status/t", sha, what="test")
        assert repo.commit_or_none("refs/tva/status/t") == sha
        assert repo.read_file(sha, "status.json", 10) == b"{}\n"
        assert repo.read_file(sha, "missing.json", 10) is None
        assert repo.message(sha) == "first\n"
        assert list(repo.blobs(sha)) == ["status.json"]
        child = repo.write_commit({"status.json": b"[]\n"}, parent=sha, identity="tva t <t@x>",
                                  when=1_700_000_001, message="second\n")
        assert repo.is_ancestor(sha, child) and not repo.is_ancestor(child, sha)
        assert list(repo.first_parents(child, 5)) == [child, sha]


def test_a_busy_lock_is_temporary(tmp_path: Path) -> None:
    with init_repo(tmp_path / "repo") as repo:
        (tmp_path / "repo" / "f").write_text("x")
        repo.run("add", "f", what="add")
        (Path(repo.git_dir) / "index.lock").write_text("")
        with pytest.raises(TemporaryError, match="locked"):
            run_git(tmp_path / "repo", ["add", "f"], what="adding", timeout=30)


def test_opening_something_that_is_not_a_repository_says_so(tmp_path: Path) -> None:
    with pytest.raises(PermanentError, match="not a git repository"):
        GitRepo.open(tmp_path)
