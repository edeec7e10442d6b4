"""The review as data, format ``tva.review/v1`` (``tva review --json``; docs/review.md).

Like the plan, a review is data first and text second: the Markdown comment and the terminal
output are renderings of this model, and the JSON form carries everything in full (no list is
truncated; only the Markdown summarises). Totals are computed here, from the full lists, so a
rendering that shortens a list can never get a total wrong.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.plan import Action, PlanWarning

__all__ = [
    "REVIEW_FORMAT",
    "CapacityRow",
    "ChangeRow",
    "Delta",
    "DutyMove",
    "FloorRow",
    "NodeDelta",
    "NodeSeen",
    "Review",
    "RevisionInfo",
    "Risk",
    "RiskCode",
    "RiskLevel",
]

REVIEW_FORMAT: Final = "tva.review/v1"


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RevisionInfo(Frozen):
    requested: str = Field(description="The revision as given (a branch, tag or commit).")
    revision: str | None = Field(default=None, description="The commit it names.")
    compared: str | None = Field(
        default=None,
        description="The commit whose desired state was compared: the same as revision, or for "
        "an invalid BASE its newest valid ancestor; None when nothing valid was found (an "
        "empty fleet was used).",
    )
    valid: bool = True
    problems: list[str] = Field(default_factory=list, description="Why it is invalid, if so.")


class NodeSeen(Frozen):
    node: str
    freshness: str
    observed_at: datetime | None = None


class ChangeRow(Frozen):
    kind: str
    name: str
    op: str
    detail: str
    text: str


class DutyMove(Frozen):
    duty: str
    before: list[str]
    after: list[str]


class Delta(Frozen):
    """HEAD's plan minus BASE's plan over the same statuses and instant, by action id."""

    pins: list[Action] = Field(
        default_factory=list, description="Copies HEAD adds that BASE does not (add actions)."
    )
    unpins: list[Action] = Field(
        default_factory=list, description="Copies BASE would add that HEAD no longer does."
    )
    removals: list[Action] = Field(
        default_factory=list, description="Removals HEAD plans that BASE does not."
    )
    removals_cancelled: list[Action] = Field(
        default_factory=list, description="Removals BASE plans that HEAD does not."
    )
    other_added: list[Action] = Field(default_factory=list)
    other_dropped: list[Action] = Field(default_factory=list)
    deferred_base: int = Field(default=0, description="BASE's pins left to later passes.")
    deferred_head: int = Field(default=0, description="HEAD's pins left to later passes.")
    projected_pins: int = Field(
        default=0,
        description="New copies once the rate limit has let every pin run (the plans computed "
        "without max_new_pins_per_node); equals len(pins) when nothing is deferred.",
    )
    projected_pin_bytes: int = 0
    projected_unpins: int = 0
    projected_unpin_bytes: int = 0

    @property
    def pin_bytes(self) -> int:
        return sum(a.bytes or 0 for a in self.pins)

    @property
    def removal_bytes(self) -> int:
        return sum(a.bytes or 0 for a in self.removals)

    @property
    def empty(self) -> bool:
        return not (self.pins or self.unpins or self.removals or self.removals_cancelled
                    or self.other_added or self.other_dropped or self.projected_pins
                    or self.projected_unpins)


class NodeDelta(Frozen):
    node: str
    pins: int = 0
    pin_bytes: int = 0
    projected_pins: int = 0
    projected_pin_bytes: int = 0
    unpins: int = 0
    unpin_bytes: int = 0
    removals: int = 0
    removal_bytes: int = 0
    other: int = Field(default=0, description="Other actions that appear or disappear.")


class CapacityRow(Frozen):
    node: str
    capacity: int = Field(description="Declared capacity (HEAD): what tva may fill.")
    free: int | None = Field(description="Observed free space, when known.")
    reserve: int
    held: int = Field(description="Bytes of the torrents it holds (observed).")
    incoming: int = Field(description="Bytes HEAD's plan adds there (rate limit lifted).")
    outgoing: int = Field(description="Bytes HEAD's plan removes there.")
    over_free: bool = Field(description="incoming - outgoing exceeds free space minus reserve.")
    over_capacity: bool = Field(description="held + incoming - outgoing exceeds capacity.")
    new: bool = Field(description="Over in HEAD and not in BASE.")

    @property
    def over(self) -> bool:
        return self.over_free or self.over_capacity


class FloorRow(Frozen):
    key: str
    name: str
    rule: str
    min: int
    copies: int = Field(description="Copies held now on the rule's eligible custodians.")
    after: int = Field(description="Copies once HEAD's planned pins complete.")
    reachable: bool = Field(description="after >= min.")


class RiskCode(StrEnum):
    data_removal = "data-removal"
    below_floor = "below-floor"
    capacity = "capacity"
    f2f_exposed = "f2f-exposed"
    face_at_home = "face-at-home"
    suspend_on = "suspend-on"
    prune_on = "prune-on"


class RiskLevel(StrEnum):
    danger = "danger"
    """Data or privacy can be lost."""
    warning = "warning"
    """Behaviour changes in a way worth a second look."""


class Risk(Frozen):
    code: RiskCode
    level: RiskLevel
    title: str
    summary: str = Field(description="One line, with the totals.")
    count: int = Field(description="How many things the flag is about (items, nodes, rules).")
    details: list[str] = Field(default_factory=list, description="One line per thing, in full.")


class Review(Frozen):
    format: Literal["tva.review/v1"] = REVIEW_FORMAT
    fleet: str
    base: RevisionInfo
    head: RevisionInfo
    now: datetime = Field(description="The instant both plans were computed for.")
    statuses: list[NodeSeen] = Field(default_factory=list)
    effect: bool = Field(description="HEAD means something else than BASE, or plans otherwise.")
    changes: list[ChangeRow] = Field(default_factory=list)
    duty_moves: list[DutyMove] = Field(default_factory=list)
    warnings_appeared: list[PlanWarning] = Field(default_factory=list)
    warnings_resolved: list[PlanWarning] = Field(default_factory=list)
    delta: Delta = Delta()
    nodes: list[NodeDelta] = Field(default_factory=list)
    capacity: list[CapacityRow] = Field(default_factory=list)
    floors: list[FloorRow] = Field(
        default_factory=list,
        description="Items that fall below a floor or cannot reach it in HEAD, and did not in "
        "BASE.",
    )
    risks: list[Risk] = Field(default_factory=list)
    suspended: bool = Field(default=False, description="HEAD sets policy.suspend.")
    notes: list[str] = Field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """Terraform's convention: 2 when the change has an effect, else 0."""
        return 2 if self.effect else 0
