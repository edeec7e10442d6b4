"""The privileged path for tunnels (issue 13): the root helper switches only what the node's
operator declared, takes nothing else from its caller, and the shipped units pass
``systemd-analyze verify``."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from controller.cli.tunnel_helper import run
from controller.clients.tunnel import GUARD_PRIORITY, guard_commands, switch_argv, unit_name
from schemas.node import NodeConfig, TunnelPath, TunnelsConfig, VpnCommands
from tests.conftest import REPO_ROOT

UNITS = REPO_ROOT / "examples" / "systemd"
VENV_BIN = REPO_ROOT / ".venv" / "bin"


def _config(tmp_path: Path, marker: Path) -> Path:
    path = tmp_path / "node.toml"
    path.write_text(f'[vpn.home-wg]\nup = ["/usr/bin/touch", "{marker}"]\n'
                    f'down = ["/bin/rm", "-f", "{marker}"]\n')
    return path


def test_the_helper_switches_a_declared_profile(tmp_path: Path) -> None:
    marker = tmp_path / "up"
    config = _config(tmp_path, marker)
    assert run(["up", "vpn", "home-wg"], config=str(config), check_owner=False) == 0
    assert marker.exists()
    assert run(["down", "vpn-home-wg"], config=str(config), check_owner=False) == 0  # unit form
    assert not marker.exists()


@pytest.mark.parametrize("argv", [
    ["up", "vpn", "evil"],                       # not declared in node.toml
    ["up", "fabric", "home-wg"],                 # declared as a profile, not as the fabric
    ["up", "vpn", "home-wg", "--config=/tmp/x"],  # nothing else from the caller
    ["up", "vpn", "../home-wg"],
    ["up", "shell", "home-wg"],
    ["restart", "vpn", "home-wg"],
    [],
], ids=["undeclared", "wrong-kind", "extra-argument", "path-like", "unknown-kind", "verb",
        "nothing"])
def test_the_helper_refuses_anything_not_declared(tmp_path: Path, argv: list[str],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "up"
    config = _config(tmp_path, marker)
    assert run(argv, config=str(config), check_owner=False) in (1, 2)
    assert not marker.exists(), "nothing ran"
    assert "tva-tunnel:" in capsys.readouterr().err


def test_the_helper_refuses_a_config_root_does_not_own(tmp_path: Path) -> None:
    marker = tmp_path / "up"
    config = _config(tmp_path, marker)
    config.chmod(0o666)
    assert run(["up", "vpn", "home-wg"], config=str(config)) == 1
    assert not marker.exists()


def test_the_privileged_path_is_the_operators_choice() -> None:
    declared = {"home-wg": VpnCommands(up=["/usr/bin/wg-quick", "up", "home"],
                                       down=["/usr/bin/wg-quick", "down", "home"])}
    direct = NodeConfig(vpn=declared)
    assert switch_argv(direct, "vpn", "home-wg", True) == ["/usr/bin/wg-quick", "up", "home"]
    via_systemd = NodeConfig(vpn=declared, tunnels=TunnelsConfig(via=TunnelPath.systemd))
    assert switch_argv(via_systemd, "vpn", "home-wg", False) == [
        "/usr/bin/systemctl", "stop", "--no-ask-password", "tva-tunnel@vpn-home-wg.service"]
    via_sudo = NodeConfig(vpn=declared, tunnels=TunnelsConfig(via=TunnelPath.sudo))
    assert switch_argv(via_sudo, "vpn", "home-wg", True) == [
        "/usr/bin/sudo", "-n", "/usr/sbin/tva-tunnel", "up", "vpn", "home-wg"]
    # Whatever the path, an undeclared tunnel has no command.
    for config in (direct, via_systemd, via_sudo):
        assert switch_argv(config, "vpn", "other", True) is None
    assert unit_name("fabric", "tva0") == "tva-tunnel@fabric-tva0.service"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed (Debian package systemd)")
def test_the_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    # The units name the installed programs; verify them pointing at this checkout's.
    helper, tva = VENV_BIN / "tva-tunnel", VENV_BIN / "tva"
    if not (os.access(helper, os.X_OK) and os.access(tva, os.X_OK)):
        pytest.skip("the virtualenv's tva and tva-tunnel scripts are not installed")
    for unit in ("tva-tunnel@.service", "tva-tunnel-show@.service", "tva@.service"):
        text = (UNITS / unit).read_text()
        text = text.replace("/usr/sbin/tva-tunnel", str(helper))
        text = text.replace("/opt/tva/.venv/bin/tva", str(tva))
        (tmp_path / unit).write_text(text)
    for instance in ("tva-tunnel@vpn-home-wg.service", "tva-tunnel@fabric-tva0.service",
                     "tva-tunnel-show@fabric-tva0.service", "tva@nas.service"):
        r = subprocess.run(["systemd-analyze", "verify", "--man=no", f"./{instance}"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and r.stderr.strip() == "", (instance, r.stderr)
    # The check can fail: a broken copy is reported.
    broken = (tmp_path / "tva-tunnel@.service").read_text().replace("Type=oneshot",
                                                                      "Type=bogus")
    (tmp_path / "tva-broken@.service").write_text(broken)
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", "./tva-broken@vpn-x.service"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert "bogus" in r.stderr


def test_the_guard_sends_the_tunnels_address_through_it_or_nowhere() -> None:
    rules = guard_commands("wg0", "10.66.0.2", 51820)
    rule = next(c for c in rules if c[2:4] == ["rule", "add"])
    # Consulted before the main table (priority 32766), where the bare link's default route is.
    assert rule[rule.index("pref") + 1] == str(GUARD_PRIORITY) and GUARD_PRIORITY < 32766
    routes = [c for c in rules if c[2:4] == ["route", "replace"]]
    assert [r[4] for r in routes] == ["blackhole", "default"]
    assert "dev" in routes[1] and "wg0" in routes[1]
    assert guard_commands("wg0", "fd00::2", 7)[0][1] == "-6"
