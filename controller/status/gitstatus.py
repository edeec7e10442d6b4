"""Fleet status through git: each node's ``NodeStatus`` on its own ref in the fleet repo.

Why git: the fleet repo is already shared by every node and by CI, so status needs no extra
server, and ``tva review`` in CI can read it. Layout (``docs/status-format.md``): a node
publishes ``status.json`` in a commit on ``<status.ref>/<node>`` (default
``refs/tva/status/<node>``) of the fleet repo's remote.

Why a ref per node: only the node writes its own ref, so pushing to it with force cannot lose
anyone else's publish and two nodes never conflict or need to merge.

Why plumbing: a status commit is built from objects written straight into the object database
and moved with ``git update-ref`` (compare-and-swap against the old value), so the user's
branches, index, HEAD and working tree are never touched. Fetched statuses land under
``refs/tva-fetched/<remote>/...``, not among the remote-tracking branches.

Growth is bounded: each publish appends a commit whose parent is the previous status commit;
once the chain holds ``history`` commits the next publish starts again from a new root commit.
At most ``history`` commits are ever reachable from a status ref, so clones and fetches stay
small. The trade-off: the old chain becomes unreachable, and its objects stay on disk (locally
and on the remote) until ``git gc`` prunes them (two weeks by default, ``gc.pruneExpire``).
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Self

from pydantic import ValidationError

from controller.clients.git import GitRepo, RetryPolicy, with_retries
from controller.errors import PermanentError
from controller.status.transport import (
    MAX_STATUS_BYTES,
    SkippedStatus,
    encode_status,
    is_node_name,
    parse_status,
    report_skipped,
)
from schemas.desired import StatusPolicy
from schemas.observed import NodeStatus

__all__ = ["DEFAULT_REF", "FETCHED_ROOT", "STATUS_FILE", "GitStatusTransport"]

DEFAULT_REF = StatusPolicy().ref
STATUS_FILE = "status.json"
FETCHED_ROOT = "refs/tva-fetched"
"""Fetched copies of the remote's status refs: ``refs/tva-fetched/<remote>/<ref minus refs/>``."""

_DEPTH_TRAILER = "Tva-Status-Depth:"
_ZERO = "0" * 40
_NOT_STATUS = ("refs/heads/", "refs/tags/", "refs/remotes/", f"{FETCHED_ROOT}/")


class GitStatusTransport:
    """The status transport over a node's clone of the fleet repo and its remote.

    ``node`` is the one node this transport publishes for (None: read only). ``fetch=False``
    makes ``read_all`` read what was fetched last, without the network.
    """

    def __init__(
        self,
        checkout: str | os.PathLike[str],
        *,
        node: str | None = None,
        ref: str = DEFAULT_REF,
        history: int = StatusPolicy().history,
        remote: str = "origin",
        retry: RetryPolicy | None = None,
        fetch: bool = True,
    ) -> None:
        # Validate like StatusPolicy does, so a hand-built transport cannot escape its prefix.
        try:
            policy = StatusPolicy(ref=ref.rstrip("/"), history=history)
        except ValidationError as e:
            raise PermanentError(f"invalid status ref {ref!r} or history {history}: {e}") from e
        if policy.ref.startswith(_NOT_STATUS) or policy.ref + "/" in _NOT_STATUS:
            raise PermanentError(
                f"status ref {policy.ref!r} would mix statuses with branches, tags or fetched refs; "
                f"use a prefix of its own such as {DEFAULT_REF}"
            )
        if node is not None and not is_node_name(node):
            raise PermanentError(f"{node!r} is not a valid node name")
        self.checkout = Path(checkout)
        self.node = node
        self.ref = policy.ref
        self.history = policy.history
        self.remote = remote
        self.retry = retry or RetryPolicy()
        self.fetch_on_read = fetch
        self._repo: GitRepo | None = None
        self._skipped: list[SkippedStatus] = []
        self._tip: tuple[str, int] | None = None  # (commit, depth) this transport wrote last

    @classmethod
    def for_fleet(
        cls,
        checkout: str | os.PathLike[str],
        policy: StatusPolicy,
        *,
        node: str | None = None,
        remote: str = "origin",
        retry: RetryPolicy | None = None,
        fetch: bool = True,
    ) -> GitStatusTransport:
        """A transport that follows the fleet's ``status:`` policy (ref prefix, history)."""
        return cls(
            checkout, node=node, ref=policy.ref, history=policy.history, remote=remote,
            retry=retry, fetch=fetch,
        )

    # ------------------------------------------------------------------ plumbing

    @property
    def repo(self) -> GitRepo:
        if self._repo is None:
            self._repo = GitRepo.open(
                self.checkout, missing=f"{self.checkout} is not a git checkout of the fleet repo")
        return self._repo

    def close(self) -> None:
        """Stop the git helper processes kept by the repository object."""
        if self._repo is not None:
            self._repo.close()
            self._repo = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ref_for(self, node: str) -> str:
        """The ref a node publishes on (locally and on the remote)."""
        return f"{self.ref}/{node}"

    @property
    def fetched_prefix(self) -> str:
        """Where ``fetch`` keeps the remote's status refs in the checkout."""
        return f"{FETCHED_ROOT}/{self.remote}/{self.ref.removeprefix('refs/')}"

    def _git(self, *args: str, what: str) -> str:
        return self.repo.run(*args, what=what, timeout=self.retry.timeout)

    def _check_remote(self) -> None:
        if self.remote not in self.repo.remotes():
            raise PermanentError(
                f"{self.checkout} has no remote {self.remote!r}: clone the fleet repo, or add "
                f"the remote with `git remote add {self.remote} URL`"
            )

    # ------------------------------------------------------------------ publishing

    def publish(self, status: NodeStatus) -> None:
        """Record ``status`` on this node's ref, then push that ref (forced) to the remote.

        If the push fails after its retries the status stays recorded locally and the next
        publish pushes it along; the error is raised so the caller can report it.
        """
        self.record(status)
        self.push()

    def record(self, status: NodeStatus) -> str:
        """Commit ``status`` on this node's local status ref; returns the commit id."""
        if self.node is None:
            raise PermanentError("this status transport reads only: give node= to publish")
        if status.node != self.node:
            raise PermanentError(f"node {self.node} cannot publish the status of {status.node}")
        data = encode_status(status)
        ref = self.ref_for(self.node)
        return with_retries(
            self.retry,
            lambda: self._record_once(ref, data, status.observed_at),
            what=f"recording the status of {self.node} on {ref}",
        )

    def _record_once(self, ref: str, data: bytes, when: datetime) -> str:
        # Fast path: this transport wrote the tip last, so the compare-and-swap below holds
        # unless someone else moved the ref; then re-read it and let the retry start over.
        if self._tip is not None:
            old: str | None = self._tip[0]
            depth = self._tip[1]
        else:
            old = self._resolve(ref)
            depth = self._depth(old) if old else 0
        parent = old if old is not None and depth < self.history else None
        new_depth = depth + 1 if parent is not None else 1
        commit = self._write_commit(data, when, parent, new_depth)
        self._tip = None
        self._git(
            "update-ref", "-m", f"tva: status of {self.node}", ref, commit, old or _ZERO,
            what=f"updating {ref}",
        )
        self._tip = (commit, new_depth)
        return commit

    def _resolve(self, ref: str) -> str | None:
        """The commit ``ref`` points to, or None when there is none (a new chain starts)."""
        return self.repo.commit_or_none(ref, timeout=self.retry.timeout)

    def _depth(self, commit: str) -> int:
        """How many commits the chain ending at ``commit`` holds, from its trailer.

        A commit without the trailer (written by something else) counts as a full chain, so
        the next publish starts a new root rather than growing an unknown history.
        """
        message = self.repo.message(commit)
        if message is None:
            return self.history
        for line in message.splitlines():
            if line.startswith(_DEPTH_TRAILER):
                value = line.removeprefix(_DEPTH_TRAILER).strip()
                if value.isdigit() and int(value) >= 1:
                    return int(value)
        return self.history

    def _write_commit(self, data: bytes, when: datetime, parent: str | None, depth: int) -> str:
        message = "\n".join([
            f"Status of {self.node}, observed {when.isoformat()}",
            "",
            f"{_DEPTH_TRAILER} {depth}",
            "",
        ])
        return self.repo.write_commit(
            {STATUS_FILE: data}, parent=parent, identity=f"tva {self.node} <{self.node}@tva.invalid>",
            when=int(when.timestamp()), message=message,
        )

    def push(self) -> None:
        """Push this node's status ref to the remote, replacing what is there."""
        if self.node is None:
            raise PermanentError("this status transport reads only: give node= to publish")
        ref = self.ref_for(self.node)
        if self._tip is None and self._resolve(ref) is None:
            return  # nothing recorded yet
        self._check_remote()
        with_retries(
            self.retry,
            lambda: self._git(
                "push", "--quiet", "--no-verify", "--recurse-submodules=no", self.remote,
                f"+{ref}:{ref}",
                what=f"pushing {ref} to {self.remote}",
            ),
            what=f"pushing {ref} to {self.remote}",
        )

    # ------------------------------------------------------------------ reading

    @property
    def skipped(self) -> list[SkippedStatus]:
        return list(self._skipped)

    def read_all(self) -> list[NodeStatus]:
        """Fetch every node's status ref (unless ``fetch=False``) and read the latest of each."""
        if self.fetch_on_read:
            self.fetch()
        return self.read_fetched()

    def fetch(self) -> None:
        """Bring the remote's status refs to ``fetched_prefix``; refs gone there go here too."""
        self._check_remote()
        with_retries(
            self.retry,
            lambda: self._git(
                # --refmap= keeps git from also updating refs by the checkout's own fetch
                # configuration: only the fetched-status refs change.
                "fetch", "--quiet", "--prune", "--no-tags", "--no-write-fetch-head", "--refmap=",
                "--recurse-submodules=no", self.remote, f"+{self.ref}/*:{self.fetched_prefix}/*",
                what=f"fetching {self.ref}/* from {self.remote}",
            ),
            what=f"fetching {self.ref}/* from {self.remote}",
        )

    def read_fetched(self) -> list[NodeStatus]:
        """The statuses fetched last, without the network; untrusted ones go to ``skipped``."""
        listing = self._git(
            "for-each-ref", "--format=%(objectname) %(objecttype) %(refname)",
            f"{self.fetched_prefix}/",
            what="listing fetched statuses",
        )
        found: list[NodeStatus] = []
        skipped: list[SkippedStatus] = []
        for line in listing.splitlines():
            sha, kind, refname = line.split(" ", 2)
            node = refname.removeprefix(f"{self.fetched_prefix}/")
            result = self._load(node, sha, kind)
            if isinstance(result, SkippedStatus):
                skipped.append(result)
            else:
                found.append(result)
        self._skipped = skipped
        return sorted(found, key=lambda s: s.node)

    def _load(self, node: str, sha: str, kind: str) -> NodeStatus | SkippedStatus:
        source = f"{self.ref_for(node)} at {sha[:12]}"
        if not is_node_name(node):
            return report_skipped(source, "the ref does not name a valid node")
        if kind != "commit":
            return report_skipped(source, f"the ref points to a {kind}, not a commit")
        size = self.repo.file_size(sha, STATUS_FILE)
        if size is None:
            return report_skipped(source, f"the commit has no {STATUS_FILE} file")
        if size > MAX_STATUS_BYTES:
            return report_skipped(source, f"{STATUS_FILE} is larger than {MAX_STATUS_BYTES} bytes")
        data = self.repo.read_file(sha, STATUS_FILE, MAX_STATUS_BYTES)
        if data is None:
            return report_skipped(source, f"{STATUS_FILE} is unreadable")
        return parse_status(data, source=source, node=node)
