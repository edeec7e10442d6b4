"""A re-pin over the fabric (issue 19): three nodes in their own network namespaces, each a real
``transmission-daemon`` and a tva controller whose fleet addresses are fabric addresses. The
controllers bring ``tva0`` up in their first pass; a floor raised by a commit then moves a
private item from the nas to the roaming laptop, through the seedbox relay, over WireGuard.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from controller.act.metainfo import fleet_only_metainfo
from controller.announce import base_url, with_token
from controller.clients import wireguard as wg
from controller.daemon.daemon import Daemon, DaemonConfig
from controller.lab.fabricnet import LOCAL, NetNode, Underlay, missing
from controller.lab.fleet import (
    LabRepo,
    Payload,
    collection_yaml,
    device_yaml,
    fleet_yaml,
    rule_yaml,
)
from controller.lab.lab import TOKEN_ENV
from controller.lab.transmission import TransmissionDaemon
from controller.waiting import poll, wait_for
from tests.lab.test_fabric import FABRIC, NODES, fabric_yaml, node_dump, node_setup

WHY = missing()
pytestmark = [pytest.mark.lab, pytest.mark.slow,
              pytest.mark.skipif(WHY is not None, reason=f"{WHY}")]

CLASSES = {"nas": "server", "seedbox": "seedbox", "laptop": "laptop"}
RPC, API, PEER = 9091, 8701, 51413
MiB = 1 << 20


# --------------------------------------------------------------------------- in each node


def node_start(remote: str, root: str, token: str) -> None:
    """Start this node's controller, then its Transmission on the fabric address (which
    exists once the controller's first pass has brought tva0 up)."""
    name = LOCAL["name"]
    os.environ[TOKEN_ENV] = token
    daemon = Daemon(DaemonConfig(node=name, repo=remote, state_dir=f"{root}/state",
                                 host_player=False, poll=1.0))
    LOCAL["daemon"] = daemon
    LOCAL.setdefault("on_exit", []).append(daemon.stop)
    daemon.start()
    wait_for(lambda: any(a.startswith(FABRIC[name] + "/") for a, _ in wg.host_networks()[0]),
             timeout=60, what=f"{name}'s controller to bring tva0 up")
    tr = TransmissionDaemon(root=Path(root) / "transmission", bind_ip=FABRIC[name],
                            rpc_port=RPC, peer_port=PEER)
    LOCAL["transmission"] = tr
    LOCAL["on_exit"].insert(0, tr.stop)
    tr.start()


def node_seed(payload: Payload, checkout: str) -> None:
    """A complete copy by hand, announcing to this node's own controller only (fleet-only)."""
    tr: TransmissionDaemon = LOCAL["transmission"]
    daemon: Daemon = LOCAL["daemon"]
    shutil.copy(payload.data, tr.download_dir / payload.name)
    announce = with_token(base_url(f"http://{FABRIC[LOCAL['name']]}:{API}"), daemon.runtime.token)
    metainfo = fleet_only_metainfo((Path(checkout) / payload.torrent_rel).read_bytes(), announce)
    client = tr.client()
    client.add_torrent(metainfo, download_dir=str(tr.download_dir))
    client.change_torrent([payload.infohash], labels=["tva"])
    wait_for(lambda: node_percent(payload.infohash) == 1.0, timeout=60, what="the seed to verify")


def node_percent(infohash: str) -> float | None:
    tr: TransmissionDaemon = LOCAL["transmission"]
    for t in tr.client().get_torrents(arguments=["hashString", "percentDone"]):
        if t.hash_string == infohash:
            return float(t.fields["percentDone"])
    return None


def node_file(name: str) -> str | None:
    path = LOCAL["transmission"].download_dir / name
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def node_view() -> dict[str, Any]:
    """What the controller's last pass saw: its fabric condition and status, and which nodes'
    Transmission it saw reachable."""
    daemon: Daemon = LOCAL["daemon"]
    last = daemon.last
    if last is None:
        return {}
    fabric = next((c for c in last.status.conditions if c.type == "FabricReady"), None)
    return {
        "fabric": fabric.status.value if fabric else None,
        "reachable": last.status.fabric.reachable if last.status.fabric else [],
        "transmissions": sorted(n for n, v in last.view.nodes.items()
                                if v.status is not None and v.status.transmission.reachable),
    }


# --------------------------------------------------------------------------- the lab


@dataclass
class RepinLab:
    underlay: Underlay
    repo: LabRepo
    video: Payload

    def node(self, name: str) -> NetNode:
        return self.underlay.nodes[name]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RepinLab]:
    root = tmp_path_factory.mktemp("fabric-repin")
    underlay = Underlay()
    try:
        keys = {}
        for i, name in enumerate(NODES, start=1):
            keys[name] = underlay.add(name, i).call(node_setup, str(root / name / "secrets"))
        repo = LabRepo(root / "repo")
        video = repo.payload("home-video.bin", 4 * MiB)
        files = {"fleet.yaml": fleet_yaml(stale_after="8s", grace="20s", settle="5s"),
                 "fabric.yaml": fabric_yaml(keys),
                 "items/home-videos.yaml": collection_yaml("home-videos", [video], "private")}
        for name in NODES:
            files[f"devices/{name}.yaml"] = device_yaml(
                name, CLASSES[name], ip=FABRIC[name], rpc_port=RPC, api_port=API, peer_port=PEER,
                download_dir=root / name / "transmission" / "downloads", labels=[])
        repo.commit(files, "three nodes on a fabric; fleet addresses are fabric addresses")
        token = secrets.token_hex(16)
        for name in NODES:
            underlay.nodes[name].call(node_start, str(repo.remote), str(root / name), token)
        yield RepinLab(underlay, repo, video)
    finally:
        underlay.close()


def test_controllers_bring_the_fabric_up_and_a_repin_moves_data_over_it(lab: RepinLab) -> None:
    def settled() -> dict[str, Any]:
        return {n: lab.node(n).call(node_view) for n in NODES}

    views = poll(settled, lambda v: all(
        x.get("fabric") == "True" and len(x.get("reachable", [])) == 2
        and x.get("transmissions") == sorted(NODES) for x in v.values()),
        timeout=180, interval=1.0)
    for name in NODES:
        assert views[name]["fabric"] == "True", views
        assert views[name]["reachable"] == sorted(set(NODES) - {name}), views
        assert views[name]["transmissions"] == sorted(NODES), views
    lab.node("nas").call(node_seed, lab.video, str(lab.repo.checkout))
    nas_before = lab.node("nas").call(node_dump)
    relay_key = next(iter(nas_before))
    lab.repo.commit({"custody/home-videos.yaml": rule_yaml("home-videos", "home-videos", 2)},
                    "custody: two copies of the home videos")
    # The seedbox is the public face, never a holder of a private item: the copy goes to the
    # laptop, which only the relay reaches.
    done = poll(lambda: lab.node("laptop").call(node_percent, lab.video.infohash),
                lambda p: p == 1.0, timeout=240, interval=1.0)
    assert done == 1.0, {n: lab.node(n).call(node_view) for n in NODES}
    assert lab.node("laptop").call(node_file, lab.video.name) == hashlib.sha256(
        lab.video.data.read_bytes()).hexdigest()
    assert lab.node("seedbox").call(node_percent, lab.video.infohash) is None
    # The bytes went out of the nas's tva0 to its one peer, the relay.
    nas_after = lab.node("nas").call(node_dump)
    assert list(nas_after) == [relay_key]
    assert nas_after[relay_key]["tx"] - nas_before[relay_key]["tx"] >= lab.video.size
