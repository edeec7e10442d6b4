"""The bandwidth rule: what speed limits a device's Transmission gets right now (issue 13).

A device's ``bandwidth`` (or the fleet's ``policy.bandwidth``) is a schedule: the first of its
windows that holds ``now`` (in the policy's timezone) sets the limits, a window leaving a
direction out meaning full speed; outside every window the session's own ``speed`` limits
hold. Then two situations can only lower them: ``while_playing`` while the device's player is
playing (something open, not paused), and ``on_battery`` while it runs on battery. ``pause``
means limits of 0 (Transmission moves nothing; torrents keep their state, so nothing is
re-announced or re-checked when the limits lift). A situation the node does not report (no
player status, unknown power) does not apply.

The result is a set of session settings (``speed-limit-*``) that ``plan_session`` treats like
every other owned setting, with this rule's reason in the ``set-session`` action.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from schemas.bandwidth import DAYS, BandwidthPolicy, BandwidthWindow, Rate
from schemas.desired import SessionValue, SpeedLimits
from schemas.observed import NodeStatus

__all__ = ["Limits", "active_window", "limits_for", "player_playing", "speed_settings"]


@dataclass(frozen=True)
class Limits:
    """Bytes per second each way (None: unlimited) and why."""

    down: int | None
    up: int | None
    reason: str

    def rpc(self) -> dict[str, SessionValue]:
        out: dict[str, SessionValue] = {}
        for direction, value in (("down", self.down), ("up", self.up)):
            out[f"speed-limit-{direction}-enabled"] = value is not None
            if value is not None:
                # Transmission counts kB/s (k = 1000); a small cap stays a cap, not a pause.
                out[f"speed-limit-{direction}"] = 0 if value == 0 else max(1, value // 1000)
        return out


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def _holds(window: BandwidthWindow, local: datetime) -> bool:
    """Does ``window`` hold at ``local``? A window past midnight belongs to the day it starts."""
    begin, end = _minutes(window.begin), _minutes(window.end)
    minute = local.hour * 60 + local.minute
    today = DAYS[(local.weekday() + 1) % 7]  # Python's Monday is 0; DAYS starts on Sunday
    yesterday = DAYS[(local - timedelta(days=1)).isoweekday() % 7]
    if begin == end:
        return today in window.days
    if begin < end:
        return today in window.days and begin <= minute < end
    return (minute >= begin and today in window.days) or (minute < end
                                                         and yesterday in window.days)


def active_window(policy: BandwidthPolicy, now: datetime) -> BandwidthWindow | None:
    local = now.astimezone(ZoneInfo(policy.timezone))
    return next((w for w in policy.windows if _holds(w, local)), None)


def _lower(have: int | None, cap: int | None) -> int | None:
    if cap is None:
        return have
    return cap if have is None else min(have, cap)


def _apply(down: int | None, up: int | None, rate: Rate) -> tuple[int | None, int | None]:
    if rate.pause:
        return 0, 0
    return _lower(down, rate.down), _lower(up, rate.up)


def _shown(value: int | None) -> str:
    if value is None:
        return "unlimited"
    return "paused" if value == 0 else f"{value // 1000} kB/s"


def player_playing(status: NodeStatus) -> bool:
    p = status.player
    return bool(p is not None and p.reachable and p.path is not None and not p.idle
                and p.paused is False)


def limits_for(policy: BandwidthPolicy, base: SpeedLimits | None, now: datetime, *,
               playing: bool, on_ac_power: bool | None) -> Limits:
    """The device's speed limits at ``now``, given what its node reports."""
    window = active_window(policy, now)
    if window is not None:
        down, up = _apply(window.down, window.up, window)
        label = f"window {window.name + ' ' if window.name else ''}({window.begin}-{window.end})"
        why = [f"{label}: down {_shown(down)}, up {_shown(up)}"]
    else:
        down = base.down if base else None
        up = base.up if base else None
        why = ["outside every bandwidth window: the session's own limits"]
    if playing and policy.while_playing is not None:
        down, up = _apply(down, up, policy.while_playing)
        why.append(f"the player is playing: down {_shown(down)}, up {_shown(up)}")
    if on_ac_power is False and policy.on_battery is not None:
        down, up = _apply(down, up, policy.on_battery)
        why.append(f"on battery: down {_shown(down)}, up {_shown(up)}")
    return Limits(down, up, "; ".join(why))


def speed_settings(policy: BandwidthPolicy | None, base: SpeedLimits | None, now: datetime,
                   status: NodeStatus) -> tuple[dict[str, SessionValue], str] | None:
    """The ``speed-limit-*`` settings the bandwidth rule wants, with its reason; None when the
    device has no bandwidth policy (the session's ``speed`` alone decides)."""
    if policy is None:
        return None
    limits = limits_for(policy, base, now, playing=player_playing(status),
                        on_ac_power=status.on_ac_power)
    return limits.rpc(), limits.reason
