"""A synthetic fleet for the dashboard's fast tests: four devices (fresh, fresh, stale, gone),
one custody rule over 60 films (more than a page), statuses with a copy on its way, hostile
strings, and secrets that must never reach a page."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from controller.dashboard import Inputs, SourceRef
from controller.desired import load_fleet
from schemas.journal import JournalEntry, Outcome
from schemas.observed import (
    Condition,
    ConditionStatus,
    NodeStatus,
    SessionStatus,
    StorageStatus,
    TorrentState,
    TorrentStatus,
    TrackerResult,
    TransmissionStatus,
    VpnState,
)
from schemas.plan import ActionKind

__all__ = ["API_TOKEN", "NOW", "SECRETS", "Source", "fleet_inputs", "key"]

NOW = datetime(2026, 6, 1, 20, 0, tzinfo=UTC)
API_TOKEN = "dashboard-api-token-0123456789"
TRACKER_TOKEN = "tracker-token-abcdefabcdef0123456789"
URL_PASSWORD = "rpc-url-password-42"
SECRETS = (API_TOKEN, TRACKER_TOKEN, URL_PASSWORD)
NODES = ("nas", "desk", "laptop", "seedbox")
HOSTILE = "<script>alert(1)</script>"


def key(i: int) -> str:
    return hashlib.sha1(f"dash-{i}".encode()).hexdigest()


def device(name: str, cls: str) -> str:
    return (f"apiVersion: tva/v1\nkind: Device\nname: {name}\nclass: {cls}\nalways_on: true\n"
            f"storage: [{{path: /srv/{name}, capacity: 2TiB}}]\n"
            f"addresses: {{controller_api: 'http://{name}.lan:8700', peer: '{name}.lan:51413'}}\n"
            "credentials: {api_token: {env: TVA_DASHBOARD_TEST_TOKEN}}\n")


def write_fleet(root: Path, items: int = 60) -> None:
    (root / "devices").mkdir(parents=True)
    (root / "items").mkdir()
    (root / "custody").mkdir()
    (root / "fleet.yaml").write_text(
        "apiVersion: tva/v1\nkind: Fleet\nname: dash\n"
        "policy:\n  freshness: {stale_after: 10m, grace: 2h}\n")
    for name, cls in zip(NODES, ("server", "desktop", "laptop", "seedbox"), strict=True):
        (root / "devices" / f"{name}.yaml").write_text(device(name, cls))
    lines = ["apiVersion: tva/v1", "kind: Collection", "name: films", "provenance: fleet", "items:"]
    for i in range(items):
        name = HOSTILE if i == 1 else f"film {i:02d}"
        lines.append(f"  - {{name: '{name}', infohash: {key(i)}, size: 1GiB}}")
    (root / "items" / "films.yaml").write_text("\n".join(lines) + "\n")
    (root / "custody" / "films.yaml").write_text(
        "apiVersion: tva/v1\nkind: CustodyRule\nname: films\n"
        "select: {collections: [films]}\nmin: 2\n")


def torrent(i: int, node: str, pct: float = 1.0, rate: int = 0) -> TorrentStatus:
    return TorrentStatus(
        infohash=key(i), name=HOSTILE if i == 1 else f"film {i:02d}", size=1 << 30,
        percent_done=pct, state=TorrentState.seeding if pct >= 1 else TorrentState.downloading,
        labels=["tva"], download_dir=f"/srv/{node}", rate_download=rate,
        peers_connected=2 if rate else 0, last_activity=NOW,
        webseeds=0 if pct >= 1 else 3,  # a fetch from the fleet is added with its holders' web seeds
        trackers=[TrackerResult(announce=f"http://{node}.lan:8700/announce/{TRACKER_TOKEN}")],
    )


def statuses() -> list[NodeStatus]:
    """nas holds everything; desk holds the even films and fetches film 1 (43%); laptop (stale)
    holds film 3; seedbox (gone) holds film 5. Film 7 has one copy only."""
    holdings: dict[str, list[TorrentStatus]] = {n: [] for n in NODES}
    for i in range(60):
        holdings["nas"].append(torrent(i, "nas"))
        if i % 2 == 0:
            holdings["desk"].append(torrent(i, "desk"))
    holdings["desk"].append(torrent(1, "desk", 0.43, 2_500_000))
    holdings["laptop"].append(torrent(3, "laptop"))
    holdings["seedbox"].append(torrent(5, "seedbox"))
    ages = {"nas": timedelta(seconds=20), "desk": timedelta(minutes=1),
            "laptop": timedelta(minutes=30), "seedbox": timedelta(hours=5)}
    out = []
    for node in NODES:
        out.append(NodeStatus(
            node=node, observed_at=NOW - ages[node], controller_version="test",
            desired_revision="f" * 40,
            transmission=TransmissionStatus(
                reachable=True, version="3.00", rpc_version=16, torrents=holdings[node],
                session=SessionStatus(dht=False, pex=False, lpd=False),
                error=f"once failed at http://admin:{URL_PASSWORD}@{node}.lan:9091/transmission/rpc",
                download_rate=2_500_000 if node == "desk" else 0),
            storage=[StorageStatus(path=f"/srv/{node}", free=800 << 30, total=2 << 40)],
            vpn=[VpnState(profile="home", interface="wg0", up=node != "laptop")],
            conditions=[Condition(type="Ready", status=ConditionStatus.true, reason="PassSucceeded",
                                  message=f"see http://u:{URL_PASSWORD}@x.lan/"),
                        Condition(type="Synced", status=ConditionStatus.true, reason="RevisionApplied")],
        ))
    return out


def journal() -> list[JournalEntry]:
    out = []
    for i in range(70):
        kind = ActionKind.add if i % 2 else ActionKind.verify
        out.append(JournalEntry(
            at=NOW - timedelta(minutes=i), node="nas", action_id=f"nas/{kind.value}/{key(i)}",
            kind=kind, target=key(i), outcome=Outcome.ok if i % 5 else Outcome.failed,
            error="" if i % 5 else f"token {API_TOKEN} refused"))
    return out


def fleet_inputs(root: Path) -> Inputs:
    write_fleet(root)
    desired = load_fleet(str(root)).desired
    return Inputs(node="nas", desired=desired, statuses=statuses(), now=NOW, journal=journal(),
                  sources={("CustodyRule", "films"): SourceRef("custody/films.yaml", 1),
                           ("Collection", "films"): SourceRef("items/films.yaml", 1),
                           **{("Device", n): SourceRef(f"devices/{n}.yaml", 1) for n in NODES}})


@dataclass
class Source:
    """A ``DashboardSource`` over fixed inputs (the daemon's side, without a daemon)."""

    inputs: Inputs | None
    root: Path
    version: int = 1
    secrets: Sequence[str] = (TRACKER_TOKEN,)
    stop: list[bool] = field(default_factory=lambda: [False])

    def dashboard_version(self) -> int:
        return self.version

    def dashboard_inputs(self) -> Inputs | None:
        return self.inputs

    def dashboard_secrets(self) -> Sequence[str]:
        return self.secrets

    def dashboard_file(self, path: str) -> str | None:
        p = self.root / path
        return p.read_text() if p.is_file() else None
