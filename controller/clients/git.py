"""The git client: every git command tva runs and every read of a repository's objects.

A push, fetch or clone must never hang a controller (a credential prompt, a dead SSH link), and
its failure must say whether trying again can help. git reports everything as text on stderr;
this module sorts it into ``UnreachableError`` (the remote could not be reached),
``TemporaryError`` (a ref lock is busy), ``AuthError`` and ``PermanentError``, and retries only
the temporary ones (``with_retries``), with capped exponential backoff and jitter and a bounded
number of attempts.

``GitRepo`` wraps one repository (a checkout or a bare repo) and offers exactly the reads and
writes tva needs: resolving revisions, listing and reading blobs of a commit without a working
tree, writing a commit straight into the object store (status publishing), verifying a
signature. gitpython is imported here and nowhere else in the product (the import contract
checks it).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from io import BytesIO
from typing import Any, Self, TypeVar

import git
from gitdb import IStream, LooseObjectDB  # type: ignore[import-untyped]
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from controller.errors import AuthError, PermanentError, TemporaryError, UnreachableError

__all__ = [
    "Blob",
    "GitRepo",
    "RetryPolicy",
    "RevisionNotFound",
    "clone",
    "init_repo",
    "ls_remote",
    "run_git",
    "translate",
    "with_retries",
]

log = logging.getLogger("tva.git")

T = TypeVar("T")

# No credential prompt may block a daemon: fail instead, and say so.
_ENV = {"GIT_TERMINAL_PROMPT": "0", "GCM_INTERACTIVE": "never"}

_TIMEOUT = ("did not complete in",)
_AUTH = (
    "permission denied",
    "authentication failed",
    "could not read username",
    "could not read password",
    "terminal prompts disabled",
    "host key verification failed",
    "returned error: 401",
    "returned error: 403",
)
# Checked before _REJECTED: a busy lock on the remote comes back as "[remote rejected] ...
# (failed to update ref)" after "cannot lock ref".
_BUSY = (
    "cannot lock ref",
    "unable to create",
    "failed to lock",
    "failed to update ref",
    "but expected",
    "index.lock",
)
_REJECTED = (
    "[rejected]",
    "remote rejected",
    "denying non-fast-forward",
    "non-fast-forward",
    "hook declined",
)
_UNREACHABLE = (
    "does not appear to be a git repository",
    "could not read from remote repository",
    "unable to access",
    "could not resolve host",
    "temporary failure in name resolution",
    "connection refused",
    "connection timed out",
    "connection reset",
    "network is unreachable",
    "no route to host",
    "the remote end hung up",
    "early eof",
    "failed to connect",
    "couldn't connect",
    "ssh: connect to host",
    "returned error: 5",
)


class RevisionNotFound(PermanentError):
    """The revision does not exist in the repository."""


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try a push or fetch before giving up with the last error."""

    attempts: int = 5
    """Tries in all, the first included."""
    initial: float = 0.5
    """Seconds before the first retry; each later wait doubles, plus jitter."""
    max_wait: float = 10.0
    """Cap on one wait, seconds."""
    timeout: float = 60.0
    """A single git command is killed after this many seconds (and counts as unreachable)."""


def run_git(repo: GitRepo | str | os.PathLike[str] | None, args: Sequence[str], *, what: str,
            timeout: float, env: Mapping[str, str] | None = None) -> str:
    """Run ``git ARGS`` in ``repo`` (a ``GitRepo`` or a directory; None: outside any repository,
    for ``clone`` and ``ls-remote``); a failure becomes a tva error that names ``what`` failed."""
    if isinstance(repo, GitRepo):
        runner = repo._repo.git
    elif repo is not None:
        runner = git.cmd.Git(os.fspath(repo))
    else:
        runner = git.cmd.Git()
    try:
        out = runner.execute(["git", *args], env={**_ENV, **(env or {})},
                             kill_after_timeout=timeout)
    except git.GitCommandError as e:
        raise translate(e, what) from e
    except git.CommandError as e:
        raise PermanentError(f"{what}: cannot run git: {e}") from e
    return str(out)


_VERDICTS: tuple[tuple[tuple[str, ...], Callable[[str, str], Exception]], ...] = (
    (_TIMEOUT, lambda what, why: UnreachableError(f"{what}: git did not finish in time ({why})")),
    (_AUTH, lambda what, why: AuthError(
        f"{what}: access refused ({why}); check the node's git credentials and the "
        "permissions of the repository")),
    (_BUSY, lambda what, why: TemporaryError(
        f"{what}: a ref is locked by another git process ({why})")),
    (_REJECTED, lambda what, why: PermanentError(
        f"{what}: the remote refused the update ({why}); it must accept forced pushes to the "
        "status refs")),
    (_UNREACHABLE, lambda what, why: UnreachableError(
        f"{what}: the remote cannot be reached ({why})")),
)
"""git's messages, in the order they are checked, and the tva error each one means."""


def translate(e: git.GitCommandError, what: str) -> Exception:
    """The tva error for a failed git command: temporary only when a retry can succeed."""
    text = _text(e.stderr) or _text(e.stdout) or str(e)
    low = text.lower()
    reason = _reason(text)
    for patterns, verdict in _VERDICTS:
        if any(p in low for p in patterns):
            return verdict(what, reason)
    return PermanentError(f"{what}: {reason}")


def with_retries(policy: RetryPolicy, fn: Callable[[], T], *, what: str) -> T:
    """Call ``fn``, retrying ``TemporaryError`` by ``policy``; the last error says how often."""

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning("%s failed (attempt %d), retrying in %.1fs: %s", what, state.attempt_number, wait, exc)

    retrying = Retrying(
        retry=retry_if_exception_type(TemporaryError),
        # Capped exponential backoff plus jitter, so nodes that failed together do not retry
        # together.
        wait=wait_exponential(multiplier=policy.initial, max=policy.max_wait)
        + wait_random(0, policy.initial),
        stop=stop_after_attempt(max(1, policy.attempts)),
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        return retrying(fn)
    except TemporaryError as e:
        attempts = retrying.statistics.get("attempt_number", 1)
        raise type(e)(f"{e} (gave up after {attempts} attempts)", delay=e.delay) from e


def ls_remote(url: str, patterns: Sequence[str], *, timeout: float = 30.0) -> str:
    """``git ls-remote URL PATTERNS`` (no prompt, a time limit). ``--`` keeps a URL that
    starts with a dash from being read as an option."""
    return run_git(None, ["ls-remote", "--", url, *patterns], what=f"polling {url}",
                   timeout=timeout)


def clone(url: str, dest: str | os.PathLike[str], *, policy: RetryPolicy, bare: bool = False,
          no_checkout: bool = False) -> GitRepo:
    """Clone ``url`` into ``dest`` with retries; the new repository."""
    what = f"cloning {url}"
    flags = ["--quiet"] + (["--bare"] if bare else []) + (["--no-checkout"] if no_checkout else [])
    with_retries(policy, lambda: run_git(None, ["clone", *flags, "--", url, os.fspath(dest)],
                                         what=what, timeout=policy.timeout), what=what)
    return GitRepo.open(dest)


def init_repo(path: str | os.PathLike[str], *, branch: str = "main", bare: bool = False) -> GitRepo:
    """``git init`` (a new repository at ``path``, or the existing one re-initialised)."""
    args = ["init", "--quiet", "-b", branch] + (["--bare"] if bare else []) + ["--", os.fspath(path)]
    run_git(None, args, what=f"creating a git repository in {path}", timeout=60.0)
    return GitRepo.open(path)


@dataclass(frozen=True)
class Blob:
    """A file of a commit: its path, size, and a bounded read of its bytes."""

    path: str
    size: int
    _obj: Any

    def read(self, limit: int) -> bytes:
        """At most ``limit + 1`` bytes (so a caller can tell "too large" from "exactly limit")."""
        return bytes(self._obj.data_stream.read(limit + 1))


class GitRepo:
    """One git repository (a checkout or a bare repo): the reads and writes tva needs."""

    def __init__(self, repo: git.Repo) -> None:
        self._repo = repo

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, missing: str | None = None) -> GitRepo:
        """Open the repository at ``path``; ``missing`` is the message when it is not one."""
        try:
            return cls(git.Repo(os.fspath(path), search_parent_directories=False))
        except (git.NoSuchPathError, git.InvalidGitRepositoryError) as e:
            raise PermanentError(missing or f"{path} is not a git repository") from e

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the git helper processes kept by the repository object."""
        self._repo.close()

    @property
    def path(self) -> str:
        """The working tree, or the git directory of a bare repository."""
        return str(self._repo.working_dir or self._repo.git_dir)

    @property
    def git_dir(self) -> str:
        return str(self._repo.git_dir)

    def run(self, *args: str, what: str, timeout: float = 60.0,
            env: Mapping[str, str] | None = None) -> str:
        """``git ARGS`` in this repository; errors translated (see ``run_git``)."""
        return run_git(self, args, what=what, timeout=timeout, env=env)

    def remotes(self) -> set[str]:
        return {r.name for r in self._repo.remotes}

    # -- revisions ------------------------------------------------------------------------------

    def resolve(self, rev: str) -> str:
        """The full commit id of ``rev`` (a branch, tag, ref or id)."""
        try:
            return str(self._repo.commit(rev).hexsha)
        except (git.BadName, ValueError, git.GitCommandError) as e:
            raise RevisionNotFound(f"revision {rev!r} not found in {self.path}") from e

    def commit_or_none(self, ref: str, *, timeout: float = 60.0) -> str | None:
        """The commit ``ref`` points to, or None when there is none."""
        try:
            out = self._repo.git.execute(
                ["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
                kill_after_timeout=timeout,
            )
        except git.GitCommandError:
            return None
        return str(out).strip() or None

    def message(self, sha: str) -> str | None:
        """The commit message of ``sha``; None when it cannot be read."""
        try:
            return str(self._repo.commit(sha).message)
        except (ValueError, git.BadName, git.GitCommandError):
            return None

    def first_parents(self, sha: str, max_count: int) -> Iterator[str]:
        """``sha`` and its first-parent ancestors, newest first, at most ``max_count``."""
        for commit in self._repo.iter_commits(sha, first_parent=True, max_count=max_count):
            yield str(commit.hexsha)

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        """Does ``descendant`` contain ``ancestor`` in its history (or equal it)?"""
        try:
            self._repo.git.execute(["git", "merge-base", "--is-ancestor", ancestor, descendant])
        except git.GitCommandError:
            return False
        return True

    # -- reading a commit's files ---------------------------------------------------------------

    def blobs(self, rev: str) -> dict[str, Blob]:
        """Every file of ``rev``'s tree, by path (no working tree involved)."""
        sha = self.resolve(rev)
        out: dict[str, Blob] = {}
        for obj in self._repo.commit(sha).tree.traverse():
            if isinstance(obj, git.Blob):
                out[str(obj.path)] = Blob(str(obj.path), int(obj.size), obj)
        return out

    def read_file(self, rev: str, path: str, limit: int) -> bytes | None:
        """The bytes of one file of ``rev`` (at most ``limit + 1``); None when it is not a file
        there or cannot be read."""
        try:
            obj = self._repo.commit(rev).tree / path
        except (KeyError, ValueError, git.BadName, git.GitCommandError):
            return None
        if obj.type != "blob":
            return None
        try:
            return bytes(obj.data_stream.read(limit + 1))
        except (ValueError, git.GitError):
            return None

    def file_size(self, rev: str, path: str) -> int | None:
        """The size of one file of ``rev``, or None when it is not a file there."""
        try:
            obj = self._repo.commit(rev).tree / path
        except (KeyError, ValueError, git.BadName, git.GitCommandError):
            return None
        return int(obj.size) if obj.type == "blob" else None

    # -- writing --------------------------------------------------------------------------------

    def write_commit(self, files: Mapping[str, bytes], *, parent: str | None, identity: str,
                     when: int, message: str) -> str:
        """Write a commit of ``files`` (flat, top-level names) straight into the object store;
        no ref, index or working tree changes. ``identity`` is ``Name <email>``; ``when`` the
        epoch seconds of author and committer. Returns the commit id."""
        # Written in-process (gitpython's own store runs one `git hash-object` per object).
        odb = LooseObjectDB(os.path.join(self._repo.common_dir, "objects"))
        entries = b""
        for name in sorted(files):
            data = files[name]
            blob = odb.store(IStream(b"blob", len(data), BytesIO(data)))
            entries += f"100644 {name}".encode() + b"\0" + blob.binsha
        tree = odb.store(IStream(b"tree", len(entries), BytesIO(entries)))
        who = f"{identity} {max(0, when)} +0000"
        lines = [f"tree {tree.hexsha.decode()}"]
        if parent is not None:
            lines.append(f"parent {parent}")
        lines += [f"author {who}", f"committer {who}", "", message]
        commit_data = "\n".join(lines).encode()
        commit = odb.store(IStream(b"commit", len(commit_data), BytesIO(commit_data)))
        return str(commit.hexsha.decode())

    def commit_all(self, message: str, *, env: Mapping[str, str] | None = None) -> str:
        """``git add -A`` and commit (hooks skipped); the new commit id."""
        what = f"committing in {self.path}"
        self.run("add", "-A", what=what)
        self.run("commit", "--quiet", "--no-verify", "-m", message, what=what, env=env)
        return self.resolve("HEAD")

    def has_identity(self) -> bool:
        """Is a commit identity configured for this repository (any level)?"""
        try:
            return bool(self._repo.git.config("user.name")) and bool(self._repo.git.config("user.email"))
        except git.GitCommandError:
            return False

    # -- trust ----------------------------------------------------------------------------------

    def signature_kind(self, sha: str) -> str | None:
        """The kind of ``sha``'s signature as written in the commit: ``ssh``, ``openpgp``,
        ``x509`` or ``other``; None when it is not signed."""
        try:
            raw = str(self._repo.git.execute(["git", "cat-file", "commit", sha]))
        except git.GitCommandError:
            return None
        header, _, _ = raw.partition("\n\n")
        sig = next((ln for ln in header.splitlines() if ln.startswith("gpgsig ")), None)
        if sig is None:
            return None
        armour = sig.removeprefix("gpgsig ").strip()
        for begin, kind in _SIGNATURE_KINDS:
            if armour.startswith(begin):
                return kind
        return "other"

    def verify_commit(self, sha: str, allowed_signers: str) -> bool:
        """Is ``sha`` signed by a key in the SSH ``allowed_signers`` file, and by nothing else?

        git verifies a signature with the program its armour names, whatever ``gpg.format``
        says, so an OpenPGP or X.509 signature would be checked against the daemon user's
        keyring. Only SSH signatures are looked at; the others are refused before git runs,
        and the OpenPGP and X.509 programs are set to ``false`` for good measure.
        """
        if self.signature_kind(sha) != "ssh":
            return False
        try:
            self._repo.git.execute([
                "git", "-c", "gpg.format=ssh",
                "-c", f"gpg.ssh.allowedSignersFile={allowed_signers}",
                "-c", "gpg.openpgp.program=false", "-c", "gpg.x509.program=false",
                "verify-commit", "--", sha,
            ])
        except git.GitCommandError:
            return False
        return True


_SIGNATURE_KINDS = (
    ("-----BEGIN SSH SIGNATURE-----", "ssh"),
    ("-----BEGIN PGP SIGNATURE-----", "openpgp"),
    ("-----BEGIN PGP MESSAGE-----", "openpgp"),
    ("-----BEGIN SIGNED MESSAGE-----", "x509"),
)


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace").strip()
    return str(value).strip() if value else ""


def _reason(text: str) -> str:
    """The most telling line of git's message (gitpython wraps it in quotes and a prefix)."""
    lines = [ln.strip().removeprefix("stderr:").strip().strip("'").strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not ln.lower().startswith(("please make sure", "and the repository"))]
    fatal = [ln for ln in lines if ln.lower().startswith(("fatal:", "error:", "remote: error:", " !", "!"))]
    return (fatal or lines or ["git failed"])[0]
