"""The plan: what each node should do and why, format version 1 (``docs/plan-format.md``).

A plan is data, as in Terraform: it can be shown, saved, reviewed and applied, and the
actuator never re-decides. Every action carries a stable id (the same situation always gives
the same id), the node that must carry it out, and a reason a person understands.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "DESTRUCTIVE_KINDS",
    "PLAN_FORMAT",
    "Action",
    "ActionKind",
    "DutyAssignment",
    "Frozen",
    "Plan",
    "PlanWarning",
    "Severity",
    "Summary",
    "action_id",
]

PLAN_FORMAT: Final = "tva.plan/v1"


class ActionKind(StrEnum):
    add = "add"
    start = "start"
    stop = "stop"
    remove_torrent = "remove-torrent"
    remove_data = "remove-data"
    reannounce = "reannounce"
    verify = "verify"
    set_labels = "set-labels"
    set_location = "set-location"
    set_limits = "set-limits"
    set_trackers = "set-trackers"
    drop_webseeds = "drop-webseeds"
    """Re-add an incomplete torrent without its web seeds, keeping its data (a holder served
    bytes that failed the hash check)."""
    add_webseeds = "add-webseeds"
    """Re-add an incomplete torrent with its live holders' web seeds, keeping its data (it was
    added when none could be had)."""
    set_session = "set-session"
    pin = "pin"
    unpin = "unpin"
    research = "research"
    player_set = "player-set"
    player_load = "player-load"
    player_stop = "player-stop"
    vpn_up = "vpn-up"
    vpn_down = "vpn-down"
    record_strike = "record-strike"
    """Touches nothing: the daemon appends a reaper strike to its journal (docs/planner.md)."""


DESTRUCTIVE_KINDS = frozenset({ActionKind.remove_torrent, ActionKind.remove_data, ActionKind.unpin})
"""Kinds that can lose a copy: shown separately, confirmed before apply, checked live."""


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Action(Frozen):
    id: str = Field(description="Stable: node/kind/target.")
    node: str
    kind: ActionKind
    target: str = Field(description="Info-hash, option name or profile the action is about.")
    reason: str
    params: dict[str, Any] = Field(default_factory=dict)
    rule: str | None = Field(default=None, description="e.g. custody/anime, watchlist/tv-shows.")
    bytes: int | None = Field(default=None, description="Bytes this action will move or free.")
    relies_on: list[str] = Field(
        default_factory=list,
        description="For removals: the nodes whose copies keep the floor; they are asked live "
        "before the removal runs.",
    )

    @property
    def destructive(self) -> bool:
        return self.kind in DESTRUCTIVE_KINDS


def action_id(node: str, kind: ActionKind, target: str) -> str:
    return f"{node}/{kind.value}/{target}"


class Severity(StrEnum):
    info = "info"
    warning = "warning"
    error = "error"


class PlanWarning(Frozen):
    code: str = Field(description="e.g. floor-unreachable, capacity-short, invariant-broken.")
    severity: Severity = Severity.warning
    message: str
    node: str | None = None
    subject: str | None = None


class DutyAssignment(Frozen):
    duty: str
    nodes: list[str]
    reason: str


class Summary(Frozen):
    actions: int = 0
    by_kind: dict[str, int] = Field(default_factory=dict)
    by_node: dict[str, int] = Field(default_factory=dict)
    destructive: int = 0
    bytes_to_move: int = 0
    deferred: int = Field(
        default=0,
        description="Pins left for a later pass by the per-node rate limit "
        "(policy.custody.max_new_pins_per_node).",
    )


class Plan(Frozen):
    format: Literal["tva.plan/v1"] = PLAN_FORMAT
    revision: str | None = None
    now: datetime = Field(description="The instant the plan was computed for.")
    nodes: list[str] = Field(description="Nodes this plan was computed for.")
    actions: list[Action] = Field(default_factory=list)
    warnings: list[PlanWarning] = Field(default_factory=list)
    duties: list[DutyAssignment] = Field(default_factory=list)
    summary: Summary = Summary()
    suspended: bool = Field(
        default=False,
        description="policy.suspend is set: the plan is shown, but controllers apply nothing.",
    )

    @property
    def changes(self) -> bool:
        return bool(self.actions)
