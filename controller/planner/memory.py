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
        tries: dict[tuple[str, ActionKind, str], list[tuple[datetime, bool]]] = {}
        for e in entries:
            if not e.tried:
                continue
            if e.kind is ActionKind.research and e.outcome is not Outcome.started:
                tries.setdefault((e.node, e.kind, e.target), []).append(
                    (e.at, e.outcome is Outcome.failed))
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
        self._failures: dict[tuple[str, ActionKind, str], int] = {}
        for key, outcomes in tries.items():
            outcomes.sort(key=lambda o: o[0])
            n = 0
            for _, failed in outcomes:
                n = n + 1 if failed else 0
            self._failures[key] = n

    def last_tried(self, node: str, kind: ActionKind, target: str) -> datetime | None:
        """When ``node`` last tried (ok or failed) ``kind`` on ``target``; None if never."""
        return self._last.get((node, kind, target))

    def failures(self, node: str, kind: ActionKind, target: str) -> int:
        """Failed attempts in a row, since the last success (searches only: ``research``)."""
        return self._failures.get((node, kind, target), 0)

    def strikes(self, node: str, target: str) -> list[JournalEntry]:
        """Strikes recorded for ``target`` on ``node``, oldest first."""
        return self._strikes.get((node, target), [])

    def last_added(self, target: str) -> datetime | None:
        """When a copy of ``target`` was last added successfully, on any node."""
        return self._added.get(target)
