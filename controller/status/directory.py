"""Fleet status from a directory of saved ``NodeStatus`` JSON files.

For ``tva plan --status DIR`` and ``tva review``: plan offline from statuses saved earlier (or
written by hand as fixtures), with no git and no network. Publishing writes ``<node>.json``
atomically (``controller.atomic``), so a reader never sees half a file.
"""

from __future__ import annotations

import os
from pathlib import Path

from controller.atomic import write_atomic
from controller.errors import PermanentError
from controller.status.transport import (
    MAX_STATUS_BYTES,
    SkippedStatus,
    encode_status,
    is_node_name,
    parse_status,
    report_skipped,
)
from schemas.observed import NodeStatus

__all__ = ["DirectoryStatusTransport"]


class DirectoryStatusTransport:
    """Every ``*.json`` file directly in ``path`` is one status (the file name does not matter)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._skipped: list[SkippedStatus] = []

    @property
    def skipped(self) -> list[SkippedStatus]:
        return list(self._skipped)

    def publish(self, status: NodeStatus) -> None:
        if not is_node_name(status.node):
            raise PermanentError(f"{status.node!r} is not a valid node name")
        try:
            write_atomic(self.path / f"{status.node}.json", encode_status(status))
        except OSError as e:
            raise PermanentError(f"cannot write the status of {status.node} to {self.path}: {e}") from e

    def close(self) -> None:
        """Nothing to release."""

    def read_all(self) -> list[NodeStatus]:
        if not self.path.is_dir():
            raise PermanentError(f"status directory {self.path} does not exist")
        found: list[NodeStatus] = []
        skipped: list[SkippedStatus] = []
        for file in sorted(self.path.glob("*.json")):
            if file.name.startswith("."):
                continue
            result = _read(file)
            if isinstance(result, SkippedStatus):
                skipped.append(result)
            else:
                found.append(result)
        self._skipped = skipped
        return sorted(found, key=lambda s: (s.node, s.observed_at))


def _read(file: Path) -> NodeStatus | SkippedStatus:
    source = str(file)
    try:
        with file.open("rb") as f:
            data = f.read(MAX_STATUS_BYTES + 1)
    except OSError as e:
        return report_skipped(source, f"unreadable: {e}")
    return parse_status(data, source=source)
