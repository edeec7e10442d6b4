"""The node's journal: every action it carried out, append-only JSON lines, bounded.

The planner reads it for what observation cannot say (rate limits, reaper strikes, settle
time: see ``schemas/journal.py``); ``tva history`` shows it. The file is appended one line per
entry and, when it grows past ``max_entries``, rewritten atomically (``controller.atomic``)
keeping the newest half, so it never grows without bound.

A crash or a full disk can still tear the last line, even inside a UTF-8 character: a line
that does not decode or validate is skipped when reading, and a torn tail is ended with a
newline before the next append, so the next entry stands on a line of its own. An append that
cannot be written raises ``JournalUnwritable`` and is not kept in memory either: the applier
runs no action whose intent it could not journal.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable
from datetime import datetime

from pydantic import ValidationError

from controller.atomic import write_atomic
from controller.errors import TemporaryError
from schemas.journal import JournalEntry

__all__ = ["DEFAULT_MAX_ENTRIES", "Journal", "JournalUnwritable", "dump"]

log = logging.getLogger("tva.journal")


class JournalUnwritable(TemporaryError):
    """The journal cannot be written (a full disk, a read-only state dir)."""

DEFAULT_MAX_ENTRIES = 20_000


class Journal:
    def __init__(self, path: str, *, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self.path = path
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: list[JournalEntry] = self._load()

    def _load(self) -> list[JournalEntry]:
        entries: list[JournalEntry] = []
        skipped = 0
        try:
            with open(self.path, "rb") as f:
                for raw in f:
                    raw = raw.strip()
                    if not raw:
                        continue
                    try:
                        entries.append(JournalEntry.model_validate_json(raw.decode("utf-8")))
                    except (UnicodeDecodeError, ValidationError, ValueError):
                        skipped += 1  # a torn line after a crash, or a newer format
        except FileNotFoundError:
            pass
        if skipped:
            log.warning("journal %s: skipped %d unreadable line(s)", self.path, skipped,
                        extra={"event": "journal-skipped", "lines": skipped})
        return entries[-self.max_entries:]

    def append(self, entries: Iterable[JournalEntry]) -> None:
        """Append durably, or raise ``JournalUnwritable`` and keep nothing of ``entries``."""
        new = list(entries)
        if not new:
            return
        with self._lock:
            try:
                if len(self._entries) + len(new) > self.max_entries:
                    kept = (self._entries + new)[-(self.max_entries // 2):]
                    self._rewrite(kept)
                    self._entries = kept
                    return
                self._append_lines(new)
            except OSError as e:
                raise JournalUnwritable(f"cannot write the journal {self.path}: {e.strerror or e}") from e
            self._entries.extend(new)

    def _append_lines(self, new: list[JournalEntry]) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        data = "".join(e.model_dump_json() + "\n" for e in new).encode()
        with open(self.path, "a+b") as f:
            end = f.seek(0, os.SEEK_END)
            if end:
                f.seek(end - 1)
                if f.read(1) != b"\n":
                    data = b"\n" + data  # end a torn tail first, or the entry joins it and is lost
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    def _rewrite(self, entries: list[JournalEntry]) -> None:
        write_atomic(self.path, "".join(e.model_dump_json() + "\n" for e in entries).encode())

    def entries(self, since: datetime | None = None) -> list[JournalEntry]:
        with self._lock:
            if since is None:
                return list(self._entries)
            return [e for e in self._entries if e.at >= since]


def dump(entries: Iterable[JournalEntry]) -> str:
    return json.dumps([e.model_dump(mode="json") for e in entries], indent=2)
