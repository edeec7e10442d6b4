"""Apply one node's actions from a plan, in a safe order, and journal every outcome.

- Only actions for this node; others are a programming error and refused.
- In the plan's order (VPN, stops and starts, additions and repairs, then removals, then the
  player: see ``controller/planner/assemble.py``); each removal is confirmed live first
  (``confirm.py``).
- Transient faults retry with capped exponential backoff and jitter (tenacity); permanent ones
  are recorded and not retried; nothing is retried forever — the next pass plans again.
- A stop request (SIGTERM) lets the current action finish, then returns.
- Intent first: each action is journalled as ``started`` before it runs, and its outcome after.
  When the journal cannot be written (a full disk), the action does not run and the pass stops
  there, failed for now: rate limits read the journal, so acting unrecorded would bypass them.
- New torrents fetched over the peer path alone are added ``add_spacing`` seconds apart.
  Transmission 3.00 closes a second incoming handshake from an address that already has one in
  progress (``peer-mgr.c``: ``incomingHandshakes`` is keyed by address, across torrents), and
  the side that was refused marks the holder unreachable and waits up to 15 minutes before
  trying again. Several pins fetched from one holder in the same instant would all but one
  stall; spaced, each torrent's first connection is made before the next torrent announces.
  An add that got web seeds (``controller.seeder``) does not wait on any handshake: the next
  add follows at once (the backend says so with ``peer_only``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from controller.act.confirm import Confirmer
from controller.errors import PermanentError, TemporaryError, TvaError
from controller.journal import Journal, JournalUnwritable
from schemas.journal import JournalEntry, Outcome
from schemas.plan import Action, ActionKind, Plan

__all__ = [
    "Applied",
    "Applier",
    "ApplyReport",
    "Backend",
]

log = logging.getLogger("tva.apply")


class Backend(Protocol):
    KINDS: frozenset[ActionKind]

    def apply(self, action: Action) -> str: ...

    def peer_only(self, action: Action) -> bool:
        """Did this applied ``add`` start a fetch over the peer path alone?"""
        ...


@dataclass
class Applied:
    action: Action
    outcome: Outcome
    result: str = ""
    error: str = ""
    temporary: bool = False
    """The failure may go away by itself (the daemon backs off and looks again soon)."""
    peer_only: bool = False
    """An add that fetches over the peer path alone: the next add waits ``add_spacing``."""


@dataclass
class ApplyReport:
    applied: list[Applied] = field(default_factory=list)
    stopped: bool = False

    @property
    def changed(self) -> bool:
        return any(a.outcome is Outcome.ok and a.result == "done" for a in self.applied)

    @property
    def failed(self) -> list[Applied]:
        return [a for a in self.applied if a.outcome is Outcome.failed]


class Applier:
    def __init__(
        self,
        node: str,
        backends: list[Backend],
        *,
        journal: Journal | None,
        confirmer: Confirmer | None,
        clock: Callable[[], datetime],
        should_stop: Callable[[], bool] = lambda: False,
        sleep: Callable[[float], object] | None = None,
        add_spacing: float = 2.0,
        attempts: int = 3,
        max_wait: float = 5.0,
    ) -> None:
        self.node = node
        self.backends = backends
        self.journal = journal
        self.confirmer = confirmer
        self.clock = clock
        self.should_stop = should_stop
        self.sleep = sleep or time.sleep
        self.add_spacing = add_spacing
        self._retry = retry(
            retry=retry_if_exception_type(TemporaryError),
            wait=wait_exponential_jitter(multiplier=0.25, max=max_wait),
            stop=stop_after_attempt(attempts),
            reraise=True,
        )

    def apply(self, plan: Plan, *, select: Callable[[Action], bool] = lambda a: True) -> ApplyReport:
        report = ApplyReport()
        mine = [a for a in plan.actions if a.node == self.node and select(a)]
        foreign = [a for a in plan.actions if a.node != self.node and select(a)]
        if foreign and plan.nodes == [self.node]:
            raise PermanentError(f"the plan for {self.node} holds actions for other nodes")
        added = False
        for action in mine:
            if self.should_stop():
                report.stopped = True
                break
            if action.kind is ActionKind.add and added:
                self.sleep(self.add_spacing)
                if self.should_stop():
                    report.stopped = True
                    break
            try:
                done = self._one(action, plan.revision)
            except JournalUnwritable as e:
                log.error("%s not run: %s", action.id, e, extra={"event": "journal-unwritable"})
                report.applied.append(Applied(action, Outcome.failed, error=f"not run: {e}", temporary=True))
                report.stopped = True
                break
            added = added or (action.kind is ActionKind.add and done.result == "done"
                              and done.peer_only)
            report.applied.append(done)
            try:
                self._record(done, plan.revision)
            except JournalUnwritable as e:
                log.error("%s: outcome not journalled: %s", action.id, e,
                          extra={"event": "journal-unwritable"})
                if done.outcome is Outcome.ok and action.kind is ActionKind.record_strike:
                    report.applied[-1] = Applied(action, Outcome.failed, error=str(e), temporary=True)
                report.stopped = True
                break
        return report

    def _one(self, action: Action, revision: str | None) -> Applied:
        """Carry out one action; its intent is journalled right before it runs (raises
        ``JournalUnwritable``, and runs nothing, when that fails)."""
        if action.kind is ActionKind.record_strike:
            return Applied(action, Outcome.ok, "recorded")  # only a record: nothing runs
        if action.destructive and self.confirmer is not None:
            why = self.confirmer.unconfirmed(action.target, list(action.relies_on))
            if why is not None:
                return Applied(action, Outcome.skipped, error=f"waiting: {why}")
        backend = next((b for b in self.backends if action.kind in b.KINDS), None)
        if backend is None:
            return Applied(action, Outcome.skipped, error=f"no actuator for {action.kind.value} on this node")
        self._write(action, Outcome.started, "", revision)
        try:
            result = self._retry(backend.apply)(action)
        except TvaError as e:
            log.warning("%s failed: %s", action.id, e, extra={"event": "action-failed", "action": action.id})
            return Applied(action, Outcome.failed, error=str(e), temporary=isinstance(e, TemporaryError))
        log.info("%s: %s", action.id, result, extra={"event": "action", "action": action.id, "result": result})
        return Applied(action, Outcome.ok, result, peer_only=backend.peer_only(action))

    def _record(self, done: Applied, revision: str | None) -> None:
        self._write(done.action, done.outcome, done.error, revision)

    def _write(self, a: Action, outcome: Outcome, error: str, revision: str | None) -> None:
        if self.journal is None:
            return
        extra: dict[str, object] = {}
        if a.kind is ActionKind.record_strike:
            progress = a.params.get("progress")
            extra = {"progress": int(progress) if progress is not None else None,
                     "detail": str(a.params.get("cause", ""))}
        self.journal.append([
            JournalEntry(
                at=self.clock(), node=self.node, action_id=a.id, kind=a.kind, target=a.target,
                outcome=outcome, error=error, revision=revision, **extra,
            )
        ])
