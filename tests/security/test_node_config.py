"""What the fleet repo cannot steer: programs, secrets, and where secrets go.

Real parts: a real ``tva validate``, real programs run by the VPN actuator, real files and
symlinks, and real listening sockets that record whether anything reached them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.act.vpn import VpnActuator
from controller.clients.peers import PeerApi
from controller.clients.transmission import TransmissionClient
from controller.egress import EgressRefused
from controller.errors import PermanentError, TemporaryError
from controller.nodeconfig import NodeConfigError, install, load
from controller.observe.host import observe_vpn
from controller.secrets import SecretRefused, resolve
from schemas.desired import DesiredState, Device, SecretRef, VpnProfile
from schemas.node import EgressConfig, NodeConfig, SecretsConfig, VpnCommands
from schemas.plan import Action, ActionKind
from tests.desired.test_bad_fleets import BASE

TVA = Path(sys.executable).parent / "tva"


@pytest.fixture(autouse=True)
def node_config() -> Iterator[None]:
    yield
    install(NodeConfig())


def _profile() -> VpnProfile:
    return VpnProfile.model_validate({
        "apiVersion": "tva/v1", "kind": "VpnProfile", "name": "home-wg", "type": "wireguard",
        "interface": "tva-absent0", "config": {"file": "/etc/tva/wg.conf"},
        "devices": ["laptop"]})


def _desired(profile: VpnProfile) -> DesiredState:
    return DesiredState.model_construct(vpn={profile.name: profile})


def _action(kind: ActionKind = ActionKind.vpn_up) -> Action:
    return Action.model_validate({"id": "laptop/vpn-up/home-wg", "node": "laptop", "kind": kind,
                                  "target": "home-wg", "reason": "test"})


# ------------------------------------------------------------------ programs


def test_a_fleet_repo_cannot_name_a_vpn_command(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet"
    subprocess.run(["cp", "-r", str(BASE), str(fleet)], check=True)
    profile = fleet / "vpn" / "evil.yaml"
    profile.parent.mkdir(exist_ok=True)
    profile.write_text("apiVersion: tva/v1\nkind: VpnProfile\nname: evil\ntype: wireguard\n"
                       "interface: wg9\nconfig: {file: /etc/tva/wg.conf}\n"
                       "up: [sh, -c, 'touch /tmp/pwned']\n")
    proc = subprocess.run([str(TVA), "validate", str(fleet)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1
    assert "vpn/evil.yaml:7" in proc.stderr and "node's configuration" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_vpn_commands_come_from_the_node_and_their_output_stays_there(tmp_path: Path) -> None:
    prof = _profile()
    actuator = VpnActuator(_desired(prof))
    with pytest.raises(PermanentError, match=r"node\.toml"):
        actuator.apply(_action())  # no command on this node: nothing runs
    assert observe_vpn([prof])[0].managed is False

    marker = tmp_path / "ran"
    script = f"echo ran > {marker}; echo 'LEAK: /etc/shadow root:$6$x' >&2; exit 3"
    install(NodeConfig(vpn={"home-wg": VpnCommands(up=["/bin/sh", "-c", script])}))
    assert observe_vpn([prof])[0].managed is True
    with pytest.raises(TemporaryError) as failed:
        actuator.apply(_action())
    assert marker.read_text() == "ran\n", "the operator's program ran"
    message = str(failed.value)
    assert "exit 3" in message and "LEAK" not in message and "shadow" not in message

    ok = tmp_path / "ok"
    install(NodeConfig(vpn={"home-wg": VpnCommands(up=["/usr/bin/touch", str(ok)])}))
    assert actuator.apply(_action()) == "done" and ok.exists()


def test_the_node_config_file_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text('[vpn.home-wg]\nup = ["wg-quick", "up", "wg0"]\n')
    with pytest.raises(NodeConfigError, match=r"vpn\.home-wg\.up.*absolute path"):
        load(str(path))
    path.write_text('[vpn.home-wg]\nup = ["/usr/bin/wg-quick", "up", "wg0"]\n'
                    '[secrets]\nenv_prefix = "FLEET_"\ndirs = ["/srv/secrets"]\n'
                    '[egress]\nallow = ["10.1.0.0/16", "nas.lan"]\n')
    config = load(str(path))
    assert config.vpn["home-wg"].up == ["/usr/bin/wg-quick", "up", "wg0"]
    assert config.secrets.env_prefix == "FLEET_" and config.egress.allow[1] == "nas.lan"
    with pytest.raises(NodeConfigError, match="does not exist"):
        load(str(tmp_path / "missing.toml"))


# ------------------------------------------------------------------ secrets


def test_secret_references_resolve_only_inside_the_operators_roots(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "rpc").write_text("inside\n")
    outside = tmp_path / "home" / ".ssh" / "id_ed25519"
    outside.parent.mkdir(parents=True)
    outside.write_text("PRIVATE KEY\n")
    (secrets / "link").symlink_to(outside)
    install(NodeConfig(secrets=SecretsConfig(dirs=[str(secrets)])))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "cloud")
    monkeypatch.setenv("TVA_RPC", "ok")

    assert resolve(SecretRef(file=str(secrets / "rpc"))) == "inside"
    assert resolve(SecretRef(env="TVA_RPC")) == "ok"
    for ref in (SecretRef(file=str(outside)), SecretRef(file=str(secrets / "link")),
                SecretRef(file=f"{secrets}/../home/.ssh/id_ed25519"),
                SecretRef(file="/etc/passwd"), SecretRef(env="AWS_SECRET_ACCESS_KEY")):
        with pytest.raises(SecretRefused) as e:
            resolve(ref)
        assert "PRIVATE" not in str(e.value) and "cloud" not in str(e.value)


# ------------------------------------------------------------------ egress


class Listener:
    """A real TCP server that records whether anyone connected and what they sent."""

    def __init__(self, host: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.received = b""
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.settimeout(2)
                try:
                    self.received += conn.recv(65536)
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 18\r\nConnection: close"
                                 b"\r\n\r\n{\"complete\": true}")
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


def _outside_address() -> str:
    """An address of this machine that is neither loopback nor private."""
    out = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        addr = line.split()[3].split("/")[0]
        import ipaddress

        ip = ipaddress.ip_address(addr)
        if not ip.is_loopback and not any(ip in ipaddress.ip_network(n) for n in
                                          ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")):
            return addr
    pytest.skip("this machine has no address outside loopback and private networks")


def _device(rpc: str, api: str) -> Device:
    return Device.model_validate({
        "apiVersion": "tva/v1", "kind": "Device", "name": "nas", "class": "server",
        "services": ["transmission", "controller"],
        "addresses": {"transmission_rpc": rpc, "controller_api": api},
        "credentials": {"transmission_user": "tva",
                        "transmission_password": {"env": "TVA_RPC_PASSWORD"},
                        "api_token": {"env": "TVA_API_TOKEN"}}})


def test_secrets_go_only_where_the_operator_allows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TVA_RPC_PASSWORD", "rpc-hunter2")
    monkeypatch.setenv("TVA_API_TOKEN", "api-hunter2")
    host = _outside_address()
    server = Listener(host)
    try:
        url = f"http://{host}:{server.port}"
        device = _device(f"{url}/transmission/rpc", url)
        client = TransmissionClient.for_device(device, timeout=5)
        assert client is not None
        with pytest.raises(EgressRefused, match="transmission secret"):
            client.torrent_get({"fields": ["id"]})
        peers = PeerApi(timeout=5)
        with pytest.raises(EgressRefused, match="peer secret"):
            peers.holds(device, "aa" * 20)
        assert server.connections == 0 and b"hunter2" not in server.received

        install(NodeConfig(egress=EgressConfig(allow=[f"{host}/32"])))
        assert peers.holds(device, "aa" * 20) is True
        assert server.connections == 1 and b"Bearer api-hunter2" in server.received
        peers.close()
    finally:
        server.close()


def test_link_local_and_metadata_addresses_are_never_reached(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TVA_RPC_PASSWORD", "rpc-hunter2")
    for url in ("http://169.254.169.254/latest/meta-data", "http://[fe80::1]:80/",
                "http://100.100.100.200/", "http://[fd00:ec2::254]/",
                "http://[::ffff:169.254.169.254]/"):
        client = TransmissionClient(url, timeout=2)  # no secret at all: still refused
        with pytest.raises(EgressRefused, match="link-local or metadata"):
            client.torrent_get({"fields": ["id"]})
        with pytest.raises(EgressRefused):
            PeerApi(timeout=2).holds(_device(url, url), "aa" * 20)
    loop = Listener("127.0.0.1")
    try:
        client = TransmissionClient(f"http://127.0.0.1:{loop.port}/transmission/rpc",
                                    "tva", "pw", timeout=5)
        with pytest.raises(TemporaryError):  # reached (not Transmission, but reached)
            client.torrent_get({"fields": ["id"]})
        assert loop.connections >= 1
    finally:
        loop.close()
    assert os.environ["TVA_RPC_PASSWORD"] == "rpc-hunter2"
