"""Notifications: where the fleet tells its owner what needs attention (``fleet.yaml: notify``).

Targets are apprise URLs (Discord webhooks, ntfy, Matrix, Telegram, Slack, e-mail...) given by
reference only: a webhook URL is a credential, so the whole URL lives in the node's environment
or secrets directory, never in the repo. Which events exist and how they are found is in
``controller/planner/alerts.py``; how they are sent, in ``controller/daemon/notifier.py``
(docs/notifications.md).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, StringConstraints, field_validator

from schemas.base import Model, SecretRef
from schemas.types import Duration, Name, parse_duration

__all__ = ["ONE_SHOT", "Alert", "EventKind", "Notifications", "NotifyTarget", "QuietHours"]

_TIME_OF_DAY = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
_ZONE = re.compile(r"^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+){0,2}$")


class EventKind(StrEnum):
    """What the fleet tells its owner; each one but news (``ONE_SHOT``) also sends a message when
    it clears."""

    below_floor = "below-floor"
    """An item has fewer counted copies than its floor, for longer than ``below_floor_after``."""
    floor_unreachable = "floor-unreachable"
    """A rule's floor cannot be met: no other eligible custodian is live or has room."""
    copy_lost = "copy-lost"
    """A node holding copies is gone past its grace period."""
    dead_torrent = "dead-torrent"
    """The reaper's ladder is exhausted for a torrent."""
    refused_revision = "refused-revision"
    """A revision of the fleet repo was refused (invalid or unsigned), with file:line."""
    vpn_down = "vpn-down"
    """A VPN profile is down on a node and its kill switch stopped public torrents."""
    acquired = "acquired"
    """The acquirer's commit of a release reached the fleet: news, told once, never resolved."""
    search_failing = "search-failing"
    """A watchlist entry's searches keep failing (several in a row)."""


ONE_SHOT = frozenset({EventKind.acquired})
"""Events that are news rather than conditions: told once, with no "resolved" message."""


class QuietHours(Model):
    """A daily window in which nothing is sent; what happened meanwhile goes out, grouped, when
    it ends."""

    begin: Annotated[str, StringConstraints(pattern=_TIME_OF_DAY)] = Field(
        description="Start, HH:MM.")
    end: Annotated[str, StringConstraints(pattern=_TIME_OF_DAY)] = Field(
        description="End, HH:MM (before begin: the window spans midnight).")
    timezone: str = Field(default="UTC", description="IANA time zone of begin and end.")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        if not _ZONE.match(v) or ".." in v:
            raise ValueError(f"{v!r} is not an IANA time zone name (e.g. Europe/Paris)")
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown time zone {v!r}") from e
        return v


class NotifyTarget(Model):
    """One destination of messages."""

    name: Name = Field(description="Name of the target (``tva notify test NAME``).")
    url: SecretRef = Field(
        description="The apprise URL (discord://ID/TOKEN, ntfys://host/topic, ...), by reference "
        "only: it holds the credential. The node's egress.allow must list its host.")
    events: list[EventKind] = Field(
        default_factory=lambda: list(EventKind),
        description="Events sent to this target (default: all).")
    max_per_hour: int = Field(
        default=12, ge=1, le=3600,
        description="At most this many messages an hour; more events wait and go out grouped.")
    quiet_hours: QuietHours | None = Field(
        default=None, description="This target's quiet hours (default: the fleet's).")


class Notifications(Model):
    """``notify:`` in fleet.yaml: the targets and when events are worth a message."""

    targets: list[NotifyTarget] = Field(default_factory=list, description="Where messages go.")
    senders: list[Name] = Field(
        default_factory=list,
        description="Devices that may send (the notifier duty); default: every device running "
        "the controller. Exactly one live one sends, chosen by rendezvous hashing.")
    below_floor_after: Duration = Field(
        default=parse_duration("10m"),
        description="How long an item stays below its floor before a message (a sleeping "
        "laptop's copy stops counting when its status goes stale).")
    quiet_hours: QuietHours | None = Field(default=None, description="Default quiet hours.")

    @field_validator("targets")
    @classmethod
    def _unique(cls, v: list[NotifyTarget]) -> list[NotifyTarget]:
        seen: set[str] = set()
        for t in v:
            if t.name in seen:
                raise ValueError(f"target {t.name!r} is declared twice")
            seen.add(t.name)
        return v


class Alert(Model):
    """An open condition the owner should hear about, as every node computes it
    (``controller/planner/alerts.py``); a message goes out when it opens (after ``after``) and
    when it clears."""

    key: str = Field(description="Stable identity: the same situation always has the same key.")
    kind: EventKind
    subject: str = Field(description="What it is about: an item, a node, a rule, a revision.")
    message: str = Field(description="One line for a person.")
    after: Duration = Field(default=parse_duration(0),
                            description="Open this long before a message goes out.")
