"""Observed state: what a node publishes about itself (``NodeStatus``), format version 1.

The JSON form is documented in ``docs/status-format.md``. Observers fill it; the fleet status
transport publishes it; the planner reads it. A node whose Transmission could not be reached
says so (``transmission.reachable = false``) instead of reporting an empty list, so that a
planner can never mistake "could not look" for "holds nothing".
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "KNOWN_RPC_VERSIONS",
    "STATUS_FORMAT",
    "Condition",
    "ConditionStatus",
    "CopyVerdict",
    "FabricPeerStatus",
    "FabricStatus",
    "FailingSearch",
    "NodeStatus",
    "Observed",
    "PlayerStatus",
    "SessionStatus",
    "StorageStatus",
    "TorrentState",
    "TorrentStatus",
    "TrackerResult",
    "TransmissionStatus",
    "VpnState",
]

STATUS_FORMAT: Final = "tva.status/v1"


class Observed(BaseModel):
    """Base of the observed models. Unknown fields are ignored, not refused: a newer node may
    add optional fields within v1 and older readers must still read its status."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class TorrentState(StrEnum):
    """Transmission's status codes, by name."""

    stopped = "stopped"
    check_pending = "check_pending"
    checking = "checking"
    download_pending = "download_pending"
    downloading = "downloading"
    seed_pending = "seed_pending"
    seeding = "seeding"


class TrackerResult(Observed):
    announce: str
    last_announce_ok: bool | None = None
    last_announce_result: str = ""
    last_announce_time: datetime | None = None
    seeders: int | None = None
    leechers: int | None = None


class CopyVerdict(StrEnum):
    """A node's own verdict on its copy, published so that every node plans the same."""

    dead = "dead"
    """The reaper's strikes are exhausted (they live in this node's journal): it will not
    complete by itself."""
    broken = "broken"
    """A local data error."""


class TorrentStatus(Observed):
    infohash: str = Field(description="40 lower-case hex digits.")
    name: str
    size: int = Field(description="Bytes wanted (sizeWhenDone).")
    percent_done: float = Field(ge=0.0, le=1.0)
    state: TorrentState
    error: int = Field(default=0, description="Transmission error code: 0 none, 1-2 tracker, 3 local.")
    error_string: str = ""
    labels: list[str] = Field(default_factory=list)
    download_dir: str = ""
    peers_connected: int = 0
    peers_sending: int = 0
    rate_download: int = 0
    rate_upload: int = 0
    uploaded: int = 0
    downloaded: int = 0
    corrupt: int = Field(default=0, description="Bytes that failed Transmission's hash check "
                         "(corruptEver): fetched, thrown away and fetched again.")
    webseeds: int = Field(default=0, description="How many web seed URLs the torrent lists. "
                          "Only the count: each URL carries a holder's capability.")
    last_activity: datetime | None = None
    done_date: datetime | None = None
    added_date: datetime | None = None
    trackers: list[TrackerResult] = Field(default_factory=list)
    verdict: CopyVerdict | None = Field(
        default=None,
        description="The holder's own verdict on this copy (dead: reaper strikes exhausted; "
        "broken: local data error). Every planner counts such a copy as broken, not pending. "
        "Absent: none (and in statuses of older controllers).",
    )

    @property
    def complete(self) -> bool:
        return self.percent_done >= 1.0

    @property
    def errored(self) -> bool:
        return self.error != 0


class SessionStatus(Observed):
    """The Transmission session settings that decide what reaches beyond the fleet's trackers."""

    dht: bool = Field(description="Distributed hash table: announces info-hashes to the world.")
    pex: bool = Field(description="Peer exchange: learns and shares peers outside any tracker.")
    lpd: bool = Field(description="Local peer discovery: announces info-hashes on the LAN.")
    utp: bool | None = None
    encryption: str | None = Field(default=None, description="required, preferred or tolerated.")
    peer_port: int | None = None
    settings: dict[str, bool | int | float | str] = Field(
        default_factory=dict,
        description="Every session setting tva can own, as Transmission names and reports it "
        "(schemas.desired.SESSION_KEYS).",
    )

    @property
    def leaks(self) -> list[str]:
        """Which of DHT, PEX and LPD are on: each announces a torrent beyond its trackers
        unless the torrent carries the private flag (BEP 27)."""
        return [name for name, on in (("DHT", self.dht), ("PEX", self.pex), ("LPD", self.lpd))
                if on]


KNOWN_RPC_VERSIONS: frozenset[int] = frozenset({15, 16, 17, 18})
"""Transmission RPC versions tva knows: 15 (2.9x), 16 (3.00), 17 (4.0), 18 (4.1)."""


class TransmissionStatus(Observed):
    reachable: bool
    error: str = Field(default="", description="Why it could not be reached, if it could not.")
    rpc_version: int | None = None
    version: str | None = None
    session: SessionStatus | None = Field(
        default=None, description="Session settings (None: not reported, e.g. an older node)."
    )
    torrents: list[TorrentStatus] = Field(
        default_factory=list, description="Meaningful only when reachable is true."
    )
    download_rate: int = 0
    upload_rate: int = 0


class StorageStatus(Observed):
    path: str
    free: int
    total: int
    reachable: bool = True


class PlayerStatus(Observed):
    reachable: bool
    error: str = ""
    path: str | None = Field(default=None, description="What is open; None when idle.")
    infohash: str | None = Field(default=None, description="The item it belongs to, if known.")
    position: float | None = None
    duration: float | None = None
    paused: bool | None = None
    idle: bool = True
    options: dict[str, str | int | float | bool] = Field(default_factory=dict)
    watched: list[str] = Field(
        default_factory=list,
        description="Info-hashes of items watched to the end on this device (watch progress).",
    )


class VpnState(Observed):
    profile: str
    interface: str
    up: bool
    detail: str = ""
    address: str | None = Field(
        default=None,
        description="The tunnel's address on this node (node.toml), reported while it is up: "
        "Transmission's peer traffic binds to it.")
    bound: bool | None = Field(
        default=None,
        description="Transmission's bind-address-ipv4 is the tunnel's address (read from the "
        "settings file the node's operator names); None when unknown.")
    managed: bool = True
    """The node's configuration gives commands to bring the profile up (statuses written
    before this field existed say nothing, and are taken as true)."""


class FabricPeerStatus(Observed):
    """One peer of this node's fabric interface, as WireGuard reports it."""

    device: str | None = Field(description="The member with this key; None for a key the "
                               "fabric does not declare (a stale peer being removed).")
    public_key: str
    endpoint: str | None = Field(default=None, description="Where its packets last came from.")
    allowed_ips: list[str] = Field(default_factory=list)
    latest_handshake: datetime | None = None
    rx_bytes: int = 0
    tx_bytes: int = 0
    reachable: bool = Field(
        default=False,
        description="A handshake within the last 180 s (WireGuard's session lifetime).",
    )


class FabricStatus(Observed):
    """This node's end of the fleet's WireGuard fabric (``tva0``)."""

    interface: str
    up: bool
    address: str | None = Field(default=None, description="This node's fabric address.")
    public_key: str | None = Field(default=None, description="The key the interface runs with.")
    peers: list[FabricPeerStatus] = Field(default_factory=list)
    error: str = ""

    reachable: list[str] = Field(
        default_factory=list,
        description="Members this node reaches over the fabric now: a peer with a recent "
        "handshake, or a member behind the relay while the relay is reachable.",
    )


class ConditionStatus(StrEnum):
    true = "True"
    false = "False"
    unknown = "Unknown"


class Condition(Observed):
    """A Kubernetes-style condition: Ready, Synced, TransmissionReachable, VpnUp, Suspended."""

    type: str
    status: ConditionStatus
    reason: str = ""
    message: str = ""
    since: datetime | None = None


class FailingSearch(Observed):
    """The acquirer's searches for one target that failed in a row, published so that the
    notifier, whichever node it is, can tell the owner (its journal is the acquirer's own)."""

    target: str = Field(description="The research target: watch/<watchlist>/<what>.")
    failures: int = Field(ge=1, description="Failed searches in a row since the last success.")
    error: str = Field(default="", description="Why the last one failed (one line).")
    at: datetime = Field(description="When the last one failed.")


class NodeStatus(Observed):
    format: Literal["tva.status/v1"] = STATUS_FORMAT
    node: str
    observed_at: datetime
    controller_version: str
    desired_revision: str | None = Field(
        default=None, description="Fleet repo revision this node last applied."
    )
    always_on: bool | None = None
    present_since: datetime | None = Field(
        default=None,
        description="Since when this node has been reporting without a gap longer than "
        "stale_after (it started or came back then). Prunes caused by its return wait until it "
        "has been present for settle. Absent in statuses of older controllers.",
    )
    on_ac_power: bool | None = Field(
        default=None, description="True on mains power, False on battery, None when unknown."
    )
    transmission: TransmissionStatus
    storage: list[StorageStatus] = Field(default_factory=list)
    player: PlayerStatus | None = None
    vpn: list[VpnState] = Field(default_factory=list)
    fabric: FabricStatus | None = Field(
        default=None, description="The fleet fabric on this node (None: not a member, or an "
        "older controller).")
    duties: list[str] = Field(default_factory=list, description="Duties this node runs.")
    conditions: list[Condition] = Field(default_factory=list)
    searches: list[FailingSearch] = Field(
        default_factory=list,
        description="On the acquirer: watchlist searches failing in a row (absent: none, or "
        "an older controller).")

    def free_bytes(self) -> int | None:
        """Free space over all reachable storage roots, or None when unknown."""
        roots = [s for s in self.storage if s.reachable]
        return sum(s.free for s in roots) if roots else None
