"""Observe the machine itself: free space per storage root, VPN interfaces, mains power.

Everything here reads the kernel directly and is cheap enough for every pass. Interfaces are
read with the ``SIOCGIFFLAGS`` ioctl on a socket, not from ``/sys/class/net``: the ioctl
answers for the caller's network namespace, while sysfs shows the namespace it was mounted in
(a daemon in a container or a namespace would otherwise see the host's interfaces).

"Up" means ``IFF_UP`` and ``IFF_RUNNING``: administratively up and operational. A WireGuard
interface reports operstate "unknown" but is RUNNING while up; a tun device with no OpenVPN
process attached, or a link whose carrier is gone, is UP without RUNNING and counts as down.
A tunnel is more than a live link (issue 13): it must not be a loopback (``lo`` is always up),
must carry the address the node's operator declared for it, and a WireGuard tunnel must have a
recent handshake (``controller.clients.tunnel`` reads addresses and handshakes).
Power is read from ``/sys/class/power_supply`` and is ``None`` where the machine does not say.
"""

from __future__ import annotations

import errno
import fcntl
import ipaddress
import json
import os
import socket
import struct
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from controller.clients import tunnel
from controller.nodeconfig import current
from schemas.desired import Device, VpnProfile, VpnType
from schemas.observed import StorageStatus, VpnState

__all__ = [
    "POWER_SUPPLY_ROOT",
    "HostObservation",
    "bound_address",
    "interface_flags",
    "observe_host",
    "observe_storage",
    "observe_vpn",
    "on_ac_power",
    "profiles_for",
    "storage_status",
    "vpn_state",
]

SIOCGIFFLAGS = 0x8913
IFF_UP = 0x1
IFF_LOOPBACK = 0x8
IFF_RUNNING = 0x40
_IFREQ_SIZE = 40  # struct ifreq on Linux: 16-byte name + 24-byte union
_IFNAMSIZ = 16

POWER_SUPPLY_ROOT = Path("/sys/class/power_supply")
_MAINS_TYPES = frozenset({"Mains", "USB", "USB_C", "USB_PD"})


# ---------------------------------------------------------------------- storage


def storage_status(path: str) -> StorageStatus:
    """Free (usable without privileges) and total bytes of the filesystem holding ``path``.

    A root that is missing, not a directory or not readable is ``reachable=False`` with zero
    sizes: the planner must not place data there, nor read its emptiness as free space.
    """
    if not os.path.isdir(path):
        return StorageStatus(path=path, free=0, total=0, reachable=False)
    try:
        st = os.statvfs(path)
    except OSError:
        return StorageStatus(path=path, free=0, total=0, reachable=False)
    return StorageStatus(path=path, free=st.f_bavail * st.f_frsize, total=st.f_blocks * st.f_frsize)


def observe_storage(paths: Iterable[str]) -> list[StorageStatus]:
    return [storage_status(p) for p in paths]


# ---------------------------------------------------------------------- interfaces


def interface_flags(name: str) -> int | None:
    """The interface's flags in the caller's network namespace, or None if it does not exist."""
    raw = os.fsencode(name)
    if not raw or len(raw) >= _IFNAMSIZ or b"\x00" in raw or b"/" in raw:
        return None
    req = raw.ljust(_IFREQ_SIZE, b"\x00")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            res = fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, req)
        except OSError as e:
            if e.errno in (errno.ENODEV, errno.ENXIO):
                return None
            raise
    flags: int = struct.unpack_from("H", res, _IFNAMSIZ)[0]
    return flags


def vpn_state(profile: str, interface: str, *, address: str | None = None,
              wireguard: bool = False, handshake_within: float = 180.0,
              now: float | None = None) -> VpnState:
    """Whether ``interface`` (the profile's tunnel) is up here, with a short reason.

    Up means: the interface exists, is not a loopback, is UP and RUNNING, carries ``address``
    when the node declares one, and, for WireGuard, some peer completed a handshake within
    ``handshake_within`` seconds (when the handshake can be read: ``wg show`` needs privilege,
    so a controller that is not root reads it through the helper's read-only ``show``; when it
    cannot be read, the detail says so and the other checks decide).
    """
    def down(detail: str) -> VpnState:
        return VpnState(profile=profile, interface=interface, up=False, detail=detail)

    try:
        flags = interface_flags(interface)
    except OSError as e:
        return down(f"cannot read the interface: {e.strerror or e}")
    if flags is None:
        return down("no such interface")
    if flags & IFF_LOOPBACK or interface == "lo":
        return down("a loopback interface is not a tunnel")
    if not flags & IFF_UP:
        return down("administratively down")
    if not flags & IFF_RUNNING:
        return down("up but not running (no carrier)")
    detail = "up"
    if address is not None:
        carried = tunnel.interface_addresses(interface)
        if carried is None:
            return down("cannot read the interface's addresses")
        if ipaddress.ip_address(address) not in {ipaddress.ip_address(a) for a in carried}:
            return down(f"does not carry the tunnel's address {address}")
    if wireguard:
        newest = tunnel.latest_handshake(interface, profile=profile, config=current())
        if newest is None:
            detail = "up (handshake not readable here)"
        elif newest == 0:
            return down("no handshake with any peer yet")
        else:
            age = (time.time() if now is None else now) - newest
            if age > handshake_within:
                return down(f"latest handshake {age:.0f}s ago (more than {handshake_within:.0f}s)")
    return VpnState(profile=profile, interface=interface, up=True, detail=detail, address=address)


def bound_address(settings_file: str | None) -> str | None:
    """``bind-address-ipv4`` of a Transmission settings.json, or None when it cannot be read.
    The file is the operator's (node.toml), so a size cap is enough of a guard."""
    if settings_file is None:
        return None
    try:
        with open(settings_file, "rb") as f:
            data = json.loads(f.read(1 << 20))
    except (OSError, ValueError):
        return None
    value = data.get("bind-address-ipv4") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def observe_vpn(profiles: Iterable[VpnProfile]) -> list[VpnState]:
    """Each profile's tunnel, whether this node's configuration can bring it up, and whether
    Transmission's peer traffic is bound to the tunnel's address (when the node says where its
    settings are)."""
    commands = current().vpn
    bind = bound_address(current().transmission.settings_file)
    out = []
    for p in profiles:
        declared = commands.get(p.name)
        state = vpn_state(
            p.name, p.interface, address=declared.address if declared else None,
            wireguard=p.type is VpnType.wireguard,
            handshake_within=declared.handshake_within if declared else 180.0)
        bound = (None if bind is None or declared is None or declared.address is None
                 else bind == declared.address)
        out.append(state.model_copy(update={"managed": declared is not None
                                            and declared.up is not None, "bound": bound}))
    return out


def profiles_for(device: Device, profiles: Mapping[str, VpnProfile]) -> list[VpnProfile]:
    """The VPN profiles a device uses: its ``vpn:`` and any profile that lists it, by name."""
    used = {name for name, p in profiles.items() if device.name in p.devices}
    if device.vpn is not None and device.vpn in profiles:
        used.add(device.vpn)
    return [profiles[n] for n in sorted(used)]


# ---------------------------------------------------------------------- power


def on_ac_power(root: Path = POWER_SUPPLY_ROOT) -> bool | None:
    """True on mains power, False on battery, None when the machine does not say.

    A mains (or USB) supply reports ``online``; without one, a battery that is discharging
    means battery power. A desktop with no power_supply entries gives None: unknown, not
    "on battery".
    """
    try:
        supplies = sorted(root.iterdir())
    except OSError:
        return None
    mains_seen = False
    discharging = False
    for sup in supplies:
        kind = _read(sup / "type")
        if kind in _MAINS_TYPES:
            online = _read(sup / "online")
            if online == "1":
                return True
            if online == "0":
                mains_seen = True
        elif kind == "Battery" and _read(sup / "status") == "Discharging":
            discharging = True
    if mains_seen or discharging:
        return False
    return None


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None


# ---------------------------------------------------------------------- all of it


@dataclass(frozen=True)
class HostObservation:
    """One look at the host. ``on_ac_power`` has no field in NodeStatus v1 yet."""

    storage: list[StorageStatus] = field(default_factory=list)
    vpn: list[VpnState] = field(default_factory=list)
    on_ac_power: bool | None = None


def observe_host(
    device: Device,
    vpn_profiles: Mapping[str, VpnProfile],
    *,
    power_root: Path = POWER_SUPPLY_ROOT,
) -> HostObservation:
    """Storage roots declared for ``device``, the VPN profiles it uses, and its power."""
    return HostObservation(
        storage=observe_storage(r.path for r in device.storage),
        vpn=observe_vpn(profiles_for(device, vpn_profiles)),
        on_ac_power=on_ac_power(power_root),
    )
