"""A coalescing "look again" signal shared by every trigger.

Triggers carry no payload the loop depends on (the loop is level-triggered and recomputes
everything); the reasons are kept only for logs and metrics.
"""

from __future__ import annotations

import threading

__all__ = ["Wakeup"]


class Wakeup:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._reasons: list[str] = []
        self._stopped = False

    def notify(self, reason: str) -> None:
        with self._cond:
            if reason not in self._reasons:
                self._reasons.append(reason)
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    @property
    def stopped(self) -> bool:
        return self._stopped

    def wait(self, timeout: float | None) -> list[str]:
        """Block until notified, stopped or ``timeout`` seconds pass; return and clear the reasons."""
        with self._cond:
            if not self._reasons and not self._stopped:
                self._cond.wait(timeout)
            reasons, self._reasons = self._reasons, []
            return reasons

    def sleep(self, seconds: float) -> bool:
        """Sleep unless stopped; True when the sleep was cut short by stop()."""
        with self._cond:
            if not self._stopped:
                self._cond.wait_for(lambda: self._stopped, timeout=seconds)
            return self._stopped
