"""A verifying daemon (``--allowed-signers``) against a real remote with real SSH signatures:
a force-push back to an older signed commit is refused with a condition, across a restart."""

from __future__ import annotations

from pathlib import Path

from controller.daemon.daemon import Daemon
from tests.daemon.conftest import RULE, SoloFleet, wait_for
from tests.support.gitrepo import git, ssh_signer


def _signing(checkout: Path, key_dir: Path) -> Path:
    key, allowed = ssh_signer(key_dir)
    git(checkout, "config", "user.email", "owner@example.invalid")
    git(checkout, "config", "gpg.format", "ssh")
    git(checkout, "config", "user.signingkey", str(key))
    git(checkout, "config", "commit.gpgsign", "true")
    return allowed


def _commit(checkout: Path, files: dict[str, str], message: str) -> str:
    for rel, text in files.items():
        (checkout / rel).parent.mkdir(parents=True, exist_ok=True)
        (checkout / rel).write_text(text)
        git(checkout, "add", "--", rel)
    git(checkout, "commit", "-q", "-S", "-m", message)
    git(checkout, "push", "-q", "-f", "origin", "HEAD:main")
    return git(checkout, "rev-parse", "HEAD")


def _synced(d: Daemon) -> tuple[str, str] | None:
    last = d.last
    if last is None:
        return None
    c = next((c for c in last.status.conditions if c.type == "Synced"), None)
    return (c.status.value, c.reason) if c else None


def test_a_rollback_is_refused_with_a_condition_across_restarts(
        solo_fleet: SoloFleet, tmp_path: Path) -> None:
    allowed = _signing(solo_fleet.checkout, tmp_path / "keys")
    old = _commit(solo_fleet.checkout, {"README": "signed\n"}, "a signed start")
    d = solo_fleet.controller(allowed_signers=str(allowed))
    d.start()
    try:
        wait_for(lambda: d.last and d.last.desired.revision == old, what="the signed revision")
        new = _commit(solo_fleet.checkout, {"custody/films.yaml": RULE}, "keep one copy")
        wait_for(lambda: d.last and d.last.desired.revision == new, what="the next signed one")
        git(solo_fleet.checkout, "push", "-q", "-f", "origin", f"{old}:main")  # the rollback
        d.wakeup.notify("test")
        wait_for(lambda: _synced(d) == ("False", "RollbackRefused"), what="RollbackRefused")
        assert d.last is not None and d.last.desired.revision == new
    finally:
        d.stop()
    assert (solo_fleet.state_dir / "solo.applied-revision").read_text().strip() == new

    again = solo_fleet.controller(allowed_signers=str(allowed))
    again.start()
    try:
        wait_for(lambda: _synced(again) == ("False", "RollbackRefused"), what="refused again")
        assert again.last is not None and again.last.desired.revision == new, \
            "the last applied commit is in force after the restart"
    finally:
        again.stop()
