"""The reconcile loop's timing after a failure: backoff, a temporary error's own delay, and the
longer wait of a permanent one."""

from __future__ import annotations

import random

from controller.daemon.runner import Backoff, PassResult, Runner, retry_delay
from controller.daemon.wakeup import Wakeup
from controller.errors import PermanentError, TemporaryError, UnreachableError


def test_a_temporary_error_with_a_delay_sets_the_wait() -> None:
    assert retry_delay(TemporaryError("busy", delay=42.0), 0.5, 60.0, 300.0) == 42.0
    assert retry_delay(TemporaryError("busy", delay=9999.0), 0.5, 60.0, 300.0) == 300.0
    assert retry_delay(TemporaryError("busy", delay=-1.0), 0.5, 60.0, 300.0) == 0.0


def test_without_a_delay_the_backoff_decides() -> None:
    assert retry_delay(UnreachableError("down"), 0.75, 60.0, 300.0) == 0.75
    assert retry_delay(PermanentError("bad"), 0.75, 60.0, 300.0) == 60.0
    assert retry_delay(PermanentError("bad"), 0.75, 60.0, 10.0) == 10.0


def test_the_runner_sleeps_for_the_delay_an_error_asks_for() -> None:
    """The loop itself: the wakeup records each sleep instead of sleeping, and the second pass
    stops the loop."""
    slept: list[float] = []

    class Recording(Wakeup):
        def sleep(self, seconds: float) -> bool:
            slept.append(seconds)
            return False

    wakeup = Recording()
    calls: list[list[str]] = []

    def reconcile(reasons: list[str]) -> PassResult:
        calls.append(reasons)
        if len(calls) == 1:
            raise TemporaryError("the indexer said 429", delay=7.0)
        wakeup.stop()
        return PassResult()

    Runner(reconcile, wakeup, resync=300.0, backoff=Backoff(), rng=random.Random(1)).run()
    assert slept == [7.0]
    assert calls[1][0] == "retry"
