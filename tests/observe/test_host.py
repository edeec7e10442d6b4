"""The host observer: real filesystems, real interfaces in a network namespace made by the test.

VPN interfaces are stood in for by a veth pair (the ``dummy`` link type does not work on the
lab machines, see ``../shared/LAB.md``); a tunnel itself cannot run here, but what the observer
reads (the interface's flags in the caller's namespace) is the same for any link type.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from controller.observe.host import (
    observe_host,
    observe_storage,
    observe_vpn,
    on_ac_power,
    profiles_for,
    storage_status,
    vpn_state,
)
from schemas.desired import Device, VpnProfile

REPO_ROOT = Path(__file__).resolve().parents[2]

# ---------------------------------------------------------------------- storage


def test_storage_root_reports_free_and_total(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    sa, sb = observe_storage([str(a), str(b)])
    assert sa.reachable and sa.path == str(a)
    assert 0 < sa.free <= sa.total
    assert sa.total == sb.total  # same filesystem
    st = os.statvfs(a)
    assert sa.total == st.f_blocks * st.f_frsize


def test_missing_root_is_unreachable(tmp_path: Path) -> None:
    st = storage_status(str(tmp_path / "unplugged"))
    assert st.reachable is False
    assert st.free == 0 and st.total == 0


def test_file_in_place_of_a_root_is_unreachable(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    assert storage_status(str(f)).reachable is False


# ---------------------------------------------------------------------- vpn interfaces


def test_loopback_is_never_a_tunnel_and_a_missing_interface_is_down() -> None:
    lo = vpn_state("p", "lo")
    assert lo.up is False and "loopback" in lo.detail
    missing = vpn_state("p", "tva-nonexist0")
    assert missing.up is False and missing.detail == "no such interface"


_NAMESPACE_SNIPPET = r"""
import json, subprocess
from controller.observe.host import vpn_state
from controller.waiting import wait_for

def ip(*args):
    subprocess.run(["ip", "link", *args], check=True)

def look(step):
    s = vpn_state("home-wg", "tva-wg0")
    out.append({"step": step, "up": s.up, "detail": s.detail})

out = []
look("absent")
ip("add", "tva-wg0", "type", "veth", "peer", "name", "tva-wg1")
look("created")
ip("set", "tva-wg0", "up")
look("one end up")
ip("set", "tva-wg1", "up")
look("both up")
ip("set", "tva-wg0", "down")
look("down again")
ip("set", "tva-wg0", "up")
wait_for(lambda: vpn_state("home-wg", "tva-wg0").up, timeout=30, what="carrier")
s = vpn_state("home-wg", "tva-wg0", address="10.9.9.1")
out.append({"step": "without its address", "up": s.up, "detail": s.detail})
subprocess.run(["ip", "addr", "add", "10.9.9.1/32", "dev", "tva-wg0"], check=True)
s = vpn_state("home-wg", "tva-wg0", address="10.9.9.1")
out.append({"step": "with its address", "up": s.up, "detail": s.address})
print(json.dumps(out))
"""


def _unshare_works() -> str | None:
    try:
        r = subprocess.run(["unshare", "-rn", "true"], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        return "unshare is not installed"
    if r.returncode != 0:
        return f"the kernel refuses a user network namespace: {r.stderr.strip()}"
    return None


def test_vpn_interface_up_and_down_in_a_namespace() -> None:
    why = _unshare_works()
    if why is not None:
        pytest.skip(why)
    r = subprocess.run(
        ["unshare", "-rn", sys.executable, "-c", _NAMESPACE_SNIPPET],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert r.returncode == 0, r.stderr
    steps = {s["step"]: s for s in json.loads(r.stdout)}
    assert steps["absent"] == {"step": "absent", "up": False, "detail": "no such interface"}
    assert steps["created"]["up"] is False
    assert steps["created"]["detail"] == "administratively down"
    assert steps["one end up"]["up"] is False  # no carrier until the peer is up
    assert "not running" in steps["one end up"]["detail"]
    assert steps["both up"]["up"] is True
    assert steps["down again"]["up"] is False
    # A live link is not enough: the tunnel must carry the address its node declared.
    assert steps["without its address"]["up"] is False
    assert "10.9.9.1" in steps["without its address"]["detail"]
    assert steps["with its address"] == {"step": "with its address", "up": True,
                                         "detail": "10.9.9.1"}


# ---------------------------------------------------------------------- power


def _supply(root: Path, name: str, **files: str) -> None:
    d = root / name
    d.mkdir(parents=True)
    for k, v in files.items():
        (d / k).write_text(v + "\n")


def test_power_on_mains(tmp_path: Path) -> None:
    _supply(tmp_path, "AC", type="Mains", online="1")
    _supply(tmp_path, "BAT0", type="Battery", status="Charging")
    assert on_ac_power(tmp_path) is True


def test_power_on_battery(tmp_path: Path) -> None:
    _supply(tmp_path, "AC", type="Mains", online="0")
    _supply(tmp_path, "BAT0", type="Battery", status="Discharging")
    assert on_ac_power(tmp_path) is False


def test_battery_discharging_without_a_mains_entry(tmp_path: Path) -> None:
    _supply(tmp_path, "BAT0", type="Battery", status="Discharging")
    assert on_ac_power(tmp_path) is False


def test_power_unknown_without_supplies(tmp_path: Path) -> None:
    assert on_ac_power(tmp_path) is None
    assert on_ac_power(tmp_path / "absent") is None
    _supply(tmp_path, "BAT0", type="Battery", status="Full")
    assert on_ac_power(tmp_path) is None


def test_power_of_this_machine_does_not_fail() -> None:
    assert on_ac_power() in (True, False, None)


# ---------------------------------------------------------------------- one look at the host


def _device(name: str, roots: list[str], vpn: str | None = None) -> Device:
    return Device.model_validate(
        {
            "apiVersion": "tva/v1",
            "kind": "Device",
            "name": name,
            "class": "laptop",
            "storage": [{"path": r, "capacity": "1GB"} for r in roots],
            **({"vpn": vpn} if vpn else {}),
        }
    )


def _profile(name: str, interface: str, devices: list[str]) -> VpnProfile:
    return VpnProfile.model_validate(
        {
            "apiVersion": "tva/v1",
            "kind": "VpnProfile",
            "name": name,
            "type": "wireguard",
            "interface": interface,
            "config": {"file": "/etc/wireguard/x.conf"},
            "devices": devices,
        }
    )


def test_observe_host_covers_the_device(tmp_path: Path) -> None:
    profiles = {
        "loop": _profile("loop", "lo", ["laptop"]),
        "away": _profile("away", "tva-nonexist0", []),
        "other": _profile("other", "lo", ["nas"]),
    }
    dev = _device("laptop", [str(tmp_path), "/nonexistent-tva-root"], vpn="away")
    assert [p.name for p in profiles_for(dev, profiles)] == ["away", "loop"]
    _supply(tmp_path / "ps", "AC", type="Mains", online="1")
    obs = observe_host(dev, profiles, power_root=tmp_path / "ps")
    assert [(s.path, s.reachable) for s in obs.storage] == [
        (str(tmp_path), True),
        ("/nonexistent-tva-root", False),
    ]
    assert {v.profile: v.up for v in obs.vpn} == {"away": False, "loop": False}
    assert "loopback" in next(v.detail for v in obs.vpn if v.profile == "loop")
    assert obs.on_ac_power is True


def test_transmission_bound_to_the_tunnel_is_read_from_its_settings(tmp_path: Path) -> None:
    from controller.nodeconfig import install
    from schemas.node import NodeConfig, TransmissionConfig, VpnCommands

    settings = tmp_path / "settings.json"
    prof = _profile("home-wg", "tva-nonexist0", [])
    try:
        for bind, want in (("10.66.0.2", True), ("0.0.0.0", False)):
            settings.write_text(json.dumps({"bind-address-ipv4": bind, "peer-port": 51413}))
            install(NodeConfig(vpn={"home-wg": VpnCommands(address="10.66.0.2")},
                               transmission=TransmissionConfig(settings_file=str(settings))))
            assert observe_vpn([prof])[0].bound is want
        settings.write_text("{not json")
        assert observe_vpn([prof])[0].bound is None, "unreadable: unknown, not unbound"
    finally:
        install(NodeConfig())
