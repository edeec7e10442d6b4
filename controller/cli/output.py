"""Terminal and JSON output shared by the commands.

Every string a command prints, in a table cell or a line, is rendered by ``SafeConsole``, which
passes it through ``controller.display.safe`` first: control and bidi characters from the fleet
repo (item names, reasons) are shown escaped and URL credentials redacted, whatever the command.
Rich markup is off unless a call asks for it (``markup=True``, with user values passed through
``esc``), so a name like ``[link=...]`` or ``[conceal]`` is shown as written; a styled cell is
``styled(text, style)``. JSON output is escaped by the encoder (``ensure_ascii``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.markup import escape as esc
from rich.text import Text

from controller.display import safe
from controller.errors import Problem

__all__ = [
    "SafeConsole",
    "emit_json",
    "err",
    "esc",
    "format_age",
    "out",
    "print_problems",
    "styled",
]



class SafeConsole(Console):
    """A rich console that never writes a control character it did not make itself."""

    def render_str(self, text: str, **kwargs: Any) -> Text:
        return super().render_str(safe(text, keep_newlines=True), **kwargs)


out = SafeConsole(soft_wrap=True, highlight=False, markup=False)
err = SafeConsole(stderr=True, soft_wrap=True, highlight=False, markup=False)


def styled(text: str, style: str) -> Text:
    """``text`` in ``style`` (a table cell, a rule's title), made safe like any other string."""
    return Text(safe(text), style=style)


def print_problems(problems: Iterable[Problem]) -> None:
    """Every problem of an invalid fleet repo, one ``file:line: field: message (hint)`` a line."""
    for p in problems:
        err.print(str(p), markup=False)


def emit_json(data: Any) -> None:
    """Write ``data`` as indented JSON on stdout (no rich markup, machine-readable)."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


def format_age(seconds: float) -> str:
    """A coarse human age: ``45s``, ``12m``, ``3h 5m``, ``54d 1h``."""
    s = int(max(seconds, 0))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"
