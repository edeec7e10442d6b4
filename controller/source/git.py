"""The daemon's view of the fleet repo: fetch, validate each new revision, keep the last good one.

An invalid revision is never applied: the last good revision stays in force and the reason is
kept for status and logs (as Flux keeps the last applied revision and reports the failure).
Optionally only commits signed by a key the node trusts are accepted (``git verify-commit``
with an SSH allowed-signers file or the node's GnuPG keyring).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from controller.clients.git import GitRepo, RetryPolicy, clone, with_retries
from controller.errors import PermanentError, Problem, TemporaryError, ValidationFailed
from controller.source.gittree import load_revision

__all__ = ["GitSource", "Revision", "UnsignedRevision"]
from schemas.desired import DesiredState

_RETRY = RetryPolicy(attempts=3, initial=0.2, max_wait=5.0)
"""Clone and fetch: a few quick tries; the daemon's own backoff takes over after that."""


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
        self._repo: GitRepo | None = None
        self._last_good: tuple[str, DesiredState] | None = None
        self._last_checked: tuple[str, list[Problem], str | None] | None = None

    @property
    def repo(self) -> GitRepo:
        if self._repo is None:
            self._repo = self._open()
        return self._repo

    @property
    def checkout(self) -> str:
        """Path of the local clone (for the status transport, which shares it)."""
        return self.url if self.local else self.workdir

    def _open(self) -> GitRepo:
        if self.local:
            return GitRepo.open(self.url)
        if os.path.isdir(os.path.join(self.workdir, ".git")):
            return GitRepo.open(self.workdir)
        os.makedirs(os.path.dirname(os.path.abspath(self.workdir)), exist_ok=True)
        return clone(self.url, self.workdir, policy=_RETRY, no_checkout=True)

    def _fetch(self) -> None:
        if self.local:
            return
        what = f"fetching the fleet repo {self.url}"
        refspec = f"+refs/heads/{self.branch}:refs/remotes/origin/{self.branch}"
        with_retries(_RETRY, lambda: self.repo.run(
            "fetch", "--quiet", "--prune", "origin", refspec, what=what, timeout=_RETRY.timeout),
            what=what)

    def head(self) -> str:
        ref = self.branch if self.local else f"refs/remotes/origin/{self.branch}"
        sha = self.repo.commit_or_none(ref)
        if sha is None:
            raise PermanentError(f"the fleet repo has no branch {self.branch!r}")
        return sha

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
        if not self.repo.verify_commit(sha, self.allowed_signers):
            raise UnsignedRevision(
                f"revision {sha[:12]} is not signed by a key in {self.allowed_signers}; "
                "it will not be applied"
            )

    def read_committed(self, rev: str, path: str, limit: int) -> bytes | None:
        """A file of revision ``rev`` (e.g. a committed .torrent), at most ``limit`` bytes;
        None when it is not there or is larger."""
        data = self.repo.read_file(rev, path, limit)
        return data if data is not None and len(data) <= limit else None
