"""The desired state of a fleet: what the owner commits as YAML to the fleet repo.

Every file is one *resource* that names its schema version (``apiVersion: tva/v1``) and its
``kind``, as Kubernetes manifests do, so a later tva can still read an older repo. The loader
(``controller.desired``) turns a repo into one :class:`DesiredState`; these models only check
the shape and the rules that need no other file. Cross-file rules live in
``controller.desired.checks``.
"""

from __future__ import annotations

import posixpath
import re
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from schemas.acquisition import AcquiredRecord, AcquisitionPolicy
from schemas.bandwidth import BandwidthPolicy
from schemas.base import Model, SecretRef
from schemas.fabric import Fabric
from schemas.face import FacePolicy
from schemas.notify import Notifications
from schemas.repopath import repo_path_problem
from schemas.types import ByteSize, Duration, InfoHash, Label, Name, parse_duration

__all__ = [
    "API_VERSION",
    "KINDS",
    "MPV_ALLOWED_OPTIONS",
    "MPV_AUDIO_OUTPUTS",
    "MPV_REFUSED_OPTIONS",
    "MPV_VIDEO_OUTPUTS",
    "SUPPORTED_API_VERSIONS",
    "AbsPath",
    "Addresses",
    "Collection",
    "CustodyPolicy",
    "CustodyRule",
    "DesiredState",
    "Device",
    "DeviceClass",
    "DeviceCredentials",
    "Duty",
    "DutyPins",
    "Fleet",
    "FreshnessPolicy",
    "Indexer",
    "Item",
    "Model",
    "MpvValue",
    "Placement",
    "Player",
    "Policy",
    "Presence",
    "Provenance",
    "ReaperPolicy",
    "RemovalPolicy",
    "ResolvedItem",
    "Resource",
    "SecretRef",
    "Selector",
    "Service",
    "Source",
    "StatusPolicy",
    "StorageRoot",
    "SyncPolicy",
    "TrustLevel",
    "VpnProfile",
    "VpnType",
    "WatchEntry",
    "Watchlist",
    "infohash_from_magnet",
    "mpv_value_problem",
]

API_VERSION = "tva/v1"
SUPPORTED_API_VERSIONS = (API_VERSION,)


# --------------------------------------------------------------------------- enums


class DeviceClass(StrEnum):
    server = "server"
    desktop = "desktop"
    laptop = "laptop"
    tv = "tv"
    seedbox = "seedbox"
    phone = "phone"


class Service(StrEnum):
    transmission = "transmission"
    player = "player"
    controller = "controller"


class TrustLevel(StrEnum):
    """How far a device's copies count when its status is not fresh (git-annex's trust levels).

    ``trusted``: an offline archive; its copies count even when it has not reported lately.
    ``normal``: copies count only while the device's status is fresh.
    ``untrusted``: copies never count toward a floor (a phone, a friend's box).
    """

    untrusted = "untrusted"
    normal = "normal"
    trusted = "trusted"


class Duty(StrEnum):
    """Roles the fleet needs filled, assigned by the same pure function on every node.

    ``custodian``: keeps copies toward custody floors. ``public_swarm_face``: the only node
    that joins public swarms (at most one; without a VPN it must be a seedbox).
    ``acquirer``: runs searches for watchlists (at most one). ``player``: plays media.
    """

    custodian = "custodian"
    public_swarm_face = "public_swarm_face"
    acquirer = "acquirer"
    player = "player"


class Provenance(StrEnum):
    """Where an item came from; decides where it may be announced and searched."""

    fleet = "fleet"
    seedbox = "seedbox"
    public = "public"
    friend = "friend"
    private = "private"


class VpnType(StrEnum):
    wireguard = "wireguard"
    openvpn = "openvpn"


# --------------------------------------------------------------------------- fleet


class FreshnessPolicy(Model):
    """When a node's published status stops counting."""

    stale_after: Duration = Field(
        default=parse_duration("10m"),
        description="A node whose last status is older than this is stale: its copies no longer "
        "count (unless the device is trusted), but nothing moves yet.",
    )
    grace: Duration = Field(
        default=parse_duration("2h"),
        description="A node stale for longer than this is gone: the baton rolls and its items are "
        "re-pinned elsewhere. A laptop that sleeps for less than this causes no move.",
    )


class CustodyPolicy(Model):
    prune: bool = Field(
        default=False,
        description="Default for custody rules that do not say: may copies above a rule's max be "
        "removed?",
    )
    max_new_pins_per_node: int = Field(
        default=5, ge=1, description="Rate limit: at most this many new pins per node per pass."
    )
    settle: Duration = Field(
        default=parse_duration("30m"),
        description="Hysteresis: a node that came back must be fresh this long before copies "
        "made while it was away may be pruned.",
    )
    reserve: ByteSize = Field(
        default=0, description="Free space a custodian keeps beyond what its pins take."
    )


class ReaperPolicy(Model):
    """Thresholds that classify a torrent as healthy, stalled or dead, and the recovery ladder."""

    stalled_after: Duration = Field(
        default=parse_duration("6h"),
        description="An incomplete torrent with no progress and no peers sending for this long is "
        "stalled.",
    )
    dead_strikes: int = Field(
        default=3,
        ge=2,
        description="Consecutive strikes (stalled checks with no progress in between, or an "
        "'unregistered' tracker answer) before a torrent is dead.",
    )
    strike_interval: Duration = Field(
        default=parse_duration("1h"), description="Minimum time between two strikes."
    )
    unregistered_patterns: list[str] = Field(
        default_factory=lambda: [
            "unregistered torrent",
            "torrent not registered",
            "torrent not found",
            "infohash not found",
            "unknown torrent",
            "torrent has been deleted",
        ],
        description="Tracker messages (case-insensitive substrings) meaning the tracker no "
        "longer knows the torrent.",
    )
    outage_patterns: list[str] = Field(
        default_factory=lambda: [
            "tracker unavailable",
            "timed out",
            "timeout",
            "connection refused",
            "could not connect",
            "service unavailable",
            "bad gateway",
            "internal server error",
            "try again later",
        ],
        description="Tracker messages that describe an outage; never a strike.",
    )
    reannounce_every: Duration = Field(
        default=parse_duration("1h"),
        description="Recovery ladder: at most one reannounce per torrent this often.",
    )
    verify_every: Duration = Field(
        default=parse_duration("24h"),
        description="Recovery ladder: at most one data verification per torrent this often.",
    )
    research_every: Duration = Field(
        default=parse_duration("24h"),
        description="Recovery ladder: at most one public re-search per torrent this often "
        "(only where the item's source allows searching; never for f2f_only items).",
    )
    max_destructive_per_tracker: int = Field(
        default=3,
        ge=0,
        description="Per pass, at most this many destructive recovery steps for torrents of one "
        "tracker: guards against a tracker that briefly reports everything gone.",
    )


class SyncPolicy(Model):
    poll: Duration = Field(
        default=parse_duration("60s"), description="How often the daemon fetches the fleet repo."
    )
    resync: Duration = Field(
        default=parse_duration("5m"),
        description="Full reconcile at least this often even when nothing signalled a change.",
    )
    full_observe_every: Duration = Field(
        default=parse_duration("10m"),
        description="Full Transmission listing at least this often; incremental in between.",
    )


class StatusPolicy(Model):
    ref: Annotated[str, StringConstraints(pattern=r"^refs/[A-Za-z0-9._/-]+$")] = Field(
        default="refs/tva/status",
        description="Ref prefix under which each node publishes its status (one ref per node).",
    )
    history: int = Field(
        default=50,
        ge=1,
        le=10_000,
        description="Commits kept on each node's status ref; older ones are squashed away.",
    )


class Encryption(StrEnum):
    """Transmission's peer-connection encryption (``encryption`` in session-get)."""

    required = "required"
    preferred = "preferred"
    tolerated = "tolerated"


class Weekday(StrEnum):
    sun = "sun"
    mon = "mon"
    tue = "tue"
    wed = "wed"
    thu = "thu"
    fri = "fri"
    sat = "sat"


_DAY_BITS = {Weekday.sun: 1, Weekday.mon: 2, Weekday.tue: 4, Weekday.wed: 8, Weekday.thu: 16,
             Weekday.fri: 32, Weekday.sat: 64}
"""Transmission's ``alt-speed-time-day`` bits."""

_TIME_OF_DAY = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"

SessionValue = bool | int | float | str
"""A value of Transmission's session-set/session-get."""


def _kbps(value: int) -> int:
    """Transmission's speed units: kB/s, with k = 1000."""
    return value // 1000


def _limit(out: dict[str, SessionValue], enabled: str, key: str, value: SessionValue | None) -> None:
    """A Transmission limit: its switch, and its value when it is on."""
    out[enabled] = value is not None
    if value is not None:
        out[key] = value


def _whole_minutes(value: timedelta | None) -> int | None:
    return None if value is None else max(1, int(value.total_seconds() // 60))


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


class SpeedLimits(Model):
    down: ByteSize | None = Field(default=None, description="Download bytes per second; none: unlimited.")
    up: ByteSize | None = Field(default=None, description="Upload bytes per second; none: unlimited.")


class AltSpeed(Model):
    """Turtle mode on a schedule: e.g. slower while the household is awake."""

    down: ByteSize = Field(description="Download bytes per second inside the window.")
    up: ByteSize = Field(description="Upload bytes per second inside the window.")
    begin: Annotated[str, StringConstraints(pattern=_TIME_OF_DAY)] = Field(
        description="Start of the window, HH:MM (the node's local time).")
    end: Annotated[str, StringConstraints(pattern=_TIME_OF_DAY)] = Field(
        description="End of the window, HH:MM.")
    days: list[Weekday] = Field(
        default_factory=lambda: list(Weekday), description="Days the window applies to.")


class Queueing(Model):
    downloads: int | None = Field(default=None, ge=1, le=1000,
                                  description="At most this many downloads at once; none: no queue.")
    seeds: int | None = Field(default=None, ge=1, le=100_000,
                              description="At most this many seeding at once; none: no queue.")
    stalled_after: Duration | None = Field(
        default=None, description="A download idle this long leaves the queue's count.")


class Seeding(Model):
    ratio: float | None = Field(default=None, ge=0, le=1000,
                                description="Stop seeding a torrent at this upload ratio.")
    idle: Duration | None = Field(default=None, description="Stop seeding a torrent idle this long.")


class TransmissionSession(Model):
    """The Transmission session settings tva owns on a node (``policy.transmission`` for the
    fleet, ``transmission`` on a device to override it). A setting left out is left alone:
    tva neither reads it as drift nor changes it."""

    dht: bool | None = Field(default=None, description="Distributed hash table.")
    pex: bool | None = Field(default=None, description="Peer exchange.")
    lpd: bool | None = Field(default=None, description="Local peer discovery.")
    utp: bool | None = Field(default=None, description="The uTP transport.")
    encryption: Encryption | None = Field(default=None, description="Peer-connection encryption.")
    peer_port: int | None = Field(default=None, ge=1, le=65535, description="The peer port.")
    speed: SpeedLimits | None = Field(default=None, description="Speed limits.")
    alt_speed: AltSpeed | None = Field(default=None, description="Scheduled alternative speeds.")
    queue: Queueing | None = Field(default=None, description="Download and seed queues.")
    seeding: Seeding | None = Field(default=None, description="When torrents stop seeding.")

    def over(self, base: TransmissionSession) -> TransmissionSession:
        """These settings, with ``base`` filling in what they leave out (one level deep)."""
        mine = self.model_dump(exclude_none=True)
        merged = {**base.model_dump(exclude_none=True), **mine}
        return TransmissionSession.model_validate(merged)

    def rpc(self) -> dict[str, SessionValue]:
        """The settings as Transmission's session-set arguments."""
        out: dict[str, SessionValue] = {}
        for field, key in (("dht", "dht-enabled"), ("pex", "pex-enabled"),
                           ("lpd", "lpd-enabled"), ("utp", "utp-enabled")):
            value = getattr(self, field)
            if value is not None:
                out[key] = bool(value)
        if self.encryption is not None:
            out["encryption"] = self.encryption.value
        if self.peer_port is not None:
            out["peer-port"] = self.peer_port
        if self.speed is not None:
            for direction in ("down", "up"):
                limit = getattr(self.speed, direction)
                out[f"speed-limit-{direction}-enabled"] = limit is not None
                if limit is not None:
                    out[f"speed-limit-{direction}"] = _kbps(limit)
        if self.alt_speed is not None:
            alt = self.alt_speed
            out.update({
                "alt-speed-down": _kbps(alt.down), "alt-speed-up": _kbps(alt.up),
                "alt-speed-time-enabled": True,
                "alt-speed-time-begin": _minutes(alt.begin),
                "alt-speed-time-end": _minutes(alt.end),
                "alt-speed-time-day": sum(_DAY_BITS[d] for d in set(alt.days)),
            })
        if self.queue is not None:
            q = self.queue
            _limit(out, "download-queue-enabled", "download-queue-size", q.downloads)
            _limit(out, "seed-queue-enabled", "seed-queue-size", q.seeds)
            _limit(out, "queue-stalled-enabled", "queue-stalled-minutes",
                   _whole_minutes(q.stalled_after))
        if self.seeding is not None:
            s = self.seeding
            _limit(out, "seedRatioLimited", "seedRatioLimit", s.ratio)
            _limit(out, "idle-seeding-limit-enabled", "idle-seeding-limit", _whole_minutes(s.idle))
        return out


SESSION_KEYS: tuple[str, ...] = (
    "dht-enabled", "pex-enabled", "lpd-enabled", "utp-enabled", "encryption", "peer-port",
    "speed-limit-down-enabled", "speed-limit-down", "speed-limit-up-enabled", "speed-limit-up",
    "alt-speed-down", "alt-speed-up", "alt-speed-time-enabled", "alt-speed-time-begin",
    "alt-speed-time-end", "alt-speed-time-day", "download-queue-enabled", "download-queue-size",
    "seed-queue-enabled", "seed-queue-size", "queue-stalled-enabled", "queue-stalled-minutes",
    "seedRatioLimited", "seedRatioLimit", "idle-seeding-limit-enabled", "idle-seeding-limit",
)
"""Every session setting tva can own (``TransmissionSession.rpc``); the observer reads these."""


class DriftMode(StrEnum):
    correct = "correct"
    """Set a drifted session setting back (``set-session``)."""
    warn = "warn"
    """Only report it (a plan warning)."""

class RemovalPolicy(Model):
    """How many copies may go at once: a bad commit must not empty the fleet in one pass."""

    per_pass: int = Field(
        default=10, ge=1, le=100_000,
        description="Removals one node applies in one pass; the rest wait for the next pass.",
    )
    per_revision: int = Field(
        default=20, ge=1, le=100_000,
        description="When the fleet's plan holds more removals than this, none is applied (the "
        "revision is held) until the owner sets acknowledge to at least that number.",
    )
    acknowledge: int = Field(
        default=0, ge=0, le=1_000_000,
        description="The owner's consent to a larger removal: plans with at most this many "
        "removals are not held. Set it to the number a held plan names; reset it afterwards.",
    )




class Policy(Model):
    suspend: bool = Field(
        default=False, description="When true, controllers observe and plan but apply nothing."
    )
    freshness: FreshnessPolicy = Field(
        default=FreshnessPolicy(),
        description="When a node's status stops counting, and when the node counts as gone.",
    )
    custody: CustodyPolicy = Field(
        default=CustodyPolicy(), description="Defaults and rate limits for custody rules."
    )
    reaper: ReaperPolicy = Field(
        default=ReaperPolicy(),
        description="When a torrent is stalled or dead, and how often each recovery step may run.",
    )
    sync: SyncPolicy = Field(
        default=SyncPolicy(),
        description="How often controllers fetch the fleet repo, reconcile and observe.",
    )
    transmission: TransmissionSession = Field(
        default=TransmissionSession(),
        description="Transmission session settings tva owns on every node (a device's "
        "transmission: overrides them); settings left out are left alone.",
    )
    session_drift: DriftMode = Field(
        default=DriftMode.correct,
        description="What to do when a node's session differs: correct it, or warn only.",
    )
    removals: RemovalPolicy = Field(
        default=RemovalPolicy(),
        description="Budgets of removals per pass and per revision, and the owner's acknowledgement.",
    )
    bandwidth: BandwidthPolicy | None = Field(
        default=None,
        description="Bandwidth schedule of every device that has none of its own (bandwidth:).",
    )
    public_face: FacePolicy = Field(
        default=FacePolicy(),
        description="How public items enter the fleet when the public_swarm_face is away.",
    )


class Fleet(Model):
    """``fleet.yaml``: the fleet's name and policies."""

    api_version: Literal["tva/v1"] = Field(alias="apiVersion")
    kind: Literal["Fleet"]
    name: Name
    description: str = ""
    policy: Policy = Field(default=Policy(), description="Policies every controller follows.")
    status: StatusPolicy = Field(
        default=StatusPolicy(),
        description="How nodes publish their observed status in the fleet repo.",
    )
    notify: Notifications = Field(
        default=Notifications(),
        description="Where the fleet tells its owner what needs attention (docs/notifications.md).",
    )


# --------------------------------------------------------------------------- devices

AbsPath = Annotated[str, StringConstraints(min_length=1, max_length=4096)]


def _normal_abs_path(value: str) -> str:
    if "\x00" in value:
        raise ValueError("a path cannot contain NUL")
    if not value.startswith("/"):
        raise ValueError(f"{value!r} is not an absolute path")
    if ".." in value.split("/"):
        raise ValueError(f"{value!r} contains '..'; give the path without it")
    return posixpath.normpath(value)


class StorageRoot(Model):
    path: AbsPath = Field(description="Absolute path of a storage root on the device.")
    capacity: ByteSize = Field(description="How much of it tva may fill.")

    _check_path = field_validator("path")(classmethod(lambda cls, v: _normal_abs_path(v)))


_HOSTPORT = r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$"


class Presence(Model):
    """How a device comes and goes: a laptop that sleeps every night and leaves for weekends is
    not failing when it does."""

    expected_absence: Duration | None = Field(
        default=None,
        description="How long this device is normally away (sleep, weekends). Its copies are "
        "held, not re-pinned, while it is away for less than this or the fleet's grace, "
        "whichever is longer. Unset: the fleet's grace alone.",
    )


class Addresses(Model):
    transmission_rpc: Annotated[str, StringConstraints(pattern=r"^https?://")] | None = Field(
        default=None, description="Transmission RPC URL, e.g. http://127.0.0.1:9091/transmission/rpc"
    )
    controller_api: Annotated[str, StringConstraints(pattern=r"^https?://")] | None = Field(
        default=None, description="This device's tva controller API, e.g. http://nas.lan:8765"
    )
    peer: Annotated[str, StringConstraints(pattern=_HOSTPORT)] | None = Field(
        default=None, description="BitTorrent peer address as host:port."
    )

    @field_validator("transmission_rpc", "controller_api")
    @classmethod
    def _no_userinfo(cls, v: str | None) -> str | None:
        if v is not None and re.match(r"^https?://[^/]*@", v):
            raise ValueError(
                "credentials in a URL are refused; put them in credentials: as a reference"
            )
        return v


class DeviceCredentials(Model):
    transmission_user: str | None = Field(
        default=None, description="Transmission RPC user name (not a secret)."
    )
    transmission_password: SecretRef | None = Field(
        default=None, description="Transmission RPC password, by reference."
    )
    api_token: SecretRef | None = Field(
        default=None, description="Token that other controllers present to this one's API."
    )


MPV_ALLOWED_OPTIONS = frozenset(
    {
        "volume", "volume-max", "mute", "fullscreen", "fs", "keep-open", "loop-file",
        "loop-playlist", "speed", "hwdec", "vo", "ao", "audio-device", "alang", "slang", "sid",
        "aid", "sub-auto", "sub-visibility", "sub-scale", "sub-font-size", "sub-delay",
        "audio-delay", "deinterlace", "video-sync", "interpolation", "profile",
        "save-position-on-quit", "resume-playback", "force-window", "osd-level",
        "screenshot-format", "audio-channels", "replaygain", "cache", "cache-secs",
        "demuxer-max-bytes", "ytdl", "pause", "start", "gapless-audio",
        "contrast", "brightness", "saturation", "gamma", "panscan", "video-aspect-override",
        "hr-seek", "audio-pitch-correction", "terminal", "msg-level",
    }
)
"""mpv options the player settings may set. Options that load code or files that load code
(``script``, ``scripts``, ``input-conf``, ``include``, ``config-dir``, ``load-scripts``,
``script-opts``, ``input-ipc-server``...) are deliberately absent: the fleet repo is
untrusted input and must not run code on a node."""

MPV_REFUSED_OPTIONS = frozenset(
    {
        "script", "scripts", "scripts-append", "scripts-add", "load-scripts", "script-opts",
        "input-conf", "include", "config-dir", "config", "use-filedir-conf", "load-stats-overlay",
        "load-auto-profiles", "input-ipc-server", "input-file", "ytdl-path",
        "script-opts-append", "log-file", "dump-stats", "stream-dump", "record-file",
        "screenshot-directory", "watch-later-directory", "input-ipc-client",
        # Filter graphs can write files (``af=ametadata=mode=print:file=PATH``, ``lavfi``).
        "af", "vf", "lavfi-complex", "af-append", "vf-append", "af-add", "vf-add",
        "ao-pcm-file", "vo-image-outdir", "o",
    }
)

MPV_AUDIO_OUTPUTS = frozenset({
    "auto", "pipewire", "pulse", "alsa", "jack", "coreaudio", "audiounit", "wasapi", "sdl",
    "openal", "oss", "sndio", "opensles", "aaudio", "null",
})
"""Audio output drivers the settings may choose: ``pcm`` (writes a file) is not one."""

MPV_VIDEO_OUTPUTS = frozenset({
    "auto", "gpu", "gpu-next", "xv", "x11", "wlshm", "dmabuf-wayland", "drm", "sdl", "vaapi",
    "vdpau", "direct3d", "mediacodec_embed", "rpi", "null", "libmpv",
})
"""Video output drivers the settings may choose: ``image`` and ``tct``/``caca``/``sixel``
(files, the terminal) are not."""

_MPV_WORDS = r"[A-Za-z0-9_.+-]{0,64}"
_MPV_VALUE_PATTERNS: dict[str, str] = {
    "start": r"[+-]?[0-9:.]{1,16}%?|none",
    "video-aspect-override": r"[0-9.:-]{1,16}|no",
    "alang": r"[A-Za-z,-]{0,64}",
    "slang": r"[A-Za-z,-]{0,64}",
    "msg-level": r"[a-z0-9_/-]{1,32}=[a-z0-9]{1,8}(,[a-z0-9_/-]{1,32}=[a-z0-9]{1,8}){0,15}",
    "audio-device": r"[a-z0-9_-]{1,16}(/[A-Za-z0-9_.:,=@-]{0,128})?",
    "ao": r"[a-z0-9_-]{1,16}(,[a-z0-9_-]{1,16}){0,7},?",
    "vo": r"[a-z0-9_-]{1,16}(,[a-z0-9_-]{1,16}){0,7},?",
}
"""The shape of a string value, per option; every other option takes short plain words. No
value may hold a path, an option string (``:file=``) or mpv's ``%N%`` quoting."""

MpvValue = str | int | float | bool


def mpv_value_problem(name: str, value: MpvValue) -> str | None:
    """Why ``value`` may not be given to mpv option ``name``, or None when it may.

    Names are checked elsewhere (``MPV_ALLOWED_OPTIONS``); this checks what the name's value
    can do: choose a driver that writes files, or smuggle a path or sub-options."""
    if not isinstance(value, str):
        return None
    pattern = _MPV_VALUE_PATTERNS.get(name, _MPV_WORDS)
    if not re.fullmatch(pattern, value) or "file" in value.lower():
        return (f"mpv option {name!r}: value {value!r} is refused (a plain setting only: no "
                "paths, sub-options or file outputs)")
    if name in ("ao", "audio-device"):
        drivers = [value.split("/", 1)[0]] if name == "audio-device" else value.split(",")
        bad = [d for d in drivers if d and d not in MPV_AUDIO_OUTPUTS]
        if bad:
            return f"mpv option {name!r}: audio output {bad[0]!r} is not on tva's allow-list"
    if name == "vo":
        bad = [d for d in value.split(",") if d and d not in MPV_VIDEO_OUTPUTS]
        if bad:
            return f"mpv option 'vo': video output {bad[0]!r} is not on tva's allow-list"
    return None


class Player(Model):
    """The player on a device: mpv settings and, optionally, what it should be playing."""

    options: dict[str, MpvValue] = Field(
        default_factory=dict,
        description="mpv options (from an allow-list; options that run code are refused).",
    )
    queue: list[str] = Field(
        default_factory=list,
        description="What the player should be playing, in order: item names (or infohashes).",
    )

    @field_validator("options")
    @classmethod
    def _allowed_options(cls, v: dict[str, MpvValue]) -> dict[str, MpvValue]:
        for key, value in v.items():
            if key in MPV_REFUSED_OPTIONS:
                raise ValueError(f"mpv option {key!r} is refused: it loads or runs code "
                                 "or writes files")
            if key not in MPV_ALLOWED_OPTIONS:
                raise ValueError(
                    f"mpv option {key!r} is not on tva's allow-list "
                    "(see docs/reference.md#player)"
                )
            if (problem := mpv_value_problem(key, value)) is not None:
                raise ValueError(problem)
        return v


class Device(Model):
    """``devices/NAME.yaml``: one machine of the fleet."""

    api_version: Literal["tva/v1"] = Field(alias="apiVersion")
    kind: Literal["Device"]
    name: Name
    description: str = ""
    device_class: DeviceClass = Field(
        alias="class",
        description="What kind of machine it is; decides the duties it may hold (a phone is "
        "never a custodian; a public_swarm_face without a VPN must be a seedbox).",
    )
    services: list[Service] = Field(
        default_factory=lambda: [Service.transmission, Service.controller],
        description="What runs on it: transmission (a Transmission daemon), player (mpv), "
        "controller (the tva controller and its API).",
    )
    always_on: bool = Field(
        default=False,
        description="Up all the time (a NAS, a seedbox) rather than sleeping (a laptop).",
    )
    trust: TrustLevel = Field(
        default=TrustLevel.normal,
        description="How far its copies count toward custody floors (git-annex's trust levels): "
        "trusted copies count even when its status is stale, untrusted copies never count.",
    )
    labels: list[Label] = Field(
        default_factory=list,
        description="Free-form labels; custody placement can require them (placement.labels).",
    )
    storage: list[StorageRoot] = Field(
        default_factory=list,
        description="Storage roots tva may use, each with the capacity tva may fill. A device "
        "without storage is never a custodian.",
    )
    download_dir: AbsPath | None = Field(
        default=None,
        description="Where Transmission puts data; must be inside a storage root "
        "(default: the first root).",
    )
    presence: Presence = Field(
        default=Presence(),
        description="How it comes and goes (expected absence): decides when its copies stop "
        "being held.",
    )
    addresses: Addresses = Field(
        default=Addresses(),
        description="How to reach its Transmission RPC, its controller API and its peer port.",
    )
    credentials: DeviceCredentials = Field(
        default=DeviceCredentials(),
        description="Credentials for its Transmission RPC and controller API, by reference only.",
    )
    vpn: Name | None = Field(default=None, description="Name of the VPN profile it uses.")
    transmission: TransmissionSession | None = Field(
        default=None,
        description="Transmission session settings for this device, over the fleet's "
        "policy.transmission.",
    )
    player: Player | None = Field(
        default=None,
        description="mpv settings and play queue, for a device that runs the player service.",
    )
    bandwidth: BandwidthPolicy | None = Field(
        default=None,
        description="Bandwidth schedule (quiet windows, caps while playing or on battery), "
        "over the fleet's policy.bandwidth; applied as Transmission's speed limits.",
    )

    @field_validator("download_dir")
    @classmethod
    def _download_dir(cls, v: str | None) -> str | None:
        return None if v is None else _normal_abs_path(v)

    @model_validator(mode="after")
    def _confined(self) -> Self:
        if self.download_dir is not None:
            if not self.storage:
                raise ValueError("download_dir is set but the device has no storage roots")
            if not any(_inside(self.download_dir, r.path) for r in self.storage):
                roots = ", ".join(r.path for r in self.storage)
                raise ValueError(
                    f"download_dir {self.download_dir} is outside the storage roots ({roots})"
                )
        return self

    @property
    def effective_download_dir(self) -> str | None:
        if self.download_dir is not None:
            return self.download_dir
        return self.storage[0].path if self.storage else None

    @property
    def capacity(self) -> int:
        return sum(r.capacity for r in self.storage)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


class DutyPins(Model):
    """``duties.yaml``: duties pinned to devices. A pin must still satisfy the invariants."""

    api_version: Literal["tva/v1"] = Field(alias="apiVersion")
    kind: Literal["Duties"]
    pins: dict[
        Duty,
        Annotated[
            list[Name],
            BeforeValidator(
                lambda v: [v] if isinstance(v, str) else v,
                json_schema_input_type=Name | list[Name],
            ),
        ],
    ] = Field(
        default_factory=dict,
        description="duty -> device name (or list of names for custodian and player).",
    )


# --------------------------------------------------------------------------- custody


class Selector(Model):
    """Which items a rule covers: the union of everything listed."""

    collections: list[Name] = Field(
        default_factory=list, description="Every item of these collections."
    )
    labels: list[Label] = Field(
        default_factory=list,
        description="Items carrying any of these labels (an item has its own labels and its "
        "collection's).",
    )
    infohashes: list[InfoHash] = Field(default_factory=list, description="These items.")
    watchlists: list[Name] = Field(
        default_factory=list, description="Items that these watchlists keep ready."
    )

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if not (self.collections or self.labels or self.infohashes or self.watchlists):
            raise ValueError(
                "a selector must name at least one of collections, labels, infohashes, watchlists"
            )
        return self


class Placement(Model):
    """Where copies may live. Empty lists mean "no constraint"."""

    classes: list[DeviceClass] = Field(
        default_factory=list, description="Only devices of these classes."
    )
    labels: list[Label] = Field(
        default_factory=list, description="A device must carry all of these."
    )
    devices: list[Name] = Field(default_factory=list, description="Only these devices.")
    exclude_devices: list[Name] = Field(
        default_factory=list, description="Never these devices."
    )


class CustodyRule(Model):
    """``custody/NAME.yaml``: keep ``min`` (and at most ``max``) complete copies of items."""

    api_version: Literal["tva/v1"] = Field(alias="apiVersion")
    kind: Literal["CustodyRule"]
    name: Name
    description: str = ""
    select: Selector = Field(description="Which items the rule covers.")
    min: int = Field(ge=0, le=64, description="The floor: copies the fleet must keep.")
    max: int | None = Field(default=None, ge=1, le=64, description="The ceiling, if any.")
    prune: bool | None = Field(
        default=None,
        description="May copies above max be removed? Default: the fleet's policy.custody.prune.",
    )
    placement: Placement = Field(
        default=Placement(), description="Which devices may hold the copies that count."
    )

    @model_validator(mode="after")
    def _min_le_max(self) -> Self:
        if self.max is not None and self.max < self.min:
            raise ValueError(f"max ({self.max}) is below min ({self.min})")
        return self


# --------------------------------------------------------------------------- items

_MAGNET_RE = re.compile(r"^magnet:\?", re.IGNORECASE)
_BTIH_RE = re.compile(r"[?&]xt=urn:btih:([0-9A-Fa-f]{40}|[A-Za-z2-7]{32})(?:&|$)")


def infohash_from_magnet(magnet: str) -> str | None:
    """The v1 info-hash of a magnet link (hex or base32 form), lower-case hex."""
    import base64

    m = _BTIH_RE.search(magnet)
    if not m:
        return None
    value = m.group(1)
    if len(value) == 32:
        return base64.b32decode(value.upper()).hex()
    return value.lower()


class Item(Model):
    """One torrent the fleet knows about."""

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [{"required": ["infohash"]}, {"required": ["magnet"]}, {"required": ["torrent"]}]
        }
    )

    name: Annotated[str, StringConstraints(min_length=1, max_length=256)] = Field(
        description="A title for people; player queues may name the item by it."
    )
    infohash: InfoHash | None = Field(
        default=None, description="The torrent's v1 info-hash (must match magnet and torrent)."
    )
    magnet: Annotated[str, StringConstraints(max_length=8192)] | None = Field(
        default=None, description="A magnet link with a urn:btih info-hash."
    )
    torrent: Annotated[str, StringConstraints(pattern=r"^[^/\x00][^\x00]*\.torrent$")] | None = (
        Field(default=None, description="Path of a committed .torrent file, relative to the repo.")
    )
    size: ByteSize | None = Field(default=None, description="Total size; read from .torrent if given.")
    labels: list[Label] = Field(
        default_factory=list, description="Labels in addition to the collection's."
    )
    provenance: Provenance | None = Field(
        default=None, description="Default: the collection's (or its source's) provenance."
    )
    source: Name | None = Field(default=None, description="Name of a Source it came from.")
    episode: int | None = Field(
        default=None, ge=0, description="Order within a show, for watchlists' keep-next-N."
    )

    @field_validator("magnet")
    @classmethod
    def _magnet(cls, v: str | None) -> str | None:
        if v is not None:
            if not _MAGNET_RE.match(v):
                raise ValueError("a magnet link starts with 'magnet:?'")
            if infohash_from_magnet(v) is None:
                raise ValueError("the magnet link has no urn:btih info-hash")
        return v

    @field_validator("torrent")
    @classmethod
    def _torrent(cls, v: str | None) -> str | None:
        why = None if v is None else repo_path_problem(v)
        if why is not None:
            raise ValueError(f"a .torrent path names a file in the repo: {why}")
        return v

    @model_validator(mode="after")
    def _identity(self) -> Self:
        if self.infohash is None and self.magnet is None and self.torrent is None:
            raise ValueError("an item needs an infohash, a magnet or a torrent file")
        if self.magnet is not None and self.infohash is not None:
            if infohash_from_magnet(self.magnet) != self.infohash:
                raise ValueError("the infohash does not match the magnet link's")
        return self

    @property
    def key(self) -> str | None:
        """The item's identity: its info-hash (None until the loader resolved a .torrent)."""
        if self.infohash is not None:
            return self.infohash
        if self.magnet is not None:
            return infohash_from_magnet(self.magnet)
        return None


class Collection(Model):
    """``items/NAME.yaml``: a named group of items with a shared provenance."""

    api_version: Literal["tva/v1"] = Field(alias="apiVersion")
    kind: Literal["Collection"]
    name: Name
    description: str = ""
    provenance: Provenance = Field(
        default=Provenance.fleet,
        description="Where the items came from, unless the source or the item says otherwise.",
    )
    source: Name | None = Field(
        default=None,
        description="Name of the Source the items came from; its provenance and gates apply.",
    )
    labels: list[Label] = Field(
        default_factory=list, description="Labels every item of the collection carries."
    )
    items: list[Item] = Field(
        default_factory=list, max_length=100_000, description="The torrents of the collection."
    )
    part_of: Name | None = Field(
        default=None,
        description="The items count as items of this other collection (an acquired release "
        "joins its show's collection from a file of its own).",
    )
    acquired: AcquiredRecord | None = Field(
        default=None, description="Written by the acquirer: what it chose, for what, and why.")


# --------------------------------------------------------------------------- watchlists


class WatchEntry(Model):
    """One thing to keep ready: a show (with keep-next-N), a film, or an explicit magnet."""

    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [{"required": ["show"]}, {"required": ["film"]}, {"required": ["magnet"]}]
        }
    )

    show: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = Field(
        default=None, description="A show: its next keep_next unwatched episodes are kept ready."
    )
    film: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = Field(
        default=None, description="A film to acquire and keep ready until watched."
    )
    magnet: Annotated[str, StringConstraints(max_length=8192)] | None = Field(
        default=None, description="An explicit magnet link to fetch."
    )
    collection: Name | None = Field(
        default=None, description="Collection whose items are this show's episodes or this film."
    )
    keep_next: int = Field(
        default=2, ge=0, le=100, description="Unwatched episodes to keep ready on the device."
    )
    query: str | None = Field(default=None, description="Search query for the indexer.")
    season: int | None = Field(
        default=None, ge=0, le=10_000,
        description="A show's season: its episodes are searched as SxxEyy (episode numbers from "
        "the items' episode field).",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = [k for k in ("show", "film", "magnet") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a watchlist entry is exactly one of show, film or magnet")
        if self.magnet is not None and infohash_from_magnet(self.magnet) is None:
            raise ValueError("the magnet link has no urn:btih info-hash")
        return self


class Watchlist(Model):
    """``watchlists/NAME.yaml``: what to acquire and keep ready on a device."""

    api_version: Literal["tva/v1"] = Field(alias="apiVersion")
    kind: Literal["Watchlist"]
    name: Name
    device: Name = Field(description="The device that watches: items are kept ready there.")
    search: list[Provenance] = Field(
        default_factory=lambda: [Provenance.fleet],
        description="Sources acquisition may search. private is never searched publicly.",
    )
    entries: list[WatchEntry] = Field(
        default_factory=list, description="What to keep ready, each a show, a film or a magnet."
    )
    policy: AcquisitionPolicy = Field(
        default_factory=AcquisitionPolicy,
        description="What acquisition accepts and prefers from an indexer (docs/acquisition.md).",
    )


# --------------------------------------------------------------------------- vpn


class VpnProfile(Model):
    """``vpn/NAME.yaml``: a WireGuard or OpenVPN tunnel some devices must use."""

    api_version: Literal["tva/v1"] = Field(alias="apiVersion")
    kind: Literal["VpnProfile"]
    name: Name
    type: VpnType = Field(description="The tunnel's protocol.")
    interface: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,15}$")] = Field(
        description="Network interface the tunnel creates on the node (e.g. wg0)."
    )
    config: SecretRef = Field(description="The tunnel's config, by reference (usually file:).")
    credentials: SecretRef | None = Field(
        default=None, description="Credentials for the tunnel, by reference (OpenVPN auth)."
    )
    kill_switch: bool = Field(
        default=True,
        description="When the tunnel is down on a device that needs it, its public torrents stop.",
    )
    devices: list[Name] = Field(
        default_factory=list,
        description="Devices that use the profile; each must name it in its own vpn: field.",
    )

    @model_validator(mode="before")
    @classmethod
    def _no_commands(cls, data: Any) -> Any:
        # Whoever can push to the fleet repo must not choose a program a node runs.
        if isinstance(data, dict) and ("up" in data or "down" in data):
            raise ValueError(
                "up/down commands are not taken from the fleet repo; each node's operator sets "
                "them in the node's configuration ([vpn.NAME] in node.toml, docs/security.md)"
            )
        return data


# --------------------------------------------------------------------------- sources


class Indexer(Model):
    url: Annotated[str, StringConstraints(pattern=r"^https?://")] = Field(
        description="Torznab API URL (Prowlarr or Jackett), e.g. http://127.0.0.1:9696/1/api"
    )
    api_key: SecretRef | None = Field(default=None, description="The indexer's API key.")
    categories: list[int] = Field(
        default_factory=list, description="Torznab categories to search (empty: all)."
    )

    @field_validator("url")
    @classmethod
    def _no_credentials(cls, v: str) -> str:
        # The URL is shown in reviews and logs; a key in it would be published with it.
        if re.match(r"^https?://[^/?#]*@", v) or re.search(
                r"[?&;](apikey|api_key|passkey|token|password|pass|key)=", v, re.IGNORECASE):
            raise ValueError("credentials in the indexer URL are refused; give the key as "
                             "api_key: {env: TVA_...} (a reference)")
        return v


class Source(Model):
    """``sources/NAME.yaml``: a place items come from, and the gates on it."""

    api_version: Literal["tva/v1"] = Field(alias="apiVersion")
    kind: Literal["Source"]
    name: Name
    provenance: Provenance = Field(
        description="What kind of source it is; private sources are always f2f_only."
    )
    f2f_only: bool | None = Field(
        default=None,
        description="Friend-to-friend only: never announced publicly, never re-searched publicly, "
        "never on the public_swarm_face. Always true for private sources.",
    )
    search: bool | None = Field(
        default=None,
        description="May acquisition search it? Default: no for private and friend, yes otherwise.",
    )
    trackers: list[Annotated[str, StringConstraints(pattern=r"^(https?|udp)://")]] = Field(
        default_factory=list, description="Announce URLs (prefixes) of this source's trackers."
    )
    indexer: Indexer | None = Field(
        default=None, description="Torznab indexer that acquisition searches, if any."
    )

    @model_validator(mode="after")
    def _private_is_f2f(self) -> Self:
        if self.provenance is Provenance.private and self.f2f_only is False:
            raise ValueError("private sources are always f2f_only; this cannot be overridden")
        return self

    @property
    def effective_f2f_only(self) -> bool:
        return self.provenance is Provenance.private or bool(self.f2f_only)

    @property
    def effective_search(self) -> bool:
        if self.search is not None:
            return self.search
        return self.provenance not in (Provenance.private, Provenance.friend)


# --------------------------------------------------------------------------- the whole

Resource = (Fleet | Device | DutyPins | CustodyRule | Collection | Watchlist | VpnProfile | Source
            | Fabric)

KINDS: dict[str, type[Model]] = {
    "Fleet": Fleet,
    "Device": Device,
    "Duties": DutyPins,
    "CustodyRule": CustodyRule,
    "Collection": Collection,
    "Watchlist": Watchlist,
    "VpnProfile": VpnProfile,
    "Source": Source,
    "Fabric": Fabric,
}


class ResolvedItem(Model):
    """An item with everything resolved: its key, collection, provenance and gates."""

    key: InfoHash
    name: str
    collection: str | None = Field(description="None for a watchlist's explicit magnet.")
    size: int | None
    labels: tuple[str, ...]
    provenance: Provenance
    source: Name | None
    f2f_only: bool
    magnet: str | None
    torrent: str | None
    episode: int | None
    private_flag: bool | None = Field(
        default=None,
        description="The committed .torrent's private flag (BEP 27); None without metainfo.",
    )

    @property
    def fleet_only(self) -> bool:
        """Announced to the fleet's own trackers only: every item whose provenance is not
        public (home videos, friends' and private-tracker releases, the seedbox's own)."""
        return self.f2f_only or self.provenance is not Provenance.public


class DesiredState(Model):
    """The whole fleet repo at one revision, validated."""

    revision: str | None = None
    fleet: Fleet
    devices: dict[str, Device]
    duties: DutyPins | None = None
    custody: dict[str, CustodyRule] = Field(default_factory=dict)
    collections: dict[str, Collection] = Field(default_factory=dict)
    watchlists: dict[str, Watchlist] = Field(default_factory=dict)
    vpn: dict[str, VpnProfile] = Field(default_factory=dict)
    sources: dict[str, Source] = Field(default_factory=dict)
    items: dict[str, ResolvedItem] = Field(
        default_factory=dict, description="Every item by info-hash, resolved by the loader."
    )
    fabric: Fabric | None = Field(
        default=None, description="The fleet's WireGuard fabric, when the repo declares one."
    )
