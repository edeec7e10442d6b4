"""The fleet's own network: a WireGuard fabric (``kind: Fabric``) and the pure rules about it.

One ``fabric.yaml`` declares the fleet subnet (IPv4 and/or an IPv6 ULA), and for each member
device its fabric address, public key, where it is reachable (none for a roaming laptop), its
keepalive and whether it relays for others. Private keys never appear here: each node keeps its
own in its secrets directory (``tva fabric keys NODE``).

Everything in the file is attacker-controlled, so the rules are closed: the subnet must be
private (RFC 1918, 100.64/10 or ULA), each peer's AllowedIPs are fabric addresses only (the
fabric never routes anything else), and the interface is one of tva's own names. ``render`` is
the pure function from the desired fabric to one node's WireGuard configuration; ``collisions``
is the pure half of the collision probe (the node's addresses and routes are read at apply
time by ``controller.clients.wireguard``).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from schemas.base import Model
from schemas.types import Duration, Name, parse_duration

__all__ = [
    "DEFAULT_INTERFACE",
    "DEFAULT_PORT",
    "FAILOVER_AFTER",
    "SESSION",
    "Collision",
    "EndpointChoice",
    "Fabric",
    "FabricMember",
    "PublicKey",
    "WgConfig",
    "WgPeer",
    "collisions",
    "direct",
    "failover",
    "key_problem",
    "relay_of",
    "render",
]

DEFAULT_INTERFACE = "tva0"
DEFAULT_PORT = 51820

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_ULA = ipaddress.IPv6Network("fc00::/7")
_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_HOSTPORT = r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$"


def key_problem(key: str) -> str | None:
    """Why ``key`` is not a WireGuard key (base64 of 32 bytes), or None."""
    try:
        raw = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        return "is not base64"
    if len(raw) != 32:
        return f"decodes to {len(raw)} bytes; a WireGuard key is 32"
    return None


def _public_key(v: str) -> str:
    problem = key_problem(v)
    if problem is not None:
        raise ValueError(f"the public key {problem}")
    return v


PublicKey = Annotated[str, StringConstraints(min_length=44, max_length=44),
                      AfterValidator(_public_key)]
"""A WireGuard public key as the fleet repo and the fabric's spool give it."""


def _one_or_many(v: Any) -> Any:
    return [v] if isinstance(v, str) else v


def _private_network(text: str) -> IpNetwork:
    net = ipaddress.ip_network(text, strict=True)
    if isinstance(net, ipaddress.IPv4Network):
        if not (net.is_private or net.subnet_of(_CGNAT)) or net.is_loopback or net.is_link_local:
            raise ValueError(f"{text} is not a private IPv4 network (10/8, 172.16/12, "
                             "192.168/16 or 100.64/10)")
        if net.prefixlen < 16:
            # Everything in the subnet is routed to tva0: a /8 would swallow whole networks.
            raise ValueError(f"{text} is wider than a /16; a fleet needs no more addresses")
    elif not net.subnet_of(_ULA) or net.prefixlen < 48:
        raise ValueError(f"{text} is not an IPv6 unique local network (fc00::/7, /48 or longer)")
    return net


class FabricMember(Model):
    """One device on the fabric."""

    device: Name = Field(description="The device (a Device resource) this member is.")
    addresses: Annotated[
        list[str], BeforeValidator(_one_or_many, json_schema_input_type=str | list[str])
    ] = Field(
        min_length=1, max_length=2,
        description="Its fabric address (one IPv4 and/or one IPv6), inside the fleet subnet; "
        "its addresses: in the Device may name it, so a roaming laptop keeps its identity.",
    )
    public_key: PublicKey = Field(
        description="Its WireGuard public key (base64), as `tva fabric keys NODE` prints it. The "
        "private key stays on the node; rotating the key is a commit of the new public key.",
    )
    endpoints: list[Annotated[str, StringConstraints(pattern=_HOSTPORT)]] = Field(
        default_factory=list, max_length=4,
        description="host:port where other members reach it: the first, then the next when it "
        "gives no handshake for 25 s (and round). None for a "
        "roaming device (a laptop): it dials out, and others reach it through a relay.",
    )
    listen_port: int = Field(
        default=DEFAULT_PORT, ge=1, le=65535, description="UDP port its tva0 listens on."
    )
    keepalive: Duration | None = Field(
        default=parse_duration("25s"),
        description="Send a keepalive this often (1s to 65535s; null: never) to the members it "
        "dials: it keeps a NAT mapping (and the relay's route back to a roaming device) open, and "
        "keeps a recent handshake, which is how the fleet sees the fabric reach a member.",
    )
    relay: bool = Field(
        default=False,
        description="It forwards between roaming members and the rest (it needs an endpoint): "
        "a seedbox or a home server with a public port.",
    )

    @field_validator("addresses")
    @classmethod
    def _addresses(cls, v: list[str]) -> list[str]:
        out = []
        for a in v:
            addr = ipaddress.ip_address(a)  # ValueError names the text
            out.append(str(addr))
        if len({ipaddress.ip_address(a).version for a in out}) != len(out):
            raise ValueError("give at most one IPv4 and one IPv6 address")
        return out

    @field_validator("keepalive")
    @classmethod
    def _keepalive(cls, v: Any) -> Any:
        if v is not None and not 1 <= v.total_seconds() <= 65535:
            raise ValueError("keepalive is between 1s and 65535s")
        return v

    @field_validator("endpoints")
    @classmethod
    def _ports(cls, v: list[str]) -> list[str]:
        for e in v:
            port = int(e.rpartition(":")[2])
            if not 1 <= port <= 65535:
                raise ValueError(f"endpoint {e}: port {port} is outside 1-65535")
        return v

    @model_validator(mode="after")
    def _relay_reachable(self) -> Self:
        if self.relay and not self.endpoints:
            raise ValueError("a relay needs endpoints: the roaming members dial it")
        return self

    @property
    def roaming(self) -> bool:
        return not self.endpoints

    def ips(self) -> list[IpAddress]:
        return [ipaddress.ip_address(a) for a in self.addresses]


class Fabric(Model):
    """``fabric.yaml``: the fleet's own WireGuard network, ``tva0`` on every member."""

    api_version: Literal["tva/v1"] = Field(alias="apiVersion")
    kind: Literal["Fabric"]
    name: Name
    description: str = ""
    interface: Annotated[str, StringConstraints(pattern=r"^tva[0-9]{1,2}$")] = Field(
        default=DEFAULT_INTERFACE,
        description="The interface tva creates and owns on each member (tva0..tva99; never "
        "another name, so a commit cannot take over an interface tva does not own).",
    )
    subnet: Annotated[
        list[str], BeforeValidator(_one_or_many, json_schema_input_type=str | list[str])
    ] = Field(
        min_length=1, max_length=2,
        description="The fleet subnet: one private IPv4 network and/or one IPv6 ULA network "
        "(e.g. 10.99.0.0/24, fd42:7661::/64). Only these addresses are routed over the fabric.",
    )
    members: list[FabricMember] = Field(
        default_factory=list, max_length=1024, description="The devices on the fabric."
    )

    @field_validator("subnet")
    @classmethod
    def _subnets(cls, v: list[str]) -> list[str]:
        nets = [_private_network(s) for s in v]
        if len({n.version for n in nets}) != len(nets):
            raise ValueError("give at most one IPv4 and one IPv6 subnet")
        return [str(n) for n in nets]

    def networks(self) -> list[IpNetwork]:
        return [ipaddress.ip_network(s) for s in self.subnet]

    def member(self, device: str) -> FabricMember | None:
        return next((m for m in self.members if m.device == device), None)

    def address_of(self, device: str) -> str | None:
        """The device's fabric address (IPv4 first), or None when it is not a member."""
        m = self.member(device)
        return None if m is None else sorted(m.addresses, key=lambda a: ":" in a)[0]


# --------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class WgPeer:
    public_key: str
    allowed_ips: tuple[str, ...]
    endpoint: str | None
    keepalive: int | None
    device: str
    """The member this peer entry is (for people and statuses, not for WireGuard)."""


@dataclass(frozen=True)
class WgConfig:
    """One node's WireGuard configuration for the fabric, without its private key."""

    interface: str
    addresses: tuple[str, ...]
    """The node's own addresses with the subnet's prefix (``10.99.0.1/24``)."""
    listen_port: int
    peers: tuple[WgPeer, ...]
    forwarding: bool
    """The node relays: the kernel must forward between its peers."""

    def text(self, private_key: str) -> str:
        """The ``wg syncconf`` file. ``private_key`` is read at apply time, never stored."""
        values = [private_key, *(v for p in self.peers
                                 for v in (p.public_key, p.endpoint or "", *p.allowed_ips))]
        # Validation already refuses these; the file format is checked here once more, so no
        # value can ever add a line (an option) of its own.
        if any(c in v for v in values for c in "\n\r#"):
            raise ValueError("a fabric value holds a line break or a comment character")
        lines = ["[Interface]", f"PrivateKey = {private_key}", f"ListenPort = {self.listen_port}"]
        for p in self.peers:
            lines += ["", "[Peer]", f"PublicKey = {p.public_key}",
                      f"AllowedIPs = {', '.join(p.allowed_ips)}"]
            if p.endpoint is not None:
                lines.append(f"Endpoint = {p.endpoint}")
            if p.keepalive is not None:
                lines.append(f"PersistentKeepalive = {p.keepalive}")
        return "\n".join(lines) + "\n"


def relay_of(fabric: Fabric) -> FabricMember | None:
    """The relay roaming members reach the others through: the first relay by device name."""
    relays = sorted((m for m in fabric.members if m.relay), key=lambda m: m.device)
    return relays[0] if relays else None


def direct(fabric: Fabric, a: FabricMember, b: FabricMember) -> bool:
    """Do ``a`` and ``b`` peer directly? Yes when neither roams, when one of them relays, or
    when there is no relay. Otherwise both go through the relay: WireGuard needs each side to
    know the other, so the rule is symmetric."""
    if not (a.roaming or b.roaming) or a.relay or b.relay:
        return True
    return relay_of(fabric) is None


def _host(address: str) -> str:
    return f"{address}/{32 if ':' not in address else 128}"


def render(fabric: Fabric, node: str, choice: Mapping[str, int] | None = None
           ) -> WgConfig | None:
    """The configuration of ``node``'s fabric interface, or None when it is not a member.

    AllowedIPs hold fabric host addresses only (never the subnet, never a default route): a
    peer is trusted for its own addresses, and the relay also for the members reached through
    it. ``choice`` picks which of a member's endpoints to dial (``failover``; default the
    first)."""
    me = fabric.member(node)
    if me is None:
        return None
    prefixes = {n.version: n.prefixlen for n in fabric.networks()}
    own = tuple(f"{a}/{prefixes[ipaddress.ip_address(a).version]}" for a in me.addresses)
    relay = relay_of(fabric)
    keepalive = int(me.keepalive.total_seconds()) if me.keepalive is not None else None
    via_relay: list[str] = []
    peers: list[WgPeer] = []
    others = sorted((m for m in fabric.members if m.device != node), key=lambda m: m.device)
    for m in others:
        if not direct(fabric, me, m):
            via_relay += [_host(a) for a in m.addresses]
    for m in others:
        if not direct(fabric, me, m):
            continue
        allowed = [_host(a) for a in m.addresses]
        if relay is not None and m.device == relay.device:
            allowed += via_relay
        pick = (choice or {}).get(m.device, 0)
        endpoint = m.endpoints[pick % len(m.endpoints)] if m.endpoints else None
        peers.append(WgPeer(public_key=m.public_key, allowed_ips=tuple(allowed),
                            endpoint=endpoint, keepalive=keepalive if endpoint else None,
                            device=m.device))
    return WgConfig(interface=fabric.interface, addresses=own, listen_port=me.listen_port,
                    peers=tuple(peers), forwarding=me.relay)


FAILOVER_AFTER = timedelta(seconds=25)
"""Dial a member's next endpoint when the current one gave no handshake for this long (a
handshake is retried every 5 s; 25 s is five tries, and a live peer re-handshakes every 2 min)."""
SESSION = timedelta(seconds=180)
"""WireGuard rejects a session older than this (REJECT_AFTER_TIME)."""


@dataclass(frozen=True)
class EndpointChoice:
    """Which endpoint of each member a node dials, and since when (kept by the node)."""

    index: Mapping[str, int]
    since: Mapping[str, datetime]


def failover(fabric: Fabric, node: str, handshakes: Mapping[str, datetime | None],
             choice: EndpointChoice, now: datetime) -> EndpointChoice:
    """The endpoints to dial now: a member with several endpoints whose current one has given
    no handshake within ``SESSION`` (``handshakes`` by device) for ``FAILOVER_AFTER`` since it
    was chosen moves on to its next endpoint, round the list."""
    me = fabric.member(node)
    index, since = dict(choice.index), dict(choice.since)
    for m in fabric.members:
        if me is None or m.device == node or len(m.endpoints) < 2 or not direct(fabric, me, m):
            continue
        chosen = since.setdefault(m.device, now)
        last = handshakes.get(m.device)
        alive = last is not None and now - last <= SESSION
        if not alive and now - chosen >= FAILOVER_AFTER:
            index[m.device] = (index.get(m.device, 0) + 1) % len(m.endpoints)
            since[m.device] = now
    return EndpointChoice(index=index, since=since)


# --------------------------------------------------------------------------- collision probe


@dataclass(frozen=True)
class Collision:
    subnet: str
    colliding: str
    """What is already on the node: an address with its prefix, or a route."""
    where: str
    """The interface it is on."""

    def message(self) -> str:
        return (f"fabric subnet {self.subnet} collides with {self.colliding} on {self.where}; "
                "nothing was changed: choose a fabric subnet the node does not use")


def collisions(
    subnets: Sequence[str], addresses: Iterable[tuple[str, str]], routes: Iterable[tuple[str, str]],
    interface: str,
) -> list[Collision]:
    """What on the node overlaps the fabric subnets: ``addresses`` are (``addr/prefix``,
    interface), ``routes`` (destination, interface), as read from the node. Whatever is on the
    fabric's own interface is tva's and does not count; a default route does not either."""
    nets = [ipaddress.ip_network(s) for s in subnets]
    found: list[Collision] = []
    for text, dev in [*addresses, *routes]:
        if dev == interface or text in ("default", "0.0.0.0/0", "::/0"):
            continue
        try:
            other = ipaddress.ip_interface(text)
        except ValueError:
            continue
        for net in nets:
            if other.version == net.version and (
                    other.ip in net or other.network.overlaps(net)):
                found.append(Collision(str(net), text, dev))
    return list(dict.fromkeys(found))
