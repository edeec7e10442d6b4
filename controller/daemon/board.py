"""The daemon's side of the dashboard (``controller.dashboard``): what a page may read.

A mixin of ``Daemon``, kept apart so the loop's module stays about the loop. Everything here
reads state the last pass left behind (no I/O but the journal's file and one committed blob).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from fastapi import FastAPI

from controller.dashboard import Inputs, SourceRef, install_dashboard

if TYPE_CHECKING:
    from controller.daemon.node import NodeRuntime, PassOutcome
    from controller.daemon.wakeup import Wakeup
    from controller.source.git import GitSource, Revision

__all__ = ["JOURNAL_SHOWN", "MAX_SOURCE_BYTES", "DashboardHooks"]

JOURNAL_SHOWN = timedelta(days=7)
"""How far back the history page reads the journal."""
MAX_SOURCE_BYTES = 1 << 20
"""The largest fleet repo file the source view shows (the loader refuses larger YAML anyway)."""


class DashboardHooks:
    """``controller.dashboard.DashboardSource`` over the daemon's last pass."""

    last: PassOutcome | None
    last_error: str | None
    last_revision: Revision | None
    planned: int
    runtime: NodeRuntime
    source: GitSource
    wakeup: Wakeup
    _lock: threading.Lock
    _current_token: Callable[[], str | None]
    _board_inputs: tuple[int, Inputs] | None = None

    def install_dashboard(self, app: FastAPI, *, secure: bool) -> None:
        install_dashboard(app, self, self._current_token, secure=secure,
                          stopping=lambda: self.wakeup.stopped)

    def dashboard_version(self) -> int:
        return self.planned

    def dashboard_inputs(self) -> Inputs | None:
        """The last pass's inputs, made once per pass (the journal is read then)."""
        with self._lock:
            last, error, version = self.last, self.last_error, self.planned
        if last is None:
            return None
        cached = self._board_inputs
        if cached is not None and cached[0] == version:
            return cached[1]
        rev = self.last_revision
        origins = self.source.origins(rev.applied) if rev is not None and rev.applied else {}
        inputs = Inputs(
            node=self.runtime.node, desired=last.desired, statuses=last.statuses, now=last.now,
            journal=self.runtime.journal.entries(last.now - JOURNAL_SHOWN),
            sources={k: SourceRef(f, line) for k, (f, line) in origins.items()}, error=error,
        )
        self._board_inputs = (version, inputs)
        return inputs

    def dashboard_secrets(self) -> Sequence[str]:
        return [self.runtime.token]

    def dashboard_file(self, path: str) -> str | None:
        rev = self.last_revision
        if rev is None or rev.applied is None or not path.endswith((".yaml", ".yml")):
            return None
        data = self.source.read_committed(rev.applied, path, MAX_SOURCE_BYTES)
        return None if data is None else data.decode("utf-8", "replace")
