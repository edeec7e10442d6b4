"""Where tva may connect, and where a resolved secret may go: one policy for every client.

The fleet repo names addresses (a device's ``transmission_rpc``, a peer's ``controller_api``)
and, separately, secret references. Left alone, a commit could point a secret-bearing request
at any host (a leak), or any request at a cloud metadata service (a blind SSRF). So, before a
client connects:

- link-local and metadata addresses (``169.254.0.0/16``, ``fe80::/10``, ``100.100.100.200``,
  ``fd00:ec2::254``, ``0.0.0.0/8``, multicast) are refused for every request;
- a request that carries a secret goes only to an address the operator allows: the node's own
  Transmission password to loopback, a peer's API token to loopback or a private network
  (``egress.peers_on_private_networks``), an indexer's API key to loopback or a private
  network, and each to what ``egress.allow`` lists in the node configuration (host names,
  addresses, networks), which also lifts the first rule; a notification target's URL
  (``controller/clients/notify.py``) only to what ``egress.allow`` lists.

Host names are resolved here and every address they resolve to must pass. (A name that
resolves differently a moment later is not caught: list addresses, not names, where that
matters.)
"""

from __future__ import annotations

import ipaddress
import socket
from enum import StrEnum
from urllib.parse import urlsplit

from controller.errors import PermanentError, UnreachableError
from controller.nodeconfig import current

__all__ = ["BLOCKED", "PRIVATE", "EgressRefused", "Secret", "check"]

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network

BLOCKED: tuple[_Network, ...] = tuple(ipaddress.ip_network(n) for n in (
    "169.254.0.0/16", "fe80::/10", "100.100.100.200/32", "fd00:ec2::254/128", "0.0.0.0/8",
    "224.0.0.0/4", "ff00::/8", "255.255.255.255/32", "::/128",
))
"""Link-local, cloud metadata, unspecified and multicast addresses."""

PRIVATE: tuple[_Network, ...] = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7",
))
"""Private networks (RFC 1918, carrier-grade NAT as Tailscale uses it, unique local IPv6)."""


class Secret(StrEnum):
    """What secret a request carries, which decides where it may go."""

    none = "none"
    transmission = "transmission"
    """The node's own Transmission password: loopback (or what the operator allows)."""
    peer = "peer"
    """A peer controller's API token: loopback, private networks, or what the operator allows."""
    indexer = "indexer"
    """A Torznab indexer's API key: loopback, private networks, or what the operator allows."""
    notify = "notify"
    """A notification target's URL (a webhook token, a topic): only what the operator allows."""


class EgressRefused(PermanentError):
    """The node's egress policy refuses this destination (the message says which rule)."""


def _addresses(host: str, port: int) -> list[_Address]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        raise UnreachableError(f"cannot resolve {host}: {e}") from e
    out: list[_Address] = []
    for info in infos:
        raw = str(info[4][0]).split("%")[0]
        out.append(ipaddress.ip_address(raw))
    return out


def _plain(a: _Address) -> _Address:
    if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped is not None:
        return a.ipv4_mapped
    return a


def _in(a: _Address, networks: tuple[_Network, ...] | list[_Network]) -> bool:
    return any(a.version == n.version and a in n for n in networks)


def check(url: str, secret: Secret = Secret.none) -> None:
    """Raise ``EgressRefused`` unless the node's policy lets a request carrying ``secret`` go
    to ``url``; ``UnreachableError`` when its host name does not resolve."""
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        raise EgressRefused(f"{url!r} has no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as e:
        raise EgressRefused(f"{url!r} has an invalid port") from e
    policy = current().egress
    names = {e.lower().rstrip(".") for e in policy.allow if "/" not in e}
    if host.lower().rstrip(".") in names:
        return
    allowed: list[_Network] = [ipaddress.ip_network(e, strict=False) for e in policy.allow
                               if "/" in e]
    for entry in names:
        try:
            allowed.append(ipaddress.ip_network(entry))
        except ValueError:
            continue
    for raw in _addresses(host, port):
        a = _plain(raw)
        if _in(a, allowed):
            continue
        if _in(a, BLOCKED):
            raise EgressRefused(
                f"{host} ({a}) is a link-local or metadata address; tva does not connect there "
                "unless the node's configuration lists it in egress.allow"
            )
        if secret is Secret.none or (a.is_loopback and secret is not Secret.notify):
            continue
        if secret is Secret.peer and policy.peers_on_private_networks and _in(a, PRIVATE):
            continue
        if secret is Secret.notify:
            raise EgressRefused(
                f"{host} ({a}) is not a notification destination this node allows: list it in "
                "egress.allow in the node's configuration"
            )
        if secret is Secret.indexer and _in(a, PRIVATE):
            continue  # Prowlarr and Jackett usually run at home, next to the acquirer
        where = ("loopback" if secret is Secret.transmission
                 else "loopback or private networks")
        raise EgressRefused(
            f"{host} ({a}) is not where this node sends its {secret.value} secret ({where}, or "
            "what the node's configuration lists in egress.allow)"
        )
