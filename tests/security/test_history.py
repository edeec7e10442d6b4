"""Trust in history, against a real git remote with real SSH and OpenPGP signatures, and the
real ``tva plan`` over statuses dated in the future."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controller.errors import TvaError
from controller.source.git import GitSource
from tests.conftest import REFERENCE_FLEET
from tests.support.gitrepo import clone_checkout, git, ssh_signer

TVA = Path(sys.executable).parent / "tva"


@pytest.fixture
def signer(tmp_path: Path) -> tuple[Path, Path]:
    """An SSH signing key and an allowed-signers file trusting it."""
    return ssh_signer(tmp_path / "keys")


def _owner(remote: Path, tmp_path: Path, key: Path) -> Path:
    owner = clone_checkout(remote, tmp_path / "owner", "owner")
    git(owner, "config", "user.email", "owner@example.invalid")
    git(owner, "config", "gpg.format", "ssh")
    git(owner, "config", "user.signingkey", str(key))
    return owner


def _signed(owner: Path, text: str) -> str:
    (owner / "README").write_text(text)
    git(owner, "add", "README")
    git(owner, "commit", "-q", "-S", "-m", f"signed: {text.strip()}")
    git(owner, "push", "-q", "-f", "origin", "HEAD:main")
    return git(owner, "rev-parse", "HEAD")


def test_a_force_push_back_to_an_older_signed_commit_is_refused(
        fleet_remote: Path, tmp_path: Path, signer: tuple[Path, Path]) -> None:
    key, allowed = signer
    owner = _owner(fleet_remote, tmp_path, key)
    old = _signed(owner, "one\n")
    state = tmp_path / "state"

    def source() -> GitSource:
        return GitSource(str(fleet_remote), str(state / "fleet"), allowed_signers=str(allowed),
                         applied_file=str(state / "nas.applied-revision"))

    node = source()
    assert node.refresh().applied == old
    new = _signed(owner, "two\n")
    assert node.refresh().applied == new

    git(owner, "reset", "-q", "--hard", old)
    git(owner, "push", "-q", "-f", "origin", "HEAD:main")  # a signed commit, but a rollback
    rev = node.refresh()
    assert rev.seen == old and rev.applied == new
    assert rev.refused == "RollbackRefused" and rev.error and "does not descend" in rev.error

    restarted = source()  # the node restarts while the rollback is still on the remote
    rev = restarted.refresh()
    assert rev.refused == "RollbackRefused"
    assert rev.applied == new and rev.desired is not None, "the last applied commit is kept"

    _signed(owner, "three\n")  # history moves on from the rollback, not from `new`
    assert restarted.refresh().applied == new
    git(owner, "reset", "-q", "--hard", new)
    after = _signed(owner, "four\n")
    assert restarted.refresh().applied == after, "a descendant of the last applied commit applies"


def test_an_openpgp_signature_is_refused_even_from_a_key_in_the_keyring(
        fleet_remote: Path, tmp_path: Path, signer: tuple[Path, Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    _, allowed = signer
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    monkeypatch.setenv("GNUPGHOME", str(home))  # the daemon user's keyring holds the key
    subprocess.run(["gpg", "--batch", "--quiet", "--passphrase", "", "--quick-gen-key",
                    "mallory@example.invalid", "ed25519", "sign", "never"], check=True,
                   capture_output=True)
    owner = clone_checkout(fleet_remote, tmp_path / "mallory", "mallory")
    git(owner, "config", "user.email", "mallory@example.invalid")
    git(owner, "config", "user.signingkey", "mallory@example.invalid")
    (owner / "README").write_text("pgp\n")
    git(owner, "add", "README")
    git(owner, "commit", "-q", "-S", "-m", "signed with OpenPGP")
    git(owner, "push", "-q", "origin", "HEAD:main")
    sha = git(owner, "rev-parse", "HEAD")
    ok = subprocess.run(["git", "-C", str(owner), "verify-commit", sha], capture_output=True)
    assert ok.returncode == 0, "git itself accepts the signature with this keyring"

    source = GitSource(str(fleet_remote), str(tmp_path / "node"), allowed_signers=str(allowed))
    rev = source.refresh()
    assert rev.seen == sha and rev.applied is None
    assert rev.refused == "UnsignedRevision"


def test_a_status_dated_in_the_future_is_stale_with_a_warning(tmp_path: Path) -> None:
    status = tmp_path / "status"
    shutil.copytree(REFERENCE_FLEET / ".status", status)
    seedbox = json.loads((status / "seedbox.json").read_text())
    now = datetime.fromisoformat(seedbox["observed_at"].replace("Z", "+00:00"))
    seedbox["observed_at"] = (now + timedelta(days=365)).isoformat()
    (status / "seedbox.json").write_text(json.dumps(seedbox))
    proc = subprocess.run(
        [str(TVA), "plan", str(REFERENCE_FLEET), "--status", str(status), "--json",
         "--now", now.isoformat()], capture_output=True, text=True, timeout=120,
        env={**os.environ})
    assert proc.returncode in (0, 2), proc.stderr
    plan = json.loads(proc.stdout)
    warnings = [w for w in plan["warnings"] if w["code"] == "status-from-future"]
    assert warnings and warnings[0]["node"] == "seedbox"
    assert not [a for a in plan["actions"] if a["node"] == "seedbox"], "a stale node does nothing"


def test_a_status_from_the_future_does_not_choose_the_plans_instant(tmp_path: Path) -> None:
    status = tmp_path / "status"
    shutil.copytree(REFERENCE_FLEET / ".status", status)
    seedbox = json.loads((status / "seedbox.json").read_text())
    newest_honest = max(
        datetime.fromisoformat(json.loads(f.read_text())["observed_at"].replace("Z", "+00:00"))
        for f in status.glob("*.json"))
    seedbox["observed_at"] = (datetime.now(UTC) + timedelta(days=365)).isoformat()
    (status / "seedbox.json").write_text(json.dumps(seedbox))
    proc = subprocess.run([str(TVA), "plan", str(REFERENCE_FLEET), "--status", str(status),
                           "--json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode in (0, 2), proc.stderr
    plan = json.loads(proc.stdout)
    assert datetime.fromisoformat(plan["now"].replace("Z", "+00:00")) == newest_honest
    assert [w for w in plan["warnings"] if w["code"] == "status-from-future"]


def test_a_repo_argument_that_looks_like_an_option_is_not_one(tmp_path: Path,
                                                              git_env: None) -> None:
    from controller.clients.git import ls_remote

    marker = tmp_path / "pwned"
    hostile = f"--upload-pack=touch {marker}"
    source = GitSource(hostile, str(tmp_path / "node"))
    rev = source.refresh()
    assert rev.applied is None and rev.error
    with pytest.raises(TvaError):
        ls_remote(hostile, ["refs/heads/main"], timeout=30)
    assert not marker.exists()
