"""The fleet's own network (issue 19): three nodes, each in its own network namespace with a real
``wireguard-go tva0``, brought up by the controller's fabric pass from a committed fabric.yaml.

The nas and the seedbox have endpoints on the underlay; the seedbox relays; the laptop roams
(no endpoint). The nas and the seedbox run the fabric themselves (``[tunnels] via = "direct"``);
the laptop's goes through the root helper, as a node whose controller is not root does: the
controller writes the spool, ``tva-tunnel up fabric tva0`` (its code, called in the node) reads
a root-owned node.toml, validates the spool again and applies it. One set-up per module; the stories run in order (first pass, a second pass that
changes nothing, the laptop roaming, a key rotation, a colliding subnet). Waits are generous;
nothing is timed.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from controller.act.fabric import FabricActuator
from controller.act.fabric_link import HelperFabricLink, spool_path
from controller.cli import status as status_cmd
from controller.cli import tunnel_helper
from controller.clients import wireguard as wg
from controller.desired.loader import load_fleet
from controller.errors import PermanentError
from controller.lab.fabricnet import LOCAL, UNDERLAY, NetNode, Underlay, missing, run, set_underlay
from controller.lab.fleet import fleet_yaml
from controller.nodeconfig import current, install, load
from controller.observe.fabric import observe_fabric
from controller.waiting import poll
from schemas.node import NodeConfig, SecretsConfig

WHY = missing()
pytestmark = [pytest.mark.lab, pytest.mark.skipif(WHY is not None, reason=f"{WHY}")]

NODES = ("nas", "seedbox", "laptop")
HELPED = "laptop"
"""The node whose fabric goes through the root helper."""
FABRIC = {"nas": "10.99.0.1", "seedbox": "10.99.0.2", "laptop": "10.99.0.3"}
ECHO_PORT = 7000


# --------------------------------------------------------------------------- in each node


def node_setup(secrets: str, helped: bool = False) -> str:
    """Install the node's configuration and make its fabric key (``tva fabric keys``). A
    ``helped`` node's fabric goes through the helper, with the node.toml it trusts."""
    if helped:
        path = os.path.join(os.path.dirname(secrets), "node.toml")
        os.makedirs(secrets, mode=0o700, exist_ok=True)
        with open(path, "w") as f:
            f.write(f'[tunnels]\nvia = "sudo"\n[secrets]\ndirs = ["{secrets}"]\n'
                    f'[fabric]\ninterface = "tva0"\n'
                    f'spool = "{os.path.dirname(secrets)}/spool"\n')
        os.chmod(path, 0o644)

        def helper(verb: str, interface: str) -> str:
            argv = [verb, "fabric", interface]
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                code = tunnel_helper.run(argv, config=path)  # the owner check included
            if code != 0:
                raise PermanentError(f"tva-tunnel {' '.join(argv)} refused or failed")
            return out.getvalue()

        install(load(path))
        LOCAL["fabric"] = FabricActuator(LOCAL["name"], HelperFabricLink(current(), helper))
    else:
        install(NodeConfig(secrets=SecretsConfig(dirs=[secrets])))
    public, _, made = wg.ensure_key("tva0")
    assert made
    return public


def node_pass(fleet: str) -> dict[str, Any]:
    """One fabric pass, as the daemon runs it at the start of its pass; then one look."""
    name = LOCAL["name"]
    desired = load_fleet(fleet).desired
    actuator = LOCAL.setdefault("fabric", FabricActuator(name))
    synced = actuator._synced
    now = datetime.now(UTC)
    cond = actuator.reconcile(desired, now)
    status = observe_fabric(desired, name, now, show=actuator._link().show)
    return {"condition": cond.model_dump(mode="json") if cond else None,
            "synced_again": actuator._synced != synced,
            "status": status.model_dump(mode="json") if status else None}


def node_echo(address: str) -> None:
    """Answer every TCP connection to ``address``:7000 with this node's name."""
    srv = socket.create_server((address, ECHO_PORT))
    name = LOCAL["name"].encode()

    def serve() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                conn.sendall(name)

    threading.Thread(target=serve, daemon=True).start()
    LOCAL.setdefault("on_exit", []).append(srv.close)


def node_reach(address: str) -> str | None:
    """Who answers at ``address``:7000 over the fabric, or None."""
    try:
        with socket.create_connection((address, ECHO_PORT), timeout=2) as c:
            return c.recv(64).decode() or None
    except OSError:
        return None


def node_dump() -> dict[str, dict[str, Any]]:
    dump = wg.show("tva0")
    assert dump is not None
    return {p.public_key: {"rx": p.rx, "tx": p.tx, "endpoint": p.endpoint,
                           "allowed_ips": list(p.allowed_ips),
                           "handshake": p.latest_handshake} for p in dump.peers}


def node_routes() -> list[str]:
    return [ln for ln in run("ip", "-4", "route", "show").splitlines() if "tva0" in ln]


def node_addresses(dev: str) -> list[str]:
    return sorted(a for a, d in wg.host_networks()[0] if d == dev and not a.startswith("fe80:"))


def node_spool() -> dict[str, Any]:
    """The spool the helped node's controller left for the helper."""
    path = spool_path(current(), "tva0")
    with open(path) as f:
        text = f.read()
    return {"mode": stat.S_IMODE(os.stat(path).st_mode), "text": text,
            "private_key": wg.read_key(wg.key_file("tva0"))}


def node_key_files() -> dict[str, bool]:
    return {"current": wg.read_key(wg.key_file("tva0")) is not None,
            "upcoming": wg.read_key(wg.key_file("tva0", upcoming=True)) is not None}


# --------------------------------------------------------------------------- the fleet


def fabric_yaml(keys: dict[str, str], subnet: str = "10.99.0.0/24",
                prefix: str = "10.99.0.") -> str:
    return f"""\
apiVersion: tva/v1
kind: Fabric
name: lab
subnet: {subnet}
members:
  - device: nas
    addresses: {prefix}1
    public_key: {keys["nas"]}
    endpoints: ["{UNDERLAY}1:51820"]
  - device: seedbox
    addresses: {prefix}2
    public_key: {keys["seedbox"]}
    endpoints: ["{UNDERLAY}2:51820"]
    relay: true
  - device: laptop
    addresses: {prefix}3
    public_key: {keys["laptop"]}
    keepalive: 1s
"""


def device_yaml(name: str, cls: str) -> str:
    # Fleet addresses are fabric addresses: wherever the laptop is, it is 10.99.0.3.
    return f"""\
apiVersion: tva/v1
kind: Device
name: {name}
class: {cls}
addresses:
  controller_api: http://{FABRIC[name]}:8701
  peer: {FABRIC[name]}:51413
"""


@dataclass
class FabricLab:
    root: Path
    underlay: Underlay
    keys: dict[str, str]

    @property
    def fleet(self) -> Path:
        return self.root / "fleet"

    def node(self, name: str) -> NetNode:
        return self.underlay.nodes[name]

    def commit(self, **fabric: Any) -> None:
        (self.fleet / "fabric.yaml").write_text(fabric_yaml(self.keys, **fabric))

    def pass_all(self, order: tuple[str, ...] = NODES) -> dict[str, dict[str, Any]]:
        return {n: self.node(n).call(node_pass, str(self.fleet)) for n in order}

    def reach(self, src: str, dst: str, timeout: float = 60) -> str | None:
        return poll(lambda: self.node(src).call(node_reach, FABRIC[dst]), bool, timeout=timeout,
                    interval=0.5)

    def all_pairs(self) -> dict[tuple[str, str], str | None]:
        return {(a, b): self.reach(a, b) for a in NODES for b in NODES if a != b}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FabricLab]:
    root = tmp_path_factory.mktemp("fabric")
    underlay = Underlay()
    try:
        keys = {}
        for i, name in enumerate(NODES, start=1):
            node = underlay.add(name, i)
            keys[name] = node.call(node_setup, str(root / name / "secrets"), name == HELPED)
        fleet = root / "fleet"
        (fleet / "devices").mkdir(parents=True)
        (fleet / "fleet.yaml").write_text(fleet_yaml(stale_after="8s", grace="20s", settle="5s"))
        for name, cls in zip(NODES, ("server", "seedbox", "laptop"), strict=True):
            (fleet / "devices" / f"{name}.yaml").write_text(device_yaml(name, cls))
        lab = FabricLab(root, underlay, keys)
        lab.commit()
        yield lab
    finally:
        underlay.close()


# --------------------------------------------------------------------------- stories


def test_first_pass_every_node_reaches_every_other_over_tva0(lab: FabricLab) -> None:
    first = lab.pass_all()
    for name, out in first.items():
        assert out["condition"]["status"] == "True", (name, out["condition"])
        assert out["condition"]["type"] == "FabricReady"
    for name in NODES:
        lab.node(name).call(node_echo, FABRIC[name])
    pairs = lab.all_pairs()
    assert pairs == {(a, b): b for a in NODES for b in NODES if a != b}
    # Only the fabric is routed over tva0, and each peer is trusted for fabric /32s only.
    assert lab.node("nas").call(node_routes) == [
        "10.99.0.0/24 dev tva0 proto kernel scope link src 10.99.0.1 "]
    nas_peers = lab.node("nas").call(node_dump)
    assert {k: v["allowed_ips"] for k, v in nas_peers.items()} == {
        lab.keys["seedbox"]: ["10.99.0.2/32", "10.99.0.3/32"]}
    seedbox_peers = lab.node("seedbox").call(node_dump)
    assert {k: v["allowed_ips"] for k, v in seedbox_peers.items()} == {
        lab.keys["nas"]: ["10.99.0.1/32"], lab.keys["laptop"]: ["10.99.0.3/32"]}
    # Observed state: every member reachable from the nas, the laptop through the relay.
    status = lab.node("nas").call(node_pass, str(lab.fleet))["status"]
    assert status["up"] and status["reachable"] == ["laptop", "seedbox"]
    seed = next(p for p in status["peers"] if p["device"] == "seedbox")
    assert seed["latest_handshake"] is not None and seed["rx_bytes"] > 0 and seed["reachable"]
    # The laptop's fabric came through the helper, and the laptop sees it through the helper's
    # read-only show (its own public key, the relay's handshake); the spool holds no private key.
    helped = lab.node(HELPED).call(node_pass, str(lab.fleet))["status"]
    assert helped["up"] and helped["public_key"] == lab.keys[HELPED]
    assert helped["reachable"] == ["nas", "seedbox"], helped
    spool = lab.node(HELPED).call(node_spool)
    assert spool["mode"] == 0o600 and '"interface": "tva0"' in spool["text"]
    assert spool["private_key"] and spool["private_key"] not in spool["text"]
    shown = lab.node("nas").call(node_status_cli, str(lab.fleet))
    assert "fabric tva0 10.99.0.1: reaches laptop, seedbox" in shown, shown
    assert "192.168.77.2" in shown and "10.99.0.3/32" in shown and "never" not in shown, shown


def test_a_second_pass_changes_nothing(lab: FabricLab) -> None:
    before = lab.node("nas").call(node_dump)
    again = lab.pass_all()
    assert {n: (o["condition"]["status"], o["synced_again"]) for n, o in again.items()} == {
        n: ("True", False) for n in NODES}
    after = lab.node("nas").call(node_dump)
    assert after.keys() == before.keys()
    for key, peer in after.items():
        assert peer["rx"] >= before[key]["rx"] and peer["tx"] >= before[key]["tx"]


def test_roaming_laptop_recovers_through_the_relay_without_a_commit(lab: FabricLab) -> None:
    assert lab.reach("laptop", "nas") == "nas"
    lab.node("laptop").call(set_underlay, f"{UNDERLAY}33")
    # No commit, no pass: the laptop's keepalive reaches the relay from its new address, and
    # the relay learns it from the authenticated packets.
    assert lab.reach("laptop", "nas", timeout=90) == "nas"
    assert lab.reach("nas", "laptop", timeout=90) == "laptop"
    seen = lab.node("seedbox").call(node_dump)[lab.keys["laptop"]]
    assert seen["endpoint"] == f"{UNDERLAY}33:51820"


def test_key_rotation_converges_without_dropping_unchanged_peers(lab: FabricLab) -> None:
    nas_before = lab.node("nas").call(node_dump)
    seedbox_before = lab.node("seedbox").call(node_dump)
    old = lab.keys["laptop"]
    new = lab.node("laptop").call(rotate)
    assert new != old
    # Until the commit, the laptop keeps its key: a pass changes nothing.
    assert lab.node("laptop").call(node_pass, str(lab.fleet))["synced_again"] is False
    lab.keys["laptop"] = new
    lab.commit()
    out = lab.pass_all(("seedbox", "nas", "laptop"))
    assert {n: o["condition"]["status"] for n, o in out.items()} == dict.fromkeys(NODES, "True")
    assert lab.reach("laptop", "nas", timeout=90) == "nas"
    assert lab.reach("nas", "laptop", timeout=90) == "laptop"
    assert lab.node("laptop").call(node_key_files) == {"current": True, "upcoming": False}
    seedbox_after = lab.node("seedbox").call(node_dump)
    assert old not in seedbox_after and new in seedbox_after
    # The nas <-> seedbox session lived on: the same peer entries, counters never reset.
    nas_after = lab.node("nas").call(node_dump)
    for before, after, key in ((nas_before, nas_after, lab.keys["seedbox"]),
                               (seedbox_before, seedbox_after, lab.keys["nas"])):
        assert after[key]["rx"] >= before[key]["rx"] > 0
        assert after[key]["tx"] >= before[key]["tx"] > 0
        assert after[key]["handshake"] >= before[key]["handshake"]


def rotate() -> str:
    public, _, made = wg.ensure_key("tva0", rotate=True)
    assert made
    return public


def node_collide(address: str) -> None:
    run("ip", "link", "add", "c0", "type", "veth", "peer", "name", "c1")
    run("ip", "addr", "add", address, "dev", "c0")


def node_uncollide() -> None:
    run("ip", "link", "del", "c0")


def test_colliding_subnet_is_refused_naming_both_and_nothing_changes(lab: FabricLab) -> None:
    nas = lab.node("nas")
    nas.call(node_collide, "10.98.5.7/24")
    try:
        before = (nas.call(node_dump), nas.call(node_addresses, "tva0"))
        lab.commit(subnet="10.98.5.0/24", prefix="10.98.5.")
        out = nas.call(node_pass, str(lab.fleet))
        cond = out["condition"]
        assert (cond["type"], cond["status"], cond["reason"]) == (
            "FabricReady", "False", "SubnetCollision")
        assert "10.98.5.0/24" in cond["message"] and "10.98.5.7/24" in cond["message"]
        assert "c0" in cond["message"]
        after = (nas.call(node_dump), nas.call(node_addresses, "tva0"))
        assert [sorted(before[0]), before[1]] == [sorted(after[0]), after[1]] \
            and after[1] == ["10.99.0.1/24"]
        assert {k: v["allowed_ips"] for k, v in after[0].items()} == {
            k: v["allowed_ips"] for k, v in before[0].items()}
        assert lab.reach("nas", "seedbox") == "seedbox"
    finally:
        nas.call(node_uncollide)
        lab.commit()


def node_status_cli(fleet: str) -> str:
    """``tva status --node NAME`` in the node, as its operator would run it."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        status_cmd.run(fleet, node=LOCAL["name"], fleet=False, publish=False, status_dir=None,
                       player_socket=None, as_json=False)
    return buffer.getvalue()


def test_a_node_that_leaves_the_fabric_removes_tva0_and_the_others_drop_it(
        lab: FabricLab) -> None:
    text = (lab.fleet / "fabric.yaml").read_text()
    device = lab.fleet / "devices" / "laptop.yaml"
    try:
        (lab.fleet / "fabric.yaml").write_text(text[:text.index("  - device: laptop")])
        device.write_text(device_yaml("laptop", "laptop").split("addresses:")[0])
        out = lab.pass_all()
        assert out["laptop"]["condition"] is None and out["laptop"]["status"] is None
        assert lab.node("laptop").call(node_addresses, "tva0") == []
        assert lab.keys["laptop"] not in lab.node("seedbox").call(node_dump)
        assert lab.reach("nas", "seedbox") == "seedbox"
    finally:
        lab.commit()
        device.write_text(device_yaml("laptop", "laptop"))
        back = lab.pass_all()
    assert {n: o["condition"]["status"] for n, o in back.items()} == dict.fromkeys(NODES, "True")
    # The laptop's echo listener outlived its address and answers again.
    assert lab.reach("nas", "laptop", timeout=90) == "laptop"
