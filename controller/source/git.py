"""The daemon's view of the fleet repo: fetch, validate each new revision, keep the last good one.

An invalid revision is never applied: the last good revision stays in force and the reason is
kept for status and logs (as Flux keeps the last applied revision and reports the failure).
Optionally only commits signed by a key the node trusts are accepted (``git verify-commit``
with an SSH allowed-signers file; OpenPGP and X.509 signatures are refused, see
``GitRepo.verify_commit``). Under verification, history only moves forward: a tip that does
not descend from the last applied commit (a force-push back to an older signed commit, or to
another branch of signed history) is refused. The last applied commit is kept in a file of
the state dir, so a restart neither forgets it nor accepts a rollback made while it was down;
after a restart it is loaded again while the tip is refused.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass, field

from controller.atomic import write_atomic
from controller.clients.git import GitRepo, RetryPolicy, clone, with_retries
from controller.errors import PermanentError, Problem, TemporaryError, ValidationFailed
from controller.source.gittree import load_revision
from schemas.desired import DesiredState

__all__ = ["GitSource", "Revision", "RevisionRefused", "RollbackRefused", "UnsignedRevision"]

_RETRY = RetryPolicy(attempts=3, initial=0.2, max_wait=5.0)
"""Clone and fetch: a few quick tries; the daemon's own backoff takes over after that."""


class RevisionRefused(PermanentError):
    """The revision is not trusted; ``reason`` is the condition's reason."""

    reason = "RevisionRefused"


class UnsignedRevision(RevisionRefused):
    """The revision is not signed by a trusted key."""

    reason = "UnsignedRevision"


class RollbackRefused(RevisionRefused):
    """The revision does not descend from the last applied one (rollback or force-push)."""

    reason = "RollbackRefused"


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
    refused: str | None = None
    """When ``seen`` is refused as untrusted: why, as a condition reason (``UnsignedRevision``,
    ``RollbackRefused``)."""

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
        applied_file: str | None = None,
    ) -> None:
        """``applied_file`` keeps the last applied commit across restarts (in the state dir)."""
        self.url = url
        self.workdir = workdir
        self.branch = branch
        self.local = local
        self.allowed_signers = allowed_signers
        self._repo: GitRepo | None = None
        self._last_good: tuple[str, DesiredState] | None = None
        self._last_checked: tuple[str, list[Problem], str | None, str | None] | None = None
        self.applied_file = applied_file
        self._anchor = self._read_anchor()
        """The last applied commit (this run or an earlier one): the tip must descend from it."""

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
        if self._last_good is None:
            self._restore(seen)
        if self._last_good is not None and self._last_good[0] == seen:
            return self._keep(seen, [], None)
        if self._last_checked is not None and self._last_checked[0] == seen:
            # Already found invalid: do not re-validate an unchanged bad revision every pass.
            return self._keep(seen, *self._last_checked[1:])
        try:
            self._verify(seen)
            desired = load_revision(self.repo, seen).desired
        except ValidationFailed as e:
            self._last_checked = (seen, e.problems, None, None)
            return self._keep(seen, e.problems, None)
        except RevisionRefused as e:
            self._last_checked = (seen, [], str(e), e.reason)
            return self._keep(seen, [], str(e), e.reason)
        self._last_good = (seen, desired)
        self._last_checked = None
        self._remember(seen)
        return Revision(seen=seen, desired=desired, applied=seen)

    def _keep(self, seen: str | None, problems: list[Problem], error: str | None,
              refused: str | None = None) -> Revision:
        good = self._last_good
        return Revision(
            seen=seen,
            desired=good[1] if good else None,
            applied=good[0] if good else None,
            problems=problems,
            error=error,
            refused=refused,
        )

    def _verify(self, sha: str) -> None:
        if self.allowed_signers is None:
            return
        if not self.repo.verify_commit(sha, self.allowed_signers):
            raise UnsignedRevision(
                f"revision {sha[:12]} is not signed by a key in {self.allowed_signers} (SSH "
                "signatures only); it will not be applied"
            )
        anchor = self._anchor
        if anchor is not None and anchor != sha and not self.repo.is_ancestor(anchor, sha):
            raise RollbackRefused(
                f"revision {sha[:12]} does not descend from the last applied revision "
                f"{anchor[:12]} (a rollback or a force-push); it will not be applied"
            )

    def _restore(self, seen: str) -> None:
        """After a restart under verification, put the last applied commit back in force (when
        the clone still has it), so a refused tip does not leave the node with nothing."""
        anchor = self._anchor
        if anchor is None or self.allowed_signers is None or anchor == seen:
            return
        if self.repo.commit_or_none(anchor) is None:
            return
        try:
            if not self.repo.verify_commit(anchor, self.allowed_signers):
                return
            self._last_good = (anchor, load_revision(self.repo, anchor).desired)
        except (ValidationFailed, TemporaryError, PermanentError):
            return

    def _read_anchor(self) -> str | None:
        if self.applied_file is None:
            return None
        try:
            with open(self.applied_file, encoding="ascii") as f:
                text = f.read(100).strip()
        except (OSError, UnicodeDecodeError):
            return None
        return text if re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", text) else None

    def _remember(self, sha: str) -> None:
        self._anchor = sha
        if self.applied_file is not None and self._read_anchor() != sha:
            with contextlib.suppress(OSError):  # the in-memory anchor still holds for this run
                write_atomic(self.applied_file, (sha + "\n").encode())

    def read_committed(self, rev: str, path: str, limit: int) -> bytes | None:
        """A file of revision ``rev`` (e.g. a committed .torrent), at most ``limit`` bytes;
        None when it is not there or is larger."""
        data = self.repo.read_file(rev, path, limit)
        return data if data is not None and len(data) <= limit else None
