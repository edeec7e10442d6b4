"""Torrent health: healthy, stalled or dead, by the explicit thresholds of the reaper policy.

The rules, and the traps they avoid (issue 4):

- An idle *complete* seed is healthy. (Transmission's ``isStalled`` is true for an idle seed;
  it is never used.)
- *Stalled*: incomplete, trying to download (not stopped by anyone), no peer sending, no
  download rate, and no activity for ``stalled_after``.
- A tracker message matching ``outage_patterns`` ("tracker unavailable", timeouts...) is never a
  strike, and it suspends stall strikes too: with the tracker down, no peers says nothing about
  the swarm. A message matching ``unregistered_patterns`` is a strike. Outage patterns win when a
  message matches both.
- A local data error (Transmission error 3) is a strike.
- *Dead* needs ``dead_strikes`` strikes with no progress in between (the bytes verified are the
  same at every strike of the run) and strikes at least ``strike_interval`` apart. Strikes are
  journal entries (``schemas/journal.py``); a strike that is due now is part of the count, and
  the plan asks the daemon to record it with a ``record-strike`` action.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from controller.planner.memory import JournalIndex
from controller.planner.text import age, policy
from schemas.desired import ReaperPolicy
from schemas.observed import TorrentState, TorrentStatus

__all__ = ["HEALTHY", "Assessment", "Classifier", "Health"]

LOCAL_ERROR = 3
"""Transmission's error code for a local (data or disk) error; 1 and 2 are tracker errors."""

_TRYING = frozenset({TorrentState.downloading, TorrentState.download_pending})


class Health(StrEnum):
    healthy = "healthy"
    stalled = "stalled"
    dead = "dead"


@dataclass(frozen=True, slots=True)
class Assessment:
    health: Health
    cause: str | None = None
    """Why it earns strikes: ``unregistered``, ``local-error`` or ``stalled``; None: no strike."""
    detail: str = ""
    """A sentence for reasons and views."""
    strikes: int = 0
    """Strikes in the current run (no progress in between), counting one due now."""
    strike_due: bool = False
    progress: int = 0
    """Bytes verified now: a strike remembers it, to tell later whether anything moved."""
    run_start: datetime | None = None
    """When the current run of strikes began (the first strike, or now)."""


HEALTHY = Assessment(Health.healthy)


class Classifier:
    """Assesses torrents for one pass (caches message classification)."""

    def __init__(self, rules: ReaperPolicy, now: datetime, journal: JournalIndex) -> None:
        self.rules = rules
        self.now = now
        self.journal = journal
        self._outage = tuple(p.lower() for p in rules.outage_patterns)
        self._unregistered = tuple(p.lower() for p in rules.unregistered_patterns)
        self._messages: dict[str, str | None] = {}

    def message_kind(self, message: str) -> str | None:
        """``outage``, ``unregistered`` or None for one tracker message."""
        kind = self._messages.get(message, "?")
        if kind != "?":
            return kind
        low = message.lower()
        found: str | None = None
        if any(p in low for p in self._outage):
            found = "outage"
        elif any(p in low for p in self._unregistered):
            found = "unregistered"
        self._messages[message] = found
        return found

    def plainly_healthy(self, t: TorrentStatus) -> bool:
        """The fast check almost every torrent passes: complete, error-free, and no tracker
        says it does not know the torrent. (False does not mean unhealthy: ask ``assess``.)"""
        if t.percent_done < 1.0 or t.error != 0:
            return False
        known = self._messages
        for tr in t.trackers:
            m = tr.last_announce_result
            if m:
                kind = known.get(m, "?")
                if kind == "?":
                    kind = self.message_kind(m)
                if kind == "unregistered":
                    return False
        return True

    def assess(self, node: str, t: TorrentStatus) -> Assessment:
        if self.plainly_healthy(t):
            return HEALTHY
        outage = unregistered = False
        message = ""
        for tr in t.trackers:
            if tr.last_announce_result:
                kind = self.message_kind(tr.last_announce_result)
                if kind == "outage":
                    outage = True
                elif kind == "unregistered":
                    unregistered, message = True, tr.last_announce_result
        if t.error in (1, 2) and t.error_string:
            kind = self.message_kind(t.error_string)
            if kind == "outage":
                outage = True
            elif kind == "unregistered":
                unregistered, message = True, t.error_string
        complete = t.percent_done >= 1.0
        if complete and t.error == 0 and not unregistered:
            return HEALTHY

        rules = self.rules
        stalled = False
        idle = None
        if not complete and t.state in _TRYING and t.peers_sending == 0 and t.rate_download == 0:
            since = t.last_activity or t.added_date
            if since is not None:
                idle = self.now - since
                stalled = idle >= rules.stalled_after

        cause: str | None = None
        if t.error == LOCAL_ERROR:
            cause = "local-error"
            detail = f"local error: {t.error_string or 'data error'}"
        elif unregistered and not outage:
            cause = "unregistered"
            detail = f"tracker says {message!r}"
        elif stalled and not outage:
            cause = "stalled"
            detail = (
                f"no progress and no peer sending for {age(idle)}, over stalled_after "
                f"{policy(rules.stalled_after)}"
            )
        elif stalled:
            return Assessment(
                Health.stalled, detail=f"no progress for {age(idle)}, but the tracker reports an "
                "outage: no strike",
            )
        else:
            return HEALTHY

        progress = int(t.percent_done * t.size)
        history = self.journal.strikes(node, t.infohash)
        run = 0
        for e in reversed(history):
            if e.progress != progress:
                break
            run += 1
        due = not history or self.now - history[-1].at >= rules.strike_interval
        strikes = run + (1 if due else 0)
        run_start = history[-run].at if run else (self.now if due else None)
        health = Health.dead if strikes >= rules.dead_strikes else Health.stalled
        return Assessment(
            health, cause=cause, detail=detail, strikes=strikes, strike_due=due,
            progress=progress, run_start=run_start,
        )
