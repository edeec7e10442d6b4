"""Waiting for a condition: the one polling loop (the lab, the player's socket, tests).

The daemon itself never polls like this: its loop sleeps on a ``Wakeup`` until a trigger or a
timer. This is for code that must wait for something outside it that has no event to offer (a
daemon's RPC port opening, a socket appearing, data arriving in a lab).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["poll", "wait_for"]

T = TypeVar("T")


def poll(fetch: Callable[[], T], until: Callable[[T], bool], *, timeout: float,
         interval: float = 0.1) -> T:
    """Call ``fetch`` until ``until`` holds for its result or ``timeout`` seconds pass; return
    the last result either way (a caller can report the state it last saw)."""
    deadline = time.monotonic() + timeout
    value = fetch()
    while not until(value) and time.monotonic() < deadline:
        time.sleep(interval)
        value = fetch()
    return value


def wait_for(predicate: Callable[[], T | None], timeout: float = 30.0, interval: float = 0.1,
             what: str = "condition") -> T:
    """Poll ``predicate()`` until it returns something truthy; return it. Raises
    ``TimeoutError`` naming ``what`` after ``timeout`` seconds."""
    value = poll(predicate, bool, timeout=timeout, interval=interval)
    if not value:
        raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
    return value
