"""What the planner reads from the journal: when a step was last tried, strikes, recent adds.

The loop is level-triggered and the plan is recomputed from scratch each pass; the journal is
the only memory. It is read, never written, here: the daemon appends what it applied
(``schemas/journal.py``). Indexed once per pass so lookups are constant time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from schemas.journal import JournalEntry, Outcome
from schemas.plan import ActionKind

__all__ = ["JournalIndex"]


class JournalIndex:
    def __init__(self, entries: Sequence[JournalEntry]) -> None:
        last: dict[tuple[str, ActionKind, str], datetime] = {}
        strikes: dict[tuple[str, str], list[JournalEntry]] = {}
        added: dict[str, datetime] = {}
        for e in entries:
            if not e.tried:
                continue
            key = (e.node, e.kind, e.target)
            prev = last.get(key)
            if prev is None or e.at > prev:
                last[key] = e.at
            if e.kind is ActionKind.record_strike and e.outcome is Outcome.ok:
                strikes.setdefault((e.node, e.target), []).append(e)
            elif e.kind is ActionKind.add and e.outcome is Outcome.ok:
                prev_add = added.get(e.target)
                if prev_add is None or e.at > prev_add:
                    added[e.target] = e.at
        for runs in strikes.values():
            runs.sort(key=lambda e: (e.at, e.progress if e.progress is not None else -1))
        self._last = last
        self._strikes = strikes
        self._added = added

    def last_tried(self, node: str, kind: ActionKind, target: str) -> datetime | None:
        """When ``node`` last tried (ok or failed) ``kind`` on ``target``; None if never."""
        return self._last.get((node, kind, target))

    def strikes(self, node: str, target: str) -> list[JournalEntry]:
        """Strikes recorded for ``target`` on ``node``, oldest first."""
        return self._strikes.get((node, target), [])

    def last_added(self, target: str) -> datetime | None:
        """When a copy of ``target`` was last added successfully, on any node."""
        return self._added.get(target)
