"""The daemon's view of the fleet repo: fetch, validate each new revision, keep the last good one.

An invalid revision is never applied: the last good revision stays in force and the reason is
kept for status and logs (as Flux keeps the last applied revision and reports the failure).
Optionally only commits signed by a key the node trusts are accepted (``git verify-commit``
with an SSH allowed-signers file or the node's GnuPG keyring).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import git
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from controller.errors import (
    PermanentError,
    Problem,
    TemporaryError,
    UnreachableError,
    ValidationFailed,
)
from controller.source.gittree import load_revision
from schemas.desired import DesiredState


class UnsignedRevision(PermanentError):
    """The revision is not signed by a trusted key."""


@dataclass
class Revision:
    """The outcome of looking at the source once."""

    seen: str | None
    """The newest revision the source offers (None when it could not be read)."""
    desired: DesiredState | None
    """The desired state in force: the newest valid revision, else the last good one."""
    applied: str | None
    """The revision of ``desired``."""
    problems: list[Problem] = field(default_factory=list)
    """Why ``seen`` is not in force, when it is not."""
    error: str | None = None
    """A fetch or signature error, when there was one."""

    @property
    def current(self) -> bool:
        return self.seen is not None and self.seen == self.applied


class GitSource:
    """A fleet repo followed by one node.

    ``url`` is a remote (any git URL or a path to a bare repo): it is cloned into ``workdir``
    and fetched on ``refresh()``. With ``local=True``, ``url`` is a local checkout whose
    ``branch`` is read as it is, with no fetch (for a single machine, or to try changes).
    """

    def __init__(
        self,
        url: str,
        workdir: str,
        *,
        branch: str = "main",
        local: bool = False,
        allowed_signers: str | None = None,
    ) -> None:
        self.url = url
        self.workdir = workdir
        self.branch = branch
        self.local = local
        self.allowed_signers = allowed_signers
        self._repo: git.Repo | None = None
        self._last_good: tuple[str, DesiredState] | None = None
        self._last_checked: tuple[str, list[Problem], str | None] | None = None

    @property
    def repo(self) -> git.Repo:
        if self._repo is None:
            self._repo = self._open()
        return self._repo

    @property
    def checkout(self) -> str:
        """Path of the local clone (for the status transport, which shares it)."""
        return self.url if self.local else self.workdir

    def _open(self) -> git.Repo:
        if self.local:
            try:
                return git.Repo(self.url)
            except (git.NoSuchPathError, git.InvalidGitRepositoryError) as e:
                raise PermanentError(f"{self.url} is not a git repository") from e
        if os.path.isdir(os.path.join(self.workdir, ".git")):
            return git.Repo(self.workdir)
        os.makedirs(os.path.dirname(os.path.abspath(self.workdir)), exist_ok=True)
        try:
            return _clone(self.url, self.workdir)
        except git.GitCommandError as e:
            raise UnreachableError(f"cannot clone the fleet repo {self.url}: {_git_reason(e)}") from e

    def _fetch(self) -> None:
        if self.local:
            return
        try:
            _fetch(self.repo, self.branch)
        except git.GitCommandError as e:
            raise UnreachableError(f"cannot fetch the fleet repo {self.url}: {_git_reason(e)}") from e

    def head(self) -> str:
        ref = self.branch if self.local else f"refs/remotes/origin/{self.branch}"
        try:
            return str(self.repo.commit(ref).hexsha)
        except (git.BadName, ValueError) as e:
            raise PermanentError(f"the fleet repo has no branch {self.branch!r}") from e

    def refresh(self) -> Revision:
        """Fetch, and move to the newest revision if it is valid (and signed, if required)."""
        try:
            self._fetch()
            seen = self.head()
        except (TemporaryError, PermanentError) as e:
            return self._keep(None, [], str(e))
        if self._last_good is not None and self._last_good[0] == seen:
            return self._keep(seen, [], None)
        if self._last_checked is not None and self._last_checked[0] == seen:
            # Already found invalid: do not re-validate an unchanged bad revision every pass.
            return self._keep(seen, self._last_checked[1], self._last_checked[2])
        try:
            self._verify_signature(seen)
            desired = load_revision(self.repo, seen).desired
        except ValidationFailed as e:
            self._last_checked = (seen, e.problems, None)
            return self._keep(seen, e.problems, None)
        except UnsignedRevision as e:
            self._last_checked = (seen, [], str(e))
            return self._keep(seen, [], str(e))
        self._last_good = (seen, desired)
        self._last_checked = None
        return Revision(seen=seen, desired=desired, applied=seen)

    def _keep(self, seen: str | None, problems: list[Problem], error: str | None) -> Revision:
        good = self._last_good
        return Revision(
            seen=seen,
            desired=good[1] if good else None,
            applied=good[0] if good else None,
            problems=problems,
            error=error,
        )

    def _verify_signature(self, sha: str) -> None:
        if self.allowed_signers is None:
            return
        try:
            self.repo.git.execute(
                [
                    "git", "-c", "gpg.format=ssh",
                    "-c", f"gpg.ssh.allowedSignersFile={self.allowed_signers}",
                    "verify-commit", sha,
                ]
            )
        except git.GitCommandError as e:
            raise UnsignedRevision(
                f"revision {sha[:12]} is not signed by a key in {self.allowed_signers}; "
                "it will not be applied"
            ) from e


_retry_git = retry(
    retry=retry_if_exception_type(git.GitCommandError),
    wait=wait_exponential_jitter(multiplier=0.2, max=5),
    stop=stop_after_attempt(3),
    reraise=True,
)


@_retry_git
def _clone(url: str, workdir: str) -> git.Repo:
    return git.Repo.clone_from(url, workdir, no_checkout=True)


@_retry_git
def _fetch(repo: git.Repo, branch: str) -> None:
    repo.git.fetch("--quiet", "--prune", "origin", f"+refs/heads/{branch}:refs/remotes/origin/{branch}")


def _git_reason(e: git.GitCommandError) -> str:
    text = (e.stderr or str(e)).strip().splitlines()
    lines = [line.strip().removeprefix("stderr: ").strip("'") for line in text if line.strip()]
    return lines[-1] if lines else "git failed"
