"""What a review reads: two revisions of the fleet repo and the fleet's published status.

The only module of the review that does I/O (git, files). Revisions are loaded straight from
their commits (``controller.source.gittree``), so the working tree is never touched and CI can
review any pair of commits it has fetched.

An invalid BASE is not an error: controllers never apply an invalid revision, they keep the
last good one. So the review compares HEAD with what the controllers actually run: the newest
valid first-parent ancestor of BASE (up to ``MAX_WALK`` commits back). If there is none, HEAD
is compared with an empty fleet (every resource is new). An invalid HEAD is the error the
review exists to catch: it raises ``ValidationFailed`` with every problem located.

Status comes from a directory of saved ``NodeStatus`` files (``--status DIR``) or from the
status refs in the fleet repo (``--fleet-ref``). With ``--fleet-ref`` the refs are fetched from
the remote when the checkout has one (CI checkouts do; a fetch failure becomes a note and the
statuses fetched earlier are used); ``fetch=False`` reads only what was fetched before.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from controller.clients.git import GitRepo, RetryPolicy
from controller.errors import TvaError, ValidationFailed
from controller.review.model import RevisionInfo
from controller.source.gittree import load_revision
from controller.status import GitStatusTransport, open_transport
from schemas.desired import DesiredState, StatusPolicy
from schemas.observed import NodeStatus

__all__ = [
    "FETCH_RETRY",
    "MAX_WALK",
    "Revisions",
    "load_base",
    "load_head",
    "load_revisions",
    "open_repo",
    "read_statuses",
]

MAX_WALK = 50
"""How far back an invalid BASE is followed to find the revision controllers keep."""
FETCH_RETRY = RetryPolicy(attempts=3, initial=0.5, max_wait=4.0)
"""A review runs once, in CI: a few quick tries, then the statuses fetched earlier."""


@dataclass
class Revisions:
    base: DesiredState | None
    head: DesiredState
    base_info: RevisionInfo
    head_info: RevisionInfo
    notes: list[str] = field(default_factory=list)


def open_repo(path: str) -> GitRepo:
    return GitRepo.open(
        path, missing=f"{path} is not a git repository: give the fleet repo's checkout with "
        "--repo PATH")


def load_head(repo: GitRepo, rev: str) -> tuple[DesiredState, RevisionInfo]:
    """HEAD, validated; raises ValidationFailed (with ``revision`` set) when it is invalid."""
    sha = repo.resolve(rev)
    desired = load_revision(repo, sha).desired
    return desired, RevisionInfo(requested=rev, revision=sha, compared=sha)


def load_base(repo: GitRepo, rev: str) -> tuple[DesiredState | None, RevisionInfo, list[str]]:
    sha = repo.resolve(rev)
    try:
        return load_revision(repo, sha).desired, RevisionInfo(
            requested=rev, revision=sha, compared=sha), []
    except ValidationFailed as e:
        problems = [str(p) for p in e.problems]
    for ancestor in repo.first_parents(sha, MAX_WALK + 1):
        if ancestor == sha:
            continue
        try:
            desired = load_revision(repo, ancestor).desired
        except ValidationFailed:
            continue
        note = (f"BASE {rev} ({sha[:12]}) is invalid ({len(problems)} problem"
                f"{'s' if len(problems) != 1 else ''}); controllers keep the last good "
                f"revision, so HEAD is compared with {ancestor[:12]}, the newest valid "
                "ancestor of BASE")
        return desired, RevisionInfo(requested=rev, revision=sha, compared=ancestor,
                                     valid=False, problems=problems), [note]
    note = (f"BASE {rev} ({sha[:12]}) is invalid and has no valid ancestor within {MAX_WALK} "
            "commits: HEAD is compared with an empty fleet (every resource is new)")
    return None, RevisionInfo(requested=rev, revision=sha, compared=None, valid=False,
                              problems=problems), [note]


def load_revisions(repo: GitRepo, base: str, head: str) -> Revisions:
    """Load HEAD (raises ValidationFailed when invalid), then BASE (never raises for an
    invalid BASE; see the module docstring)."""
    head_state, head_info = load_head(repo, head)
    base_state, base_info, notes = load_base(repo, base)
    return Revisions(base_state, head_state, base_info, head_info, notes)


def read_statuses(
    *,
    status_dir: str | None = None,
    repo: str | None = None,
    policy: StatusPolicy | None = None,
    fetch: bool = True,
    remote: str = "origin",
) -> tuple[list[NodeStatus], list[str]]:
    """The statuses to plan both revisions against, and notes about where they came from."""
    notes: list[str] = []
    transport = open_transport(status_dir=status_dir, checkout=repo,
                               policy=policy or StatusPolicy(), remote=remote, retry=FETCH_RETRY,
                               fetch=False)
    if transport is None:
        return [], ["no fleet status given (--status DIR or --fleet-ref): every node is "
                    "unknown, so the plans show only what needs no observation"]
    if not isinstance(transport, GitStatusTransport):
        statuses = transport.read_all()
        notes += [f"status skipped: {s}" for s in transport.skipped]
        return statuses, notes
    try:
        if fetch and remote in transport.repo.remotes():
            try:
                transport.fetch()
            except TvaError as e:
                notes.append(f"could not fetch the status refs from {remote} ({e}); using the "
                             "statuses fetched earlier")
        elif fetch:
            notes.append(f"the checkout has no remote {remote!r}: using the statuses fetched "
                         "earlier")
        statuses = transport.read_fetched()
        notes += [f"status skipped: {s}" for s in transport.skipped]
    finally:
        transport.close()
    if not statuses:
        notes.append(f"no status found under {transport.fetched_prefix}: every node is unknown")
    return statuses, notes
