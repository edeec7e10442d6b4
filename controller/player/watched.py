"""What this node's player has watched to the end, kept across restarts.

Watch progress drives the watchlists' keep-next-N buffers on every node, so it must survive a
controller restart: a small JSON list of info-hashes in the state dir, written atomically
(``controller.atomic``) whenever it grows. Safe to call from libmpv's event thread.
"""

from __future__ import annotations

import json
import threading

from controller.atomic import write_atomic

__all__ = ["WatchedStore"]


class WatchedStore:
    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._keys: set[str] = set()
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
            self._keys = {k for k in data if isinstance(k, str)} if isinstance(data, list) else set()
        except (OSError, ValueError):
            pass  # none yet, or unreadable: start empty (the player records again as it plays)

    def add(self, key: str) -> None:
        with self._lock:
            if key in self._keys:
                return
            self._keys.add(key)
            self._write(sorted(self._keys))

    def keys(self) -> list[str]:
        with self._lock:
            return sorted(self._keys)

    def _write(self, keys: list[str]) -> None:
        write_atomic(self.path, json.dumps(keys).encode())
