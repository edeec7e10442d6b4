"""Node statuses: publish this node's ``NodeStatus`` and read every node's, through git or files.

``open_transport`` is the one place that chooses a transport, so the daemon, ``tva plan``,
``tva status``, ``tva apply`` and ``tva review`` all follow the same rule: a status directory
when one is given, else the status refs of the fleet repo checkout.
"""

from __future__ import annotations

import os

from controller.clients.git import RetryPolicy
from controller.status.directory import DirectoryStatusTransport
from controller.status.gitstatus import GitStatusTransport
from controller.status.transport import SkippedStatus, StatusTransport, parse_status
from schemas.desired import StatusPolicy

__all__ = [
    "DirectoryStatusTransport",
    "GitStatusTransport",
    "RetryPolicy",
    "SkippedStatus",
    "StatusTransport",
    "open_transport",
    "parse_status",
]


def open_transport(
    *,
    status_dir: str | os.PathLike[str] | None,
    checkout: str | os.PathLike[str] | None,
    policy: StatusPolicy,
    node: str | None = None,
    fetch: bool = True,
    remote: str = "origin",
    retry: RetryPolicy | None = None,
) -> StatusTransport | None:
    """The status transport to use: ``status_dir`` when given, else the fleet repo's status
    refs in ``checkout`` (following ``policy``); None when there is neither.

    ``node`` is the node that publishes (None: read only); ``fetch=False`` reads what was
    fetched last, without the network.
    """
    if status_dir is not None:
        return DirectoryStatusTransport(status_dir)
    if checkout is None:
        return None
    return GitStatusTransport.for_fleet(checkout, policy, node=node, remote=remote, retry=retry,
                                        fetch=fetch)
