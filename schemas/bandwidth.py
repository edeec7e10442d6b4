"""Bandwidth policy: how fast a device's Transmission may move data, by time and situation.

Full speed at night, capped while someone watches, paused on battery (issue 13). The planner
turns it into Transmission's speed limits (``controller/planner/bandwidth.py``) and sets them
through the session like any other owned setting; this module only says what may be declared.
"""

from __future__ import annotations

from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from schemas.types import ByteSize

__all__ = ["DAYS", "BandwidthPolicy", "BandwidthWindow", "Day", "Rate"]

Day = Literal["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
DAYS: tuple[Day, ...] = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")

_TIME_OF_DAY = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rate(_Model):
    """Speed limits; a direction left out is not limited by this rule."""

    down: ByteSize | None = Field(default=None, description="Download bytes per second.")
    up: ByteSize | None = Field(default=None, description="Upload bytes per second.")
    pause: bool = Field(default=False, description="Nothing moves (both limits 0).")


class BandwidthWindow(Rate):
    """A time window and the speeds inside it: ``down``/``up`` left out mean full speed."""

    name: str = Field(default="", max_length=64, description="Shown in the plan's reasons.")
    begin: Annotated[str, StringConstraints(pattern=_TIME_OF_DAY)] = Field(
        description="Start, HH:MM in the policy's timezone.")
    end: Annotated[str, StringConstraints(pattern=_TIME_OF_DAY)] = Field(
        description="End, HH:MM; before begin means the window runs past midnight; equal to "
        "begin means the whole day.")
    days: list[Day] = Field(default_factory=lambda: list(DAYS),
                            description="Days the window starts on.")


class BandwidthPolicy(_Model):
    """A device's bandwidth schedule (``bandwidth:`` on a device, ``policy.bandwidth`` for the
    fleet). The first window holding now sets the speeds (outside every window: the session's
    ``speed`` limits); then ``while_playing`` and ``on_battery`` can only lower them."""

    timezone: str = Field(default="UTC", description="IANA time zone of the windows, e.g. "
                          "Europe/Berlin.")
    windows: list[BandwidthWindow] = Field(
        default_factory=list, max_length=64,
        description="Time windows in order; the first that holds now applies (quiet hours: "
        "pause: true).")
    while_playing: Rate | None = Field(
        default=None, description="Caps while the device's player is playing.")
    on_battery: Rate | None = Field(
        default=None, description="Caps while the device runs on battery (pause: true stops "
        "transfers).")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (an IANA name such as Europe/Berlin)") from None
        return v
