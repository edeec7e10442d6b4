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

The fleet repo is attacker-controlled, so validating a revision runs in a worker thread within
the loader's budget (``controller.desired.loader.Budget``): a pass waits for it at most
``wait`` seconds, then goes on with the last good revision (status keeps being published) and
the next pass picks up the verdict. Any failure of the loader makes the revision invalid.

The clone in the state dir is the node's own: when it is damaged (it no longer opens, or the
remote answers but the clone cannot fetch from it), it is moved aside and cloned again.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from controller.atomic import write_atomic
from controller.clients.git import GitRepo, RetryPolicy, clone, ls_remote, with_retries
from controller.desired.loader import INTERNAL, Budget
from controller.errors import PermanentError, Problem, TemporaryError, ValidationFailed
from controller.source.gittree import load_revision
from schemas.desired import DesiredState

__all__ = ["GitSource", "Revision", "RevisionRefused", "RollbackRefused", "UnsignedRevision"]

log = logging.getLogger("tva.source")

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
    validating: bool = False
    """``seen`` is still being validated (the last good revision stays in force meanwhile)."""
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
        budget: Budget | None = None,
        wait: float = 10.0,
        on_validated: Callable[[], None] | None = None,
        applied_file: str | None = None,
    ) -> None:
        """``applied_file`` keeps the last applied commit across restarts (in the state dir)."""
        self.url = url
        self.workdir = workdir
        self.branch = branch
        self.local = local
        self.allowed_signers = allowed_signers
        self.budget = budget or Budget()
        self.wait = wait
        """Seconds a refresh waits for a new revision's validation before going on without it."""
        self.on_validated = on_validated
        """Called from the worker when a validation ends (the daemon looks again then)."""
        self.generation = 0
        """Grows each time the clone is replaced (users of ``checkout`` reopen it then)."""
        self._repo: GitRepo | None = None
        self._last_good: tuple[str, DesiredState] | None = None
        self._origins: dict[str, dict[tuple[str, str], tuple[str, int]]] = {}
        """Where the resources of the last validated revisions are declared (``origins``)."""
        self._last_checked: tuple[str, list[Problem], str | None, str | None] | None = None
        self.applied_file = applied_file
        self._anchor = self._read_anchor()
        """The last applied commit (this run or an earlier one): the tip must descend from it."""
        self._validating: tuple[str, int, concurrent.futures.Future[DesiredState]] | None = None
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="tva-validate")

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
        if os.path.lexists(self.workdir):
            try:
                repo = GitRepo.open(self.workdir)
                repo.run("rev-parse", "--git-dir", what=f"opening {self.workdir}", timeout=_RETRY.timeout)
                return repo
            except (PermanentError, TemporaryError) as e:
                self._move_aside(str(e))
        os.makedirs(os.path.dirname(os.path.abspath(self.workdir)), exist_ok=True)
        return clone(self.url, self.workdir, policy=_RETRY, no_checkout=True)

    def _move_aside(self, why: str) -> None:
        """Keep a damaged clone for inspection (``<workdir>.damaged-<time>``); the next open
        clones again."""
        if self._repo is not None:
            self._repo.close()
            self._repo = None
        aside = f"{self.workdir}.damaged-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
        os.replace(self.workdir, aside)
        self.generation += 1
        log.warning("the clone of the fleet repo is damaged (%s); moved to %s, cloning again", why,
                    aside, extra={"event": "clone-damaged", "aside": aside})

    def _fetch(self) -> None:
        if self.local:
            return
        what = f"fetching the fleet repo {self.url}"
        refspec = f"+refs/heads/{self.branch}:refs/remotes/origin/{self.branch}"

        def fetch() -> None:
            with_retries(_RETRY, lambda: self.repo.run(
                "fetch", "--quiet", "--prune", "origin", refspec, what=what, timeout=_RETRY.timeout),
                what=what)

        try:
            fetch()
        except PermanentError as e:
            # The remote answers but this clone cannot fetch from it: the clone is the problem.
            try:
                offered = ls_remote(self.url, [f"refs/heads/{self.branch}"], timeout=_RETRY.timeout)
            except (PermanentError, TemporaryError):
                raise e from None
            if not offered.strip():
                raise e from None  # the remote has no such branch: nothing wrong with the clone
            self._move_aside(str(e))
            fetch()

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
        except RevisionRefused as e:
            self._last_checked = (seen, [], str(e), e.reason)
            return self._keep(seen, [], str(e), e.reason)
        if self._validating is None or self._validating[:2] != (seen, self.generation):
            # (A clone replaced meanwhile may have failed the worker: validate again.)
            self._validating = (seen, self.generation, self._pool.submit(self._validate, seen))
        future = self._validating[2]
        try:
            desired = future.result(timeout=self.wait)
        except concurrent.futures.TimeoutError:
            return self._keep(seen, [], None, validating=True)
        except ValidationFailed as e:
            self._validating = None
            self._last_checked = (seen, e.problems, None, None)
            return self._keep(seen, e.problems, None)
        self._validating = None
        self._last_good = (seen, desired)
        self._last_checked = None
        self._remember(seen)
        return Revision(seen=seen, desired=desired, applied=seen)

    def _validate(self, sha: str) -> DesiredState:
        """Load ``sha`` in the worker, through a repository object of its own (gitpython's
        is not shared across threads). Raises ValidationFailed, and only that."""
        try:
            with GitRepo.open(self.checkout) as repo:
                loaded = load_revision(repo, sha, budget=self.budget)
                self._origins = {**{k: v for k, v in self._origins.items() if k == self._anchor_sha()},
                                 sha: loaded.origins}
                return loaded.desired
        except ValidationFailed:
            raise
        except RecursionError:
            raise ValidationFailed([Problem(".", 0, "", "a file is nested too deeply to read")]) from None
        except Exception as e:  # anything else still only makes the revision invalid
            raise ValidationFailed([Problem(".", 0, "", f"{INTERNAL}: {type(e).__name__}: {e}",
                                            "this is a bug in tva; please report it")]) from None
        finally:
            if self.on_validated is not None:
                self.on_validated()

    def origins(self, sha: str) -> dict[tuple[str, str], tuple[str, int]]:
        """Where each resource of revision ``sha`` is declared: (kind, name) -> (file, line);
        empty when this source did not validate ``sha`` itself (e.g. restored after a restart)."""
        return self._origins.get(sha, {})

    def _anchor_sha(self) -> str | None:
        good = self._last_good
        return good[0] if good else None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._repo is not None:
            self._repo.close()

    def _keep(self, seen: str | None, problems: list[Problem], error: str | None,
              refused: str | None = None, *, validating: bool = False) -> Revision:
        good = self._last_good
        return Revision(
            seen=seen,
            desired=good[1] if good else None,
            applied=good[0] if good else None,
            problems=problems,
            error=error,
            validating=validating,
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
            self._last_good = (anchor, load_revision(self.repo, anchor, budget=self.budget).desired)
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
