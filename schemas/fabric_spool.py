"""The fabric spool: the one thing the controller hands the root helper for the fabric.

With ``[tunnels] via = "systemd"`` or ``"sudo"`` the controller does not run as root, so it
renders its fabric configuration (``schemas.fabric.render``, from the validated fleet repo) into
a JSON file in the spool directory node.toml names, and the root helper ``tva-tunnel up fabric
tvaN`` applies it. Whoever can write that file (the controller's user) is not root, and what it
holds came from a hostile repo, so the helper validates it again with these rules before it
touches the network (docs/fabric.md#the-privileged-path):

- only the fields below (no free text, nothing wg-quick would run: no ``PostUp``, ``Table``,
  ``DNS``), and no private key: the helper reads that from the node's secrets directory;
- the interface is the one node.toml declares, the subnets are private networks (the fleet
  repo's own rule) inside node.toml's ``[fabric] allow`` when it is set;
- the node's addresses lie in those subnets, and every peer's AllowedIPs are host addresses
  (/32, /128) inside them: the fabric never routes anything else;
- the helper writes the ``wg syncconf`` file itself (``WgConfig.text``), so no value can become
  a line or a key of its own.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Annotated, Literal, Self

from pydantic import Field, StringConstraints, field_validator, model_validator

from schemas.base import Model
from schemas.fabric import _HOSTPORT, PublicKey, WgConfig, WgPeer, _private_network
from schemas.types import Name

__all__ = ["MAX_BYTES", "FabricSpool", "SpoolPeer"]

MAX_BYTES = 1 << 20
"""The largest spool the helper reads (1,024 peers fit many times over)."""

_Interface = Annotated[str, StringConstraints(pattern=r"^tva[0-9]{1,2}$")]


class SpoolPeer(Model):
    """One peer of the node's fabric interface."""

    device: Name
    public_key: PublicKey
    allowed_ips: list[str] = Field(min_length=1, max_length=2048)
    endpoint: Annotated[str, StringConstraints(pattern=_HOSTPORT)] | None = None
    keepalive: int | None = Field(default=None, ge=1, le=65535)

    @field_validator("allowed_ips")
    @classmethod
    def _hosts(cls, v: list[str]) -> list[str]:
        for a in v:
            net = ipaddress.ip_network(a, strict=True)
            if net.prefixlen != net.max_prefixlen:
                raise ValueError(f"AllowedIPs {a}: only host addresses (/32, /128)")
        return v

    @field_validator("endpoint")
    @classmethod
    def _port(cls, v: str | None) -> str | None:
        if v is not None and not 1 <= int(v.rpartition(":")[2]) <= 65535:
            raise ValueError(f"endpoint {v}: the port is outside 1-65535")
        return v


class FabricSpool(Model):
    """``SPOOL/tvaN.json``: the node's rendered fabric configuration, without its private key."""

    version: Literal[1] = 1
    interface: _Interface
    subnet: list[str] = Field(min_length=1, max_length=2)
    addresses: list[str] = Field(min_length=1, max_length=2)
    listen_port: int = Field(ge=1, le=65535)
    forwarding: bool
    peers: list[SpoolPeer] = Field(default_factory=list, max_length=1024)

    @field_validator("subnet")
    @classmethod
    def _subnets(cls, v: list[str]) -> list[str]:
        return [str(_private_network(s)) for s in v]

    @model_validator(mode="after")
    def _inside(self) -> Self:
        nets = [ipaddress.ip_network(s) for s in self.subnet]
        for a in self.addresses:
            iface = ipaddress.ip_interface(a)
            if iface.network not in nets:
                raise ValueError(f"address {a} is not in the fabric subnet "
                                 f"({', '.join(self.subnet)}) with its prefix")
        for p in self.peers:
            for ip in p.allowed_ips:
                host = ipaddress.ip_network(ip)
                if not any(host.version == n.version and host.subnet_of(n)  # type: ignore[arg-type]
                           for n in nets):
                    raise ValueError(f"peer {p.device}: AllowedIPs {ip} is outside the fabric "
                                     f"subnet ({', '.join(self.subnet)})")
        return self

    @classmethod
    def of(cls, subnet: Sequence[str], config: WgConfig) -> FabricSpool:
        """The spool of a configuration rendered from the fleet repo."""
        return cls(interface=config.interface, subnet=list(subnet),
                   addresses=list(config.addresses), listen_port=config.listen_port,
                   forwarding=config.forwarding,
                   peers=[SpoolPeer(device=p.device, public_key=p.public_key,
                                    allowed_ips=list(p.allowed_ips), endpoint=p.endpoint,
                                    keepalive=p.keepalive) for p in config.peers])

    def config(self) -> WgConfig:
        """The configuration to apply (``WgConfig.text`` writes the ``wg syncconf`` file)."""
        return WgConfig(
            interface=self.interface, addresses=tuple(self.addresses),
            listen_port=self.listen_port, forwarding=self.forwarding,
            peers=tuple(WgPeer(public_key=p.public_key, allowed_ips=tuple(p.allowed_ips),
                               endpoint=p.endpoint, keepalive=p.keepalive, device=p.device)
                        for p in self.peers))

    def refusal(self, interface: str | None, allow: Sequence[str]) -> str | None:
        """Why the node's operator (node.toml's ``[fabric]``) does not let the helper apply
        this spool, or None: the interface must be the declared one, and the subnets inside
        ``allow`` when it is set."""
        if interface is None:
            return "node.toml declares no fabric interface ([fabric] interface)"
        if self.interface != interface:
            return f"the spool is for {self.interface}, node.toml declares {interface}"
        if allow:
            nets = [ipaddress.ip_network(a, strict=False) for a in allow]
            for s in self.subnet:
                sub = ipaddress.ip_network(s)
                if not any(sub.version == n.version and sub.subnet_of(n)  # type: ignore[arg-type]
                           for n in nets):
                    return (f"the fabric subnet {s} is not inside node.toml's [fabric] allow "
                            f"({', '.join(allow)})")
        return None
