"""What the read-only commands plan from: the desired state, the statuses, and ``now``.

Shared by ``tva plan``, ``tva fleet …``, ``tva status --fleet`` and ``tva review``, so they
read statuses the same way (``controller.status.open_transport``) and fix ``now`` by one rule
(``choose_now``): ``--now`` when given; else the newest status read, so the same saved or
published statuses give the same answer tomorrow (a note names that instant); else, with no
status at all, the clock. A status dated beyond ``FUTURE_TOLERANCE`` ahead of the clock does
not choose ``now`` (a forged or skewed status would make every other node look gone); the
planner reports it as stale. The daemon always plans as of its clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from controller.desired import load_fleet
from controller.errors import PermanentError
from controller.planner import FUTURE_TOLERANCE
from controller.status import open_transport
from schemas.desired import DesiredState
from schemas.observed import NodeStatus

__all__ = ["Inputs", "StatusSource", "choose_now", "load_inputs", "parse_now", "read_statuses"]


class StatusSource(Protocol):
    """Where statuses come from: a directory, the git status refs, a live peer."""

    def read_all(self) -> list[NodeStatus]: ...


@dataclass
class Inputs:
    desired: DesiredState
    now: datetime
    statuses: list[NodeStatus]
    notes: list[str] = field(default_factory=list)


def parse_now(value: str) -> datetime:
    """An ISO 8601 instant; without an offset it is taken as UTC."""
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as e:
        raise PermanentError(
            f"--now {value!r} is not an ISO 8601 time (e.g. 2025-06-01T20:00:00Z)"
        ) from e
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def choose_now(explicit: str | None, statuses: Sequence[NodeStatus],
               clock: datetime | None = None) -> tuple[datetime, str | None]:
    """The instant to plan at, and a note saying how it was chosen (see the module docstring)."""
    if explicit is not None:
        return parse_now(explicit), None
    clock = clock or datetime.now(UTC)
    dated = [s.observed_at for s in statuses if s.observed_at <= clock + FUTURE_TOLERANCE]
    if not dated:
        return clock, None
    when = max(dated)
    return when, (f"planned as of the newest status ({when.isoformat()}); "
                  "use --now to choose the instant")


def read_statuses(
    path: str, desired: DesiredState, *, status_dir: str | None, fleet_ref: bool,
    transport: StatusSource | None = None,
) -> tuple[list[NodeStatus], list[str]]:
    """The statuses from ``--status DIR``, ``--fleet-ref`` (the status refs of the checkout at
    ``path``, fetched) or a ready ``transport``; and notes on what was skipped."""
    if sum((status_dir is not None, transport is not None, fleet_ref)) > 1:
        raise PermanentError("give one source of fleet status: --status DIR or --fleet-ref")
    source: StatusSource | None = transport or open_transport(
        status_dir=status_dir, checkout=path if fleet_ref else None, policy=desired.fleet.status)
    if source is None:
        return [], ["no fleet status given (--status DIR or --fleet-ref): every node is unknown"]
    try:
        statuses = source.read_all()
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()
    return statuses, [f"status skipped: {s}" for s in getattr(source, "skipped", [])]


def load_inputs(
    path: str,
    *,
    status_dir: str | None = None,
    transport: StatusSource | None = None,
    fleet_ref: bool = False,
    now: str | None = None,
) -> Inputs:
    """Load the desired state and the observed statuses, and fix ``now``."""
    desired = load_fleet(path).desired
    statuses, notes = read_statuses(path, desired, status_dir=status_dir, fleet_ref=fleet_ref,
                                    transport=transport)
    when, note = choose_now(now, statuses)
    if note:
        notes.append(note)
    unknown = sorted({s.node for s in statuses} - set(desired.devices))
    if unknown:
        notes.append(f"statuses of nodes that are not devices are ignored: {', '.join(unknown)}")
    return Inputs(desired, when, statuses, notes)
