"""This node's end of the fleet fabric as WireGuard reports it: per peer the latest handshake,
endpoint and bytes, and which members the node reaches now (directly, or behind the relay)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from datetime import datetime

from controller.clients import tunnel
from controller.clients import wireguard as wg
from controller.errors import TvaError
from controller.nodeconfig import current
from schemas.desired import DesiredState
from schemas.fabric import SESSION, relay_of
from schemas.observed import FabricPeerStatus, FabricStatus

__all__ = ["observe_fabric"]

def observe_fabric(desired: DesiredState, node: str, now: datetime,
                   show: Callable[[str], wg.WgDump | None] | None = None) -> FabricStatus | None:
    """The node's fabric status; None when the fleet has no fabric or the node is no member.
    ``show`` reads the interface (default: this process, or the root helper's read-only
    ``show`` when node.toml's ``[tunnels] via`` is not ``direct``)."""
    fabric = desired.fabric
    me = fabric.member(node) if fabric is not None else None
    if fabric is None or me is None:
        return None
    address = fabric.address_of(node)
    try:
        dump = (show or _show)(fabric.interface)
    except TvaError as e:
        return FabricStatus(interface=fabric.interface, up=False, address=address, error=str(e))
    if dump is None:
        return FabricStatus(interface=fabric.interface, up=False, address=address,
                            error=f"{fabric.interface} does not exist")
    by_key = {m.public_key: m.device for m in fabric.members}
    peers = [
        FabricPeerStatus(
            device=by_key.get(p.public_key), public_key=p.public_key, endpoint=p.endpoint,
            allowed_ips=list(p.allowed_ips), latest_handshake=p.latest_handshake,
            rx_bytes=p.rx, tx_bytes=p.tx,
            reachable=p.latest_handshake is not None and now - p.latest_handshake <= SESSION,
        )
        for p in dump.peers
    ]
    reachable = {p.device for p in peers if p.reachable and p.device is not None}
    relay = relay_of(fabric)
    relay_peer = next((p for p in peers if relay is not None and p.device == relay.device), None)
    if relay_peer is not None and relay_peer.reachable:
        behind = [ipaddress.ip_interface(a).ip for a in relay_peer.allowed_ips]
        for m in fabric.members:
            if m.device != node and any(ip in behind for ip in m.ips()):
                reachable.add(m.device)
    return FabricStatus(interface=fabric.interface, up=True, address=address,
                        public_key=dump.public_key, peers=peers, reachable=sorted(reachable))


def _show(interface: str) -> wg.WgDump | None:
    return wg.show(interface, helper=lambda iface: tunnel.helper_show(current(), "fabric", iface))
