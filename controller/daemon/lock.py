"""One daemon per node: an exclusive lock on a file in the state directory."""

from __future__ import annotations

import fcntl
import os
from types import TracebackType

from controller.errors import PermanentError

__all__ = ["AlreadyRunning", "NodeLock"]


class AlreadyRunning(PermanentError):
    """Another tva daemon holds this node's lock."""


class NodeLock:
    def __init__(self, state_dir: str, node: str) -> None:
        self.path = os.path.join(state_dir, f"{node}.lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = _read_pid(self.path)
            raise AlreadyRunning(
                f"another tva daemon{f' (pid {holder})' if holder else ''} runs for this node "
                f"(lock {self.path}); stop it first"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> NodeLock:
        self.acquire()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def _read_pid(path: str) -> int | None:
    try:
        with open(path) as f:
            return int(f.read().strip() or 0) or None
    except (OSError, ValueError):
        return None
