"""Small helpers that turn numbers into the words of reasons and warnings."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from schemas.types import format_duration, format_size

__all__ = ["age", "names", "policy", "size"]


def age(value: timedelta | None) -> str:
    """A rounded, readable age: ``45s``, ``25m``, ``3h``, ``3h 20m``, ``2d 4h``."""
    if value is None:
        return "never"
    s = int(value.total_seconds())
    if s < 60:
        return f"{s}s"
    m = s // 60
    if m < 60:
        return f"{m}m"
    h, m = divmod(m, 60)
    if h < 24:
        return f"{h}h" if m == 0 else f"{h}h {m}m"
    d, h = divmod(h, 24)
    return f"{d}d" if h == 0 else f"{d}d {h}h"


def policy(value: timedelta) -> str:
    """A policy duration as the owner wrote it (``2h``, ``30m``)."""
    return format_duration(value)


def size(n: int | None) -> str:
    return "unknown size" if n is None else format_size(n)


def names(values: Iterable[str], empty: str = "none") -> str:
    out = ", ".join(values)
    return out or empty
