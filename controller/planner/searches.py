"""The acquirer's failing searches, to publish in its status so every node sees them.

Which searches failed lives in the journal of the node that ran them, the acquirer. The node
that sends notifications is chosen on its own (``alerts.notifier``) and is often another one, so
the acquirer publishes, per watchlist search target, how many searches failed in a row and why
the last did (``NodeStatus.searches``), as it publishes its verdicts on its copies
(``verdicts.py``). A success resets the count, and the target then leaves the list.
"""

from __future__ import annotations

from collections.abc import Sequence

from controller.display import safe
from schemas.journal import JournalEntry, Outcome
from schemas.observed import FailingSearch, NodeStatus
from schemas.plan import ActionKind

__all__ = ["MAX_PUBLISHED", "failing_searches", "with_searches"]

MAX_PUBLISHED = 100
"""Targets published at most (the most recent failures): a status stays small."""


def failing_searches(node: str, journal: Sequence[JournalEntry]) -> list[FailingSearch]:
    """Watchlist searches (``research`` of ``watch/...``) ``node`` ran whose last outcomes were
    failures, with how many in a row, sorted by target."""
    runs: dict[str, list[JournalEntry]] = {}
    for e in journal:
        if (e.node == node and e.kind is ActionKind.research and e.target.startswith("watch/")
                and e.outcome in (Outcome.ok, Outcome.failed)):
            runs.setdefault(e.target, []).append(e)
    out: list[FailingSearch] = []
    for target, entries in runs.items():
        entries.sort(key=lambda e: e.at)
        n = 0
        for e in entries:
            n = n + 1 if e.outcome is Outcome.failed else 0
        if n:
            last = entries[-1]
            out.append(FailingSearch(target=target, failures=n, at=last.at,
                                     error=safe(" ".join(last.error.split()))[:300]))
    out.sort(key=lambda f: f.at, reverse=True)
    return sorted(out[:MAX_PUBLISHED], key=lambda f: f.target)


def with_searches(status: NodeStatus, journal: Sequence[JournalEntry]) -> NodeStatus:
    """``status`` with its node's failing searches (and none left from before)."""
    found = failing_searches(status.node, journal)
    if found == status.searches:
        return status
    return status.model_copy(update={"searches": found})
