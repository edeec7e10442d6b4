"""The reconcile loop, shaped like controller-runtime's: a pass returns a result or raises;
the loop, not the logic, owns timing.

- One pass at a time; triggers arriving during a pass coalesce into one more pass.
- Success: wait for a trigger or the resync period.
- Failure: capped exponential backoff with jitter (fast first retry), reset by a success. A
  ``TemporaryError`` that knows when to try again (``delay``, e.g. a server's Retry-After)
  sets the wait instead, up to the resync period; a ``PermanentError`` waits at least the
  backoff cap (a person must act first).
- Stop (SIGTERM): the current pass finishes its current action, then the loop returns.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass

from controller.daemon.wakeup import Wakeup
from controller.errors import PermanentError, TemporaryError

__all__ = ["Backoff", "PassResult", "Runner", "retry_delay"]

log = logging.getLogger("tva.daemon")


@dataclass(frozen=True)
class PassResult:
    changed: bool = False
    """The pass applied at least one action."""
    requeue_after: float | None = None
    """Look again sooner than the resync period (e.g. a transfer in progress)."""


@dataclass
class Backoff:
    base: float = 0.5
    cap: float = 60.0
    failures: int = 0

    def next_delay(self, rng: random.Random) -> float:
        self.failures += 1
        delay: float = min(self.cap, self.base * 2 ** (self.failures - 1))
        return delay * (0.5 + rng.random() / 2)  # "equal jitter": never less than half

    def reset(self) -> None:
        self.failures = 0


def retry_delay(error: BaseException, backoff: float, cap: float, resync: float) -> float:
    """How long to wait after a failed pass (see the module docstring)."""
    if isinstance(error, TemporaryError) and error.delay is not None:
        return min(max(error.delay, 0.0), resync)
    if isinstance(error, PermanentError):
        return max(backoff, min(cap, resync))
    return backoff


class Runner:
    def __init__(
        self,
        reconcile: Callable[[list[str]], PassResult],
        wakeup: Wakeup,
        *,
        resync: float,
        backoff: Backoff | None = None,
        on_error: Callable[[BaseException, int], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.reconcile = reconcile
        self.wakeup = wakeup
        self.resync = resync
        self.backoff = backoff or Backoff()
        self.on_error = on_error
        self.rng = rng or random.Random()
        self.passes = 0

    def run(self) -> None:
        reasons = ["start"]
        while not self.wakeup.stopped:
            try:
                result = self.reconcile(reasons)
            except Exception as e:  # every failure backs off; the loop itself never dies
                delay = retry_delay(e, self.backoff.next_delay(self.rng), self.backoff.cap,
                                    self.resync)
                log.warning("pass failed (%s); next try in %.1fs", e, delay,
                            extra={"event": "pass-failed", "error": str(e), "retry_in": delay})
                if self.on_error is not None:
                    self.on_error(e, self.backoff.failures)
                self.passes += 1
                if self.wakeup.sleep(delay):
                    break
                reasons = ["retry", *self.wakeup.wait(0)]
                continue
            self.passes += 1
            self.backoff.reset()
            timeout = result.requeue_after if result.requeue_after is not None else self.resync
            reasons = self.wakeup.wait(min(timeout, self.resync)) or ["resync"]
