"""Cross-file rules of the fabric (``kind: Fabric``): one per fleet, members are known devices,
addresses inside the subnet and unique, keys unique, and device addresses inside the subnet
are the device's own fabric address.

What needs the node (an existing address or route that overlaps the subnet) is not guessed
here: the collision probe runs at apply time (``controller.act.fabric``).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from schemas.desired import Device
from schemas.fabric import Fabric

__all__ = ["Report", "check_fabric"]

Report = Callable[[Any, tuple[str | int, ...], str, str], None]
"""``report(origin, path, message, hint)``: the loader's collector."""


def _host_of(url_or_hostport: str) -> str | None:
    if "://" in url_or_hostport:
        return urlsplit(url_or_hostport).hostname
    m = re.match(r"^\[?([^\]]+?)\]?:[0-9]+$", url_or_hostport)
    return m.group(1) if m else None


def check_fabric(
    fabrics: list[tuple[Fabric, Any]],
    devices: Mapping[str, tuple[Device, Any]],
    known_device: Callable[[str], bool],
    unknown_device: Callable[[str], tuple[str, str]],
    report: Report,
) -> Fabric | None:
    """Check the fabric resources; the one fabric, or None (problems go to ``report``)."""
    for _, origin in fabrics[1:]:
        report(origin, ("kind",), "a second Fabric resource",
               f"the fabric is defined at {fabrics[0][1].file}; keep one")
    if not fabrics:
        return None
    fabric, origin = fabrics[0]
    nets = fabric.networks()
    seen_device: dict[str, int] = {}
    seen_address: dict[str, int] = {}
    seen_key: dict[str, int] = {}
    for i, m in enumerate(fabric.members):
        if not known_device(m.device):
            report(origin, ("members", i, "device"), *unknown_device(m.device))
        if m.device in seen_device:
            report(origin, ("members", i, "device"), f"device {m.device!r} is a member twice",
                   f"also members[{seen_device[m.device]}]; keep one")
        seen_device.setdefault(m.device, i)
        for j, addr in enumerate(m.ips()):
            at = ("members", i, "addresses", j) if len(m.addresses) > 1 else ("members", i, "addresses")
            net = next((n for n in nets if n.version == addr.version), None)
            if net is None:
                report(origin, at, f"{addr} has no IPv{addr.version} fabric subnet",
                       "add one to subnet: or give an address of the subnet's family")
            elif addr not in net:
                report(origin, at, f"{addr} is outside the fabric subnet {net}",
                       "give an address inside the subnet")
            elif net.prefixlen < net.max_prefixlen - 1 and addr in (
                    net.network_address, net.broadcast_address):
                report(origin, at, f"{addr} is the subnet's network or broadcast address",
                       "give a host address")
            elif str(addr) in seen_address:
                report(origin, at, f"fabric address {addr} is taken",
                       f"members[{seen_address[str(addr)]}] has it; give each device its own")
            seen_address.setdefault(str(addr), i)
        if m.public_key in seen_key:
            report(origin, ("members", i, "public_key"), "this public key is another member's",
                   f"members[{seen_key[m.public_key]}] has it; each node has its own key "
                   "(tva fabric keys NODE)")
        seen_key.setdefault(m.public_key, i)
    # A device address inside the fabric subnet must be that device's own fabric address:
    # otherwise its tracker, API or peer address would point at another member.
    for name, (dev, d_origin) in devices.items():
        own = fabric.member(name)
        mine = {str(a) for a in own.ips()} if own is not None else set()
        for fld in ("controller_api", "transmission_rpc", "peer"):
            value = getattr(dev.addresses, fld)
            host = _host_of(value) if value else None
            try:
                ip = ipaddress.ip_address(host) if host else None
            except ValueError:
                continue
            if ip is None or not any(ip.version == n.version and ip in n for n in nets):
                continue
            if str(ip) not in mine:
                report(d_origin, ("addresses", fld),
                       f"{ip} is a fabric address, but not {name}'s",
                       f"give {name}'s own fabric address ({', '.join(sorted(mine))})" if mine
                       else f"make {name} a member of the fabric, or give another address")
    return fabric
