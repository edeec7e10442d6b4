"""The bandwidth rule's arithmetic (issue 13): windows by local time and day, past midnight,
the first that holds wins, and the player and the battery only ever lower the limits."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from controller.planner.bandwidth import Limits, active_window, limits_for
from schemas.bandwidth import BandwidthPolicy
from schemas.desired import SpeedLimits

POLICY = BandwidthPolicy.model_validate({
    "timezone": "Europe/Berlin",
    "windows": [
        {"name": "night", "begin": "23:00", "end": "07:00", "days": ["fri", "sat"]},
        {"name": "quiet", "begin": "09:00", "end": "12:00", "days": ["mon"], "pause": True},
        {"name": "evening", "begin": "18:00", "end": "23:00", "down": "2MB", "up": "500kB"},
        {"name": "everything", "begin": "12:00", "end": "12:00", "days": ["wed"], "up": "1kB"},
    ],
    "while_playing": {"down": "1MB"},
    "on_battery": {"up": "50kB"},
})
BASE = SpeedLimits(down=5_000_000, up=1_000_000)


def _at(iso: str) -> datetime:
    return datetime.fromisoformat(iso).astimezone(UTC)


@pytest.mark.parametrize(("local", "window"), [
    ("2025-06-06T23:30:00+02:00", "night"),     # Friday night
    ("2025-06-07T03:00:00+02:00", "night"),     # past midnight: Saturday, started Friday
    ("2025-06-08T03:00:00+02:00", "night"),     # Sunday 03:00: started Saturday
    ("2025-06-09T03:00:00+02:00", None),        # Monday 03:00: Sunday starts no night
    ("2025-06-09T09:00:00+02:00", "quiet"),     # begin is inside
    ("2025-06-09T12:00:00+02:00", None),        # end is not
    ("2025-06-10T09:30:00+02:00", None),        # quiet is Mondays only
    ("2025-06-06T22:59:00+02:00", "evening"),   # Friday evening, before the night
    ("2025-06-04T03:00:00+02:00", "everything"),  # begin == end: all Wednesday
    ("2025-12-05T23:30:00+01:00", "night"),     # winter time: the same local hours
], ids=lambda v: str(v))
def test_windows_follow_local_time(local: str, window: str | None) -> None:
    found = active_window(POLICY, _at(local))
    assert (found.name if found else None) == window


def test_outside_every_window_the_session_limits_hold() -> None:
    got = limits_for(POLICY, BASE, _at("2025-06-10T14:00:00+02:00"), playing=False,
                     on_ac_power=True)
    assert (got.down, got.up) == (5_000_000, 1_000_000)
    assert "outside every bandwidth window" in got.reason


def test_playing_and_battery_only_lower_the_limits() -> None:
    evening = _at("2025-06-10T20:00:00+02:00")
    got = limits_for(POLICY, BASE, evening, playing=True, on_ac_power=False)
    assert (got.down, got.up) == (1_000_000, 50_000)
    assert "the player is playing" in got.reason and "on battery" in got.reason
    # A full-speed night stays capped by the player; unknown power does not count as battery.
    night = limits_for(POLICY, BASE, _at("2025-06-06T23:30:00+02:00"), playing=True,
                       on_ac_power=None)
    assert (night.down, night.up) == (1_000_000, None)
    # Never raised: a cap above the window's is no cap.
    quiet = limits_for(POLICY, BASE, _at("2025-06-09T10:00:00+02:00"), playing=True,
                       on_ac_power=False)
    assert (quiet.down, quiet.up) == (0, 0)


def test_limits_as_session_settings() -> None:
    assert Limits(0, None, "").rpc() == {"speed-limit-down-enabled": True, "speed-limit-down": 0,
                                         "speed-limit-up-enabled": False}
    # Under 1 kB/s is still a cap, not a pause.
    assert Limits(1500, 300, "").rpc()["speed-limit-up"] == 1


def test_a_policy_is_checked() -> None:
    with pytest.raises(ValidationError, match="unknown time zone"):
        BandwidthPolicy.model_validate({"timezone": "Mars/Olympus"})
    with pytest.raises(ValidationError):
        BandwidthPolicy.model_validate({"windows": [{"begin": "25:00", "end": "07:00"}]})
