"""Small value types shared by the desired and observed models: durations, byte sizes, names."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, StringConstraints, WithJsonSchema

__all__ = [
    "ByteSize",
    "Duration",
    "InfoHash",
    "Label",
    "Name",
    "format_duration",
    "format_size",
    "parse_duration",
    "parse_size",
]

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: Any) -> timedelta:
    """Accept ``90s``, ``10m``, ``2h``, ``1d``, ``1w`` or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 90s, 10m, 2h or 1d")
    try:
        if isinstance(value, int | float):
            if value < 0:
                raise ValueError("a duration cannot be negative")
            return timedelta(seconds=value)
        if isinstance(value, str):
            m = _DURATION_RE.match(value)
            if m:
                return timedelta(seconds=float(m.group(1)) * _DURATION_UNITS[m.group(2)])
    except OverflowError:  # 1e400, .inf, 99999999999d: timedelta's limit is about 2.7 million years
        raise ValueError(f"duration {value!r} is too long") from None
    raise ValueError(f"expected a duration such as 90s, 10m, 2h or 1d, got {value!r}")


def format_duration(value: timedelta) -> str:
    """The shortest exact spelling of a duration in the units ``parse_duration`` reads."""
    seconds = value.total_seconds()
    for unit in ("w", "d", "h", "m"):
        size = _DURATION_UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(s|m|h|d|w)\s*$"},
            ],
            "description": "A duration: a number and a unit (s, m, h, d, w), e.g. 90s, 10m, 2h; "
            "or a number of seconds.",
        }
    ),
]

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTP]?i?B)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1,
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12, "pb": 10**15,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40, "pib": 2**50,
}


def parse_size(value: Any) -> int:
    """Accept a byte count or ``500MB``, ``1.5GiB``, ``8TiB`` (SI and binary units)."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 500MB, 1.5GiB or 8TiB")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a size cannot be negative")
        return value
    if isinstance(value, str):
        m = _SIZE_RE.match(value)
        if m:
            unit = (m.group(2) or "b").lower()
            try:
                return int(float(m.group(1)) * _SIZE_UNITS[unit])
            except OverflowError:  # "1e999"-long digit strings read as float infinity
                raise ValueError(f"size {value!r} is too large") from None
    raise ValueError(f"expected a size such as 500MB, 1.5GiB or 8TiB, got {value!r}")


def format_size(n: int) -> str:
    """Human binary units for tables and reasons (``1.5 GiB``)."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


ByteSize = Annotated[
    int,
    BeforeValidator(parse_size),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*([KMGTP]?i?B)?\s*$"},
            ],
            "description": "A size in bytes, or with a unit: 500MB, 1.5GiB, 8TiB.",
        }
    ),
]

Name = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$"),
]
"""A resource name: lower-case letters, digits, '.', '_' and '-', 1 to 64 characters."""

Label = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/:-]{0,127}$")]

InfoHash = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9a-fA-F]{40}$", to_lower=True),
]
"""A BitTorrent v1 info-hash: 40 hexadecimal digits."""
