"""Fleet status: publish this node's ``NodeStatus`` and read every node's, through git or files."""

from controller.fleet.directory import DirectoryStatusTransport
from controller.fleet.gitcmd import RetryPolicy
from controller.fleet.gitstatus import GitStatusTransport
from controller.fleet.transport import SkippedStatus, StatusTransport, parse_status

__all__ = [
    "DirectoryStatusTransport",
    "GitStatusTransport",
    "RetryPolicy",
    "SkippedStatus",
    "StatusTransport",
    "parse_status",
]
