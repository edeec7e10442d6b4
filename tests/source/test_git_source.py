"""The git source: last good revision, and signed-commit verification with a real SSH key."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.source.git import GitSource
from tests.support.gitrepo import clone_checkout, commit_files, git, ssh_signer


@pytest.fixture
def signer(tmp_path: Path) -> tuple[Path, Path]:
    """An SSH signing key and an allowed-signers file trusting it."""
    return ssh_signer(tmp_path / "keys")


def test_only_signed_revisions_are_applied(fleet_remote: Path, tmp_path: Path, signer: tuple[Path, Path]) -> None:
    key, allowed = signer
    owner = clone_checkout(fleet_remote, tmp_path / "owner", "owner")
    git(owner, "config", "user.email", "owner@example.invalid")
    git(owner, "config", "gpg.format", "ssh")
    git(owner, "config", "user.signingkey", str(key))
    (owner / "README").write_text("signed\n")
    git(owner, "add", "README")
    git(owner, "commit", "-q", "-S", "-m", "a signed commit")
    git(owner, "push", "-q", "origin", "HEAD")
    signed = git(owner, "rev-parse", "HEAD")

    source = GitSource(str(fleet_remote), str(tmp_path / "node"), allowed_signers=str(allowed))
    rev = source.refresh()
    assert rev.applied == signed and rev.current

    unsigned = commit_files(owner, {"README": "not signed\n"}, "an unsigned commit")
    rev = source.refresh()
    assert rev.seen == unsigned
    assert rev.applied == signed, "the unsigned revision is not applied; the signed one stays"
    assert rev.error is not None and "not signed by a key" in rev.error


def test_invalid_revision_keeps_the_last_good_one(fleet_remote: Path, tmp_path: Path) -> None:
    owner = clone_checkout(fleet_remote, tmp_path / "owner", "owner")
    source = GitSource(str(fleet_remote), str(tmp_path / "node"))
    good = source.refresh()
    assert good.current and good.desired is not None
    bad = commit_files(owner, {"devices/nas.yaml": "apiVersion: tva/v1\nkind: Device\nname: nas\n"}, "break it")
    rev = source.refresh()
    assert rev.seen == bad and rev.applied == good.applied
    assert rev.desired == good.desired
    assert any(p.file.endswith("devices/nas.yaml") and p.line for p in rev.problems)
