"""``tva history --node NAME``: the node's journal of applied actions."""

from __future__ import annotations

import os

from rich.table import Table

from controller.cli.output import emit_json, out
from controller.journal import Journal

__all__ = ["run"]


def run(node: str, state_dir: str, *, limit: int, as_json: bool) -> int:
    journal = Journal(os.path.join(state_dir, f"{node}.journal.jsonl"))
    entries = journal.entries()[-limit:] if limit > 0 else journal.entries()
    if as_json:
        emit_json([e.model_dump(mode="json") for e in entries])
        return 0
    t = Table(title=f"History of {node}", title_justify="left")
    for col in ("time", "action", "outcome", "revision", "error"):
        t.add_column(col)
    for e in entries:
        t.add_row(f"{e.at:%Y-%m-%d %H:%M:%S}", e.action_id, e.outcome.value,
                  (e.revision or "")[:12], e.error)
    out.print(t)
    return 0
