"""The journal: what a node's controller did, one entry per action it carried out.

The daemon appends one :class:`JournalEntry` per action it applied (or tried, or skipped); the
planner only *reads* it, and only for what the observed state cannot say:

- **Rate limits** of the reaper's recovery ladder: when a ``reannounce``, ``verify``,
  ``set-trackers`` or ``research`` was last tried for a torrent on a node.
- **Reaper strikes.** A torrent becomes dead only after several strikes with no progress in
  between, at least ``strike_interval`` apart. The planner says "record a strike now" with a
  ``record-strike`` action (it touches nothing); the daemon appends it like any other action,
  copying ``params.progress`` and ``params.cause`` into ``progress`` and ``detail``. The strikes
  are therefore plain journal entries of kind ``record-strike``: no second store, and the same
  retention rules as the rest of the journal.
- **Settle time** before pruning: a recent successful ``add`` of an item means a copy was just
  made, so copies of that item are not pruned until ``policy.custody.settle`` has passed.

Entries are immutable facts; a controller keeps at least the entries younger than the longest
interval of the reaper policy (``verify_every``, ``research_every``, ``dead_strikes *
strike_interval``) and may drop older ones. Format ``tva.journal/v1``; one JSON object per line
is the suggested storage.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.plan import ActionKind

__all__ = ["JOURNAL_FORMAT", "JournalEntry", "Outcome"]

JOURNAL_FORMAT: Final = "tva.journal/v1"


class Outcome(StrEnum):
    ok = "ok"
    """The action was carried out."""
    failed = "failed"
    """It was tried and failed (``error`` says why). Counts as tried for rate limits."""
    skipped = "skipped"
    """Not tried (suspended, a live check refused a removal...). Does not count as tried."""
    started = "started"
    """Written before the action runs (intent). Counts as tried: an action that was started
    and never finished (a crash, a full disk) still counts for rate limits."""


class JournalEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["tva.journal/v1"] = JOURNAL_FORMAT
    at: datetime = Field(description="When the action finished (aware UTC).")
    node: str = Field(description="The node that carried it out.")
    action_id: str = Field(description="The plan action's id, node/kind/target.")
    kind: ActionKind
    target: str = Field(description="The action's target: an info-hash, option or profile.")
    outcome: Outcome
    error: str = Field(default="", description="Why it failed or was skipped.")
    revision: str | None = Field(default=None, description="Fleet repo revision it applied.")
    progress: int | None = Field(
        default=None,
        description="record-strike only: bytes of the torrent verified at the strike. A later "
        "strike with a different value means the torrent progressed in between.",
    )
    detail: str = Field(
        default="", description="record-strike only: the cause (stalled, unregistered, ...)."
    )

    @property
    def tried(self) -> bool:
        """Did the node actually attempt it (for rate limits)?"""
        return self.outcome is not Outcome.skipped
