"""The lab's fleet repo: a bare remote, an owner's checkout to commit from, real payloads.

Payloads are random bytes (so every info-hash is unique) with real .torrent files committed in
the repo; the YAML follows the reference fleet's shape with lab addresses and short grace
periods, so that a node "going away" takes seconds, not hours.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from controller.clients.git import run_git
from controller.lab.transmission import make_payload_torrent

__all__ = [
    "GIT_ENV_EMAIL",
    "GIT_ENV_NAME",
    "LabRepo",
    "Payload",
    "collection_yaml",
    "device_yaml",
    "duties_yaml",
    "fleet_yaml",
    "git",
    "rule_yaml",
]

GIT_ENV_NAME = "tva lab"
GIT_ENV_EMAIL = "lab@tva.invalid"


def git(cwd: Path, *args: str) -> str:
    """``git ARGS`` in ``cwd`` as the lab's owner (through the git client: no prompt, a time
    limit, errors translated)."""
    out = run_git(cwd, ["-c", f"user.name={GIT_ENV_NAME}", "-c", f"user.email={GIT_ENV_EMAIL}",
                        "-c", "commit.gpgsign=false", *args],
                  what=f"git {args[0]} in the lab repo", timeout=120.0)
    return out.strip()


@dataclass
class Payload:
    name: str
    infohash: str
    size: int
    data: Path
    torrent_rel: str


@dataclass
class LabRepo:
    root: Path
    remote: Path = field(init=False)
    checkout: Path = field(init=False)
    payloads: dict[str, Payload] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.remote = self.root / "fleet.git"
        self.checkout = self.root / "owner"
        self.root.mkdir(parents=True, exist_ok=True)
        git(self.root, "init", "--quiet", "--bare", "-b", "main", str(self.remote))
        self.checkout.mkdir()
        git(self.checkout, "init", "--quiet", "-b", "main")
        git(self.checkout, "remote", "add", "origin", str(self.remote))

    def payload(self, name: str, size: int, trackers: tuple[str, ...] = ()) -> Payload:
        """Make ``size`` random bytes named ``name`` and commit-ready metainfo for them (with
        ``trackers`` in its announce list, as a release from elsewhere has)."""
        torrent, infohash, data = make_payload_torrent(self.root / "payloads", size, name=name,
                                                       trackers=trackers)
        rel = f"torrents/{name}.torrent"
        (self.checkout / "torrents").mkdir(exist_ok=True)
        shutil.copy(torrent, self.checkout / rel)
        p = Payload(name, infohash, size, data, rel)
        self.payloads[name] = p
        return p

    def commit(self, files: dict[str, str | None], message: str) -> str:
        """Write (or delete, for None) files, commit everything, push; the new revision."""
        for rel, text in files.items():
            path = self.checkout / rel
            if text is None:
                path.unlink(missing_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        git(self.checkout, "add", "-A")
        git(self.checkout, "commit", "--quiet", "-m", message)
        git(self.checkout, "push", "--quiet", "origin", "main")
        return git(self.checkout, "rev-parse", "HEAD")


def fleet_yaml(*, stale_after: str, grace: str, settle: str) -> str:
    return f"""\
apiVersion: tva/v1
kind: Fleet
name: lab
description: Three nodes on one machine, each in its own corner of a private network.
policy:
  freshness: {{stale_after: {stale_after}, grace: {grace}}}
  custody: {{prune: false, max_new_pins_per_node: 5, settle: {settle}}}
  sync: {{poll: 1s, resync: 2s}}
  transmission: {{dht: false, pex: false, lpd: false, encryption: required}}
status: {{ref: refs/tva/status, history: 20}}
"""


def device_yaml(name: str, cls: str, *, ip: str, rpc_port: int, api_port: int, peer_port: int,
                download_dir: Path, labels: list[str]) -> str:
    return f"""\
apiVersion: tva/v1
kind: Device
name: {name}
class: {cls}
always_on: true
labels: [{", ".join(labels)}]
services: [transmission, controller]
storage:
  - path: {download_dir}
    capacity: 2GiB
addresses:
  transmission_rpc: http://{ip}:{rpc_port}/transmission/rpc
  controller_api: http://{ip}:{api_port}
  peer: {ip}:{peer_port}
credentials:
  api_token: {{env: TVA_LAB_API_TOKEN}}
"""


def collection_yaml(name: str, payloads: list[Payload], provenance: str = "fleet") -> str:
    items = "\n".join(
        f"  - name: {p.name}\n    torrent: {p.torrent_rel}" for p in payloads
    )
    return f"""\
apiVersion: tva/v1
kind: Collection
name: {name}
provenance: {provenance}
items:
{items}
"""


def rule_yaml(name: str, collection: str, minimum: int, *, exclude: list[str] | None = None) -> str:
    placement = f"placement: {{exclude_devices: [{', '.join(exclude)}]}}\n" if exclude else ""
    return f"""\
apiVersion: tva/v1
kind: CustodyRule
name: {name}
select: {{collections: [{collection}]}}
min: {minimum}
{placement}"""


def duties_yaml(face: str) -> str:
    return f"""\
apiVersion: tva/v1
kind: Duties
pins: {{public_swarm_face: {face}}}
"""
