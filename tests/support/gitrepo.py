"""Real git repositories for tests: a bare "remote" fleet repo and clones of it.

The remote is seeded with a copy of the reference fleet (fleet-state/) committed on ``main``;
each clone is a node's own checkout, with ``user.name``/``user.email`` set in the clone only.
git runs with the developer's global and system configuration hidden (``GIT_CONFIG_GLOBAL``
points at an empty file, ``GIT_CONFIG_NOSYSTEM=1``), so a global hook, signing setting or
default branch name cannot change a test; nothing is written to any global configuration.

Fixtures: ``git_env`` (the isolation), ``fleet_remote`` (a seeded bare repo), ``clone`` (a
factory: ``clone(remote, "nas")``). Plain helpers for other fixtures: ``git``,
``make_fleet_remote``, ``clone_checkout``, ``commit_files``.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

REFERENCE_FLEET = Path(__file__).resolve().parents[2] / "fleet-state"


def git(cwd: Path | str, *args: str, input: bytes | None = None) -> str:
    """Run git in ``cwd`` and return its stdout (stripped); fails the test on error."""
    proc = subprocess.run(
        ["git", *args], cwd=cwd, input=input, capture_output=True, check=False, timeout=60
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"git {' '.join(args)} failed in {cwd} ({proc.returncode}): "
            f"{proc.stderr.decode(errors='replace').strip()}"
        )
    return proc.stdout.decode(errors="replace").strip()


def ssh_signer(key_dir: Path, email: str = "owner@example.invalid") -> tuple[Path, Path]:
    """A real SSH signing key (``ssh-keygen``) and an allowed-signers file trusting it."""
    key = key_dir / "owner"
    key_dir.mkdir(parents=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "owner", "-f", str(key)],
                   check=True)
    allowed = key_dir / "allowed_signers"
    allowed.write_text(f"{email} {key.with_suffix('.pub').read_text()}")
    return key, allowed


def _identify(checkout: Path, name: str) -> None:
    git(checkout, "config", "user.name", name)
    git(checkout, "config", "user.email", f"{name}@example.invalid")


def make_fleet_remote(path: Path, source: Path = REFERENCE_FLEET, *, branch: str = "main") -> Path:
    """A bare repo at ``path`` whose ``branch`` holds one commit: a copy of ``source``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    git(path.parent, "init", "--quiet", "--bare", f"--initial-branch={branch}", str(path))
    with tempfile.TemporaryDirectory(prefix="seed-", dir=path.parent) as tmp:
        work = Path(tmp) / "work"
        shutil.copytree(source, work)
        git(work, "init", "--quiet", f"--initial-branch={branch}")
        _identify(work, "fleet-owner")
        git(work, "add", "--all")
        git(work, "commit", "--quiet", "--no-gpg-sign", "-m", "The fleet")
        git(work, "push", "--quiet", str(path), f"{branch}:{branch}")
    return path


def clone_checkout(remote: Path, dest: Path, name: str) -> Path:
    """Clone ``remote`` to ``dest`` as node ``name`` would (``origin`` is the remote)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    git(dest.parent, "clone", "--quiet", str(remote), str(dest))
    _identify(dest, name)
    return dest


def commit_files(checkout: Path, files: Mapping[str, str | None], message: str, *, push: bool = True) -> str:
    """Write (text) or delete (None) files in a checkout, commit, optionally push; the commit id."""
    for rel, text in files.items():
        target = checkout / rel
        if text is None:
            git(checkout, "rm", "--quiet", "-r", "--", rel)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        git(checkout, "add", "--", rel)
    git(checkout, "commit", "--quiet", "--no-gpg-sign", "-m", message)
    if push:
        git(checkout, "push", "--quiet", "origin", "HEAD")
    return git(checkout, "rev-parse", "HEAD")


@pytest.fixture
def git_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hide the developer's git configuration from every git this test runs."""
    empty = tmp_path_factory.mktemp("gitconfig") / "config"
    empty.write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(empty))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_TERMINAL_PROMPT", "0")
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fleet_remote(tmp_path: Path, git_env: None) -> Path:
    """A bare "remote" fleet repo seeded with the reference fleet on ``main``."""
    return make_fleet_remote(tmp_path / "remote" / "fleet.git")


@pytest.fixture
def clone(tmp_path: Path, git_env: None) -> Callable[[Path, str], Path]:
    """Factory: ``clone(remote, name)`` -> a checkout of ``remote`` for node ``name``."""

    def make(remote: Path, name: str) -> Path:
        return clone_checkout(remote, tmp_path / "nodes" / name / "fleet", name)

    return make
