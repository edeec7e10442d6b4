"""The fleet status transport: how a node shares its ``NodeStatus`` and reads everyone else's.

One small interface with interchangeable backends (git refs in the fleet repo, a directory of
saved JSON files, later HTTP between controllers), so the daemon, ``tva plan`` and ``tva review``
do not care where statuses come from.

A status read from elsewhere is untrusted input: it is size-capped, validated against the
format, must carry a time zone, and must be published under its own node's name. Anything else
is skipped and reported, never raised: one broken node must not blind the others.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Protocol

from pydantic import ValidationError

from schemas.observed import STATUS_FORMAT, NodeStatus

__all__ = [
    "MAX_STATUS_BYTES",
    "SkippedStatus",
    "StatusTransport",
    "encode_status",
    "is_node_name",
    "parse_status",
    "report_skipped",
]

log = logging.getLogger("tva.status")

MAX_STATUS_BYTES = 64 * 1024 * 1024
"""A status larger than this is skipped unread (10,000 torrents take about 10 MiB)."""

_NODE_RE = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$")


@dataclass(frozen=True)
class SkippedStatus:
    """A status that was found but not used, and why."""

    source: str
    """Where it was found: a ref and commit, or a file."""
    reason: str

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}"


class StatusTransport(Protocol):
    """Publishes this node's status; reads the latest status of every node."""

    def publish(self, status: NodeStatus) -> None:
        """Make ``status`` the latest status of ``status.node`` for every reader."""

    def read_all(self) -> list[NodeStatus]:
        """The latest status of every node that published one, sorted by node.

        Statuses that cannot be trusted are left out and listed in ``skipped``.
        """

    @property
    def skipped(self) -> list[SkippedStatus]:
        """What the last ``read_all`` left out, and why."""

    def close(self) -> None:
        """Release what the transport holds (helper processes); it may be used again after."""


def is_node_name(name: str) -> bool:
    """A device name (schemas.types.Name) that is also safe as a ref component and file name."""
    return bool(_NODE_RE.match(name)) and ".." not in name and not name.endswith(".lock")


def encode_status(status: NodeStatus) -> bytes:
    """The published bytes of a status: its JSON form, indented so diffs stay readable."""
    return status.model_dump_json(indent=2).encode() + b"\n"


def parse_status(data: bytes, *, source: str, node: str | None = None) -> NodeStatus | SkippedStatus:
    """Validate one published status; ``node`` is the name it was published under, if known."""
    if len(data) > MAX_STATUS_BYTES:
        return report_skipped(source, f"larger than {MAX_STATUS_BYTES} bytes")
    try:
        status = NodeStatus.model_validate_json(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "document"
        more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
        return report_skipped(source, f"not a valid {STATUS_FORMAT} document: {where}: {first['msg']}{more}")
    if status.observed_at.utcoffset() is None:
        return report_skipped(source, "observed_at has no UTC offset, so its age cannot be known")
    if node is not None and status.node != node:
        return report_skipped(source, f"it claims to be node {status.node!r} but was published as {node!r}")
    return status


def report_skipped(source: str, reason: str) -> SkippedStatus:
    """Log a status that is left out, and return the record of it."""
    skipped = SkippedStatus(source=source, reason=reason)
    log.warning("fleet status skipped: %s", skipped)
    return skipped
