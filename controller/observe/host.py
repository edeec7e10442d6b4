"""Observe the machine itself: free space per storage root, VPN interfaces, mains power.

Everything here reads the kernel directly and is cheap enough for every pass. Interfaces are
read with the ``SIOCGIFFLAGS`` ioctl on a socket, not from ``/sys/class/net``: the ioctl
answers for the caller's network namespace, while sysfs shows the namespace it was mounted in
(a daemon in a container or a namespace would otherwise see the host's interfaces).

"Up" means ``IFF_UP`` and ``IFF_RUNNING``: administratively up and operational. A WireGuard
interface reports operstate "unknown" but is RUNNING while up; a tun device with no OpenVPN
process attached, or a link whose carrier is gone, is UP without RUNNING and counts as down.
Power is read from ``/sys/class/power_supply`` and is ``None`` where the machine does not say.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from controller.nodeconfig import current
from schemas.desired import Device, VpnProfile
from schemas.observed import StorageStatus, VpnState

__all__ = [
    "POWER_SUPPLY_ROOT",
    "HostObservation",
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


def vpn_state(profile: str, interface: str) -> VpnState:
    """Whether ``interface`` (the profile's tunnel) is up here, with a short reason."""
    try:
        flags = interface_flags(interface)
    except OSError as e:
        return VpnState(
            profile=profile,
            interface=interface,
            up=False,
            detail=f"cannot read the interface: {e.strerror or e}",
        )
    if flags is None:
        return VpnState(profile=profile, interface=interface, up=False, detail="no such interface")
    if not flags & IFF_UP:
        return VpnState(
            profile=profile, interface=interface, up=False, detail="administratively down"
        )
    if not flags & IFF_RUNNING:
        return VpnState(
            profile=profile, interface=interface, up=False, detail="up but not running (no carrier)"
        )
    return VpnState(profile=profile, interface=interface, up=True, detail="up")


def observe_vpn(profiles: Iterable[VpnProfile]) -> list[VpnState]:
    """Each profile's tunnel, and whether this node's configuration can bring it up."""
    commands = current().vpn
    return [
        vpn_state(p.name, p.interface).model_copy(
            update={"managed": p.name in commands and commands[p.name].up is not None})
        for p in profiles
    ]


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
