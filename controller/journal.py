"""The node's journal: every action it carried out, append-only JSON lines, bounded.

The planner reads it for what observation cannot say (rate limits, reaper strikes, settle
time: see ``schemas/journal.py``); ``tva history`` shows it. The file is appended one line per
entry and, when it grows past ``max_entries``, rewritten atomically (``controller.atomic``)
keeping the newest half, so it never grows without bound and a crash never leaves it torn.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable
from datetime import datetime

from pydantic import ValidationError

from controller.atomic import write_atomic
from schemas.journal import JournalEntry

__all__ = ["DEFAULT_MAX_ENTRIES", "Journal", "dump"]

DEFAULT_MAX_ENTRIES = 20_000


class Journal:
    def __init__(self, path: str, *, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self.path = path
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: list[JournalEntry] = self._load()

    def _load(self) -> list[JournalEntry]:
        entries: list[JournalEntry] = []
        try:
            with open(self.path, encoding="utf-8") as f:
                for line in f:
                    line = line.strip()
                    if not line:
                        continue
                    try:
                        entries.append(JournalEntry.model_validate_json(line))
                    except ValidationError:
                        continue  # a torn last line after a crash, or a newer format: skip it
        except FileNotFoundError:
            pass
        return entries[-self.max_entries:]

    def append(self, entries: Iterable[JournalEntry]) -> None:
        new = list(entries)
        if not new:
            return
        with self._lock:
            self._entries.extend(new)
            if len(self._entries) > self.max_entries:
                self._entries = self._entries[-(self.max_entries // 2):]
                self._rewrite()
                return
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as f:
                for e in new:
                    f.write(e.model_dump_json() + "\n")
                f.flush()
                os.fsync(f.fileno())

    def _rewrite(self) -> None:
        write_atomic(self.path, "".join(e.model_dump_json() + "\n" for e in self._entries).encode())

    def entries(self, since: datetime | None = None) -> list[JournalEntry]:
        with self._lock:
            if since is None:
                return list(self._entries)
            return [e for e in self._entries if e.at >= since]


def dump(entries: Iterable[JournalEntry]) -> str:
    return json.dumps([e.model_dump(mode="json") for e in entries], indent=2)
