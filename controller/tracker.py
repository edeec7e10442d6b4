"""The fleet's BitTorrent tracker: ``peers_for`` served as ``/announce`` (BEP 3, 7, 23).

Each controller answers the announces of its own Transmission with the fleet holders of the
item, so a re-pin finds its sources with no public tracker and no DHT. This module owns the
whole of it:

- **Who may ask.** Only this node's own Transmission: the announce must carry the node's token
  in its path (``/announce/<token>``, compared in constant time; ``controller.announce``) and
  come from this node's addresses (loopback, or the hosts of the device's ``peer``,
  ``transmission_rpc`` and ``controller_api`` addresses). Anyone else gets a tracker failure,
  no address, and a log line (once per address).
- **What it answers.** The holder index (the planner's ``PeerFinder``, built once per pass on the
  first announce that needs it, so an announce costs a lookup, not a walk over the fleet's
  holdings) with the gates applied: an f2f_only item gets no holder on the public face. IPv4
  holders go in ``peers`` and IPv6 holders in ``peers6`` (compact, BEP 23 and BEP 7); a holder
  whose peer address is a host name is resolved (once per pass).
- An item the fleet does not declare gets an empty peer list, not a failure: a failure would
  put the torrent in a tracker-error state and read like "unregistered" to a reaper.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import socket
import threading
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from fastbencode import bencode  # type: ignore[attr-defined]

from controller.errors import TvaError
from controller.planner import PeerFinder
from schemas.desired import DesiredState, Device
from schemas.observed import NodeStatus

__all__ = [
    "ANNOUNCE_INTERVAL",
    "ANNOUNCE_INTERVAL_FETCHING",
    "ANNOUNCE_INTERVAL_WAITING",
    "Announce",
    "Tracker",
    "answer",
    "encode_peers",
    "failure",
    "parse_announce",
]

log = logging.getLogger("tva.tracker")

ANNOUNCE_INTERVAL = 60
"""Seconds between announces of a copy that is complete."""
ANNOUNCE_INTERVAL_FETCHING = 15
"""A copy still fetching looks again sooner: new holders appear as the fleet converges."""
ANNOUNCE_INTERVAL_WAITING = 5
"""A copy fetching with no holder known yet looks again soon (Transmission 3.00 ignores a
manual reannounce for two minutes after its first answer: the interval is what counts)."""
MIN_INTERVAL = 10
REFUSED = "this tracker serves its own node's Transmission only"

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Announce:
    """The parts of an announce the tracker reads."""

    infohash: str
    """Hex, lower case."""
    left: int | None
    """Bytes the announcing client still needs (None when it did not say)."""


def parse_announce(query: bytes) -> Announce | str:
    """An announce from its raw query string, or why it is malformed.

    ``info_hash`` is 20 raw bytes, percent-encoded: the query is decoded as latin-1 so the bytes
    survive."""
    fields = urllib.parse.parse_qs(query.decode("latin-1"), encoding="latin-1")
    raw = (fields.get("info_hash") or [""])[0].encode("latin-1")
    if len(raw) != 20:
        return "info_hash must be 20 bytes"
    left_text = (fields.get("left") or [""])[0]
    left = int(left_text) if left_text.isdigit() else None
    return Announce(infohash=raw.hex(), left=left)


def encode_peers(peers: Iterable[tuple[Address, int]]) -> tuple[bytes, bytes]:
    """Compact peers: (IPv4, 6 bytes each; IPv6, 18 bytes each), in the order given."""
    v4, v6 = bytearray(), bytearray()
    for address, port in peers:
        (v4 if address.version == 4 else v6).extend(address.packed + port.to_bytes(2, "big"))
    return bytes(v4), bytes(v6)


def failure(reason: str) -> bytes:
    """A tracker failure answer."""
    data: bytes = bencode({b"failure reason": reason.encode()})
    return data


def answer(peers: Sequence[tuple[Address, int]], left: int | None) -> bytes:
    """The answer to a good announce: interval, and the peers in compact form."""
    v4, v6 = encode_peers(peers)
    if not left:
        interval = ANNOUNCE_INTERVAL
    else:
        interval = ANNOUNCE_INTERVAL_FETCHING if peers else ANNOUNCE_INTERVAL_WAITING
    data: dict[bytes, Any] = {b"interval": interval,
                              b"min interval": min(MIN_INTERVAL, interval), b"peers": v4}
    if v6:
        data[b"peers6"] = v6
    encoded: bytes = bencode(data)
    return encoded


def _split_host_port(value: str) -> tuple[str, int] | None:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


class Tracker:
    """The tracker of one node; ``update`` after every plan, ``announce`` from the API thread.

    ``resolve`` turns a host name into addresses (``socket.getaddrinfo`` by default); it is
    called at most once per name and pass.
    """

    def __init__(self, node: str, token: str, *, resolve: Any = None) -> None:
        if not token:
            raise ValueError("a tracker needs its node's token")
        self.node = node
        self.token = token
        self._resolve_name = resolve or _getaddrinfo
        self._lock = threading.Lock()
        self._inputs: tuple[DesiredState, Sequence[NodeStatus], datetime] | None = None
        self._finder: PeerFinder | None = None
        self._names: dict[str, list[Address]] = {}
        self._own: frozenset[Address] = frozenset()
        self._refused: set[str] = set()

    def update(self, desired: DesiredState, statuses: Sequence[NodeStatus], now: datetime) -> None:
        """The newest pass's inputs; the holder index is rebuilt on the next announce."""
        device = desired.devices.get(self.node)
        with self._lock:
            self._inputs = (desired, statuses, now)
            self._finder = None
            self._names = {}
            self._own = frozenset(self._own_addresses(device)) if device else frozenset()

    # -- who may ask ----------------------------------------------------------------------------

    def _own_addresses(self, device: Device) -> set[Address]:
        hosts: list[str] = []
        if device.addresses.peer:
            split = _split_host_port(device.addresses.peer)
            if split is not None:
                hosts.append(split[0])
        for url in (device.addresses.transmission_rpc, device.addresses.controller_api):
            if url:
                host = urlsplit(url).hostname
                if host:
                    hosts.append(host)
        found: set[Address] = set()
        for host in hosts:
            found.update(self._addresses(host))
        return found

    def allowed(self, asking: str | None, token: str | None) -> bool:
        """Is this announce from this node's own Transmission?"""
        if token is None or not hmac.compare_digest(token.encode(), self.token.encode()):
            return False
        try:
            address = ipaddress.ip_address((asking or "").split("%")[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        with self._lock:
            return address.is_loopback or address in self._own

    # -- what it answers ------------------------------------------------------------------------

    def _addresses(self, host: str) -> list[Address]:
        """A peer host as addresses: a literal as it is, a name resolved once per pass."""
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            pass
        if host not in self._names:
            try:
                self._names[host] = sorted(set(self._resolve_name(host)), key=str)
            except OSError:
                self._names[host] = []
        return self._names[host]

    def peers_for(self, infohash: str) -> list[tuple[Address, int]] | None:
        """Fleet holders this node's Transmission may fetch ``infohash`` from, gates applied;
        None when the item is not the fleet's (or no pass has run yet)."""
        with self._lock:
            if self._inputs is None or infohash not in self._inputs[0].items:
                return None
            if self._finder is None:
                self._finder = PeerFinder(*self._inputs)
            finder = self._finder
        try:
            _, rows, _ = finder.peers(infohash, requester=self.node)
        except TvaError:
            return None
        out: list[tuple[Address, int]] = []
        for row in rows:
            split = _split_host_port(row.peer) if row.peer else None
            if split is None:
                continue
            with self._lock:
                addresses = self._addresses(split[0])
            out.extend((address, split[1]) for address in addresses)
        return out

    def announce(self, query: bytes, asking: str | None, token: str | None) -> bytes:
        """The bencoded answer to one announce."""
        if not self.allowed(asking, token):
            with self._lock:
                first = (asking or "") not in self._refused
                if first:
                    if len(self._refused) >= 1024:  # a flood of addresses: start over, bounded
                        self._refused.clear()
                    self._refused.add(asking or "")
            if first:
                log.warning("refused an announce from %s: not this node's Transmission", asking,
                            extra={"event": "announce-refused", "from": asking})
            return failure(REFUSED)
        parsed = parse_announce(query)
        if isinstance(parsed, str):
            return failure(parsed)
        return answer(self.peers_for(parsed.infohash) or [], parsed.left)


def _getaddrinfo(host: str) -> list[Address]:
    out: list[Address] = []
    for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP):
        address = ipaddress.ip_address(info[4][0])
        out.append(address)
    return out
