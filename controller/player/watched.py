"""What this node's player has watched to the end, kept across restarts.

Watch progress drives the watchlists' keep-next-N buffers on every node, so it must survive a
controller restart: a small JSON list of info-hashes in the state dir, written atomically
(``controller.atomic``) whenever it grows. Safe to call from libmpv's event thread.

A file that cannot be read as that list (damaged by a disk, or edited by hand) is not emptied
in place: it is moved aside (``<name>.corrupt-<time>``) with a warning, so what it held can be
recovered, and the store starts empty.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time

from controller.atomic import write_atomic

__all__ = ["WatchedStore"]

log = logging.getLogger("tva.player")


class WatchedStore:
    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._keys: set[str] = set()
        try:
            with open(path, "rb") as f:
                data = json.loads(f.read().decode("utf-8"))
            if not isinstance(data, list) or not all(isinstance(k, str) for k in data):
                raise ValueError("not a list of info-hashes")
            self._keys = set(data)
        except FileNotFoundError:
            pass  # none yet
        except (OSError, ValueError) as e:  # UnicodeDecodeError and JSONDecodeError included
            self._move_aside(str(e))

    def _move_aside(self, why: str) -> None:
        aside = f"{self.path}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}"
        try:
            os.replace(self.path, aside)
        except OSError as e:
            log.warning("watch progress %s is unreadable (%s) and cannot be moved aside (%s); "
                        "starting empty", self.path, why, e, extra={"event": "watched-corrupt"})
            return
        log.warning("watch progress %s is unreadable (%s); kept as %s, starting empty",
                    self.path, why, aside, extra={"event": "watched-corrupt", "aside": aside})

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
