"""The fleet's BitTorrent tracker: ``peers_for`` served as ``/announce`` (BEP 3, BEP 23).

Each controller answers the announces of its own Transmission with the fleet holders of the
item, so a re-pin finds its sources with no public tracker and no DHT. This module owns the
whole of it: parsing an announce (the raw 20-byte ``info_hash`` kept as bytes), the holder
index (the planner's ``PeerFinder``, built once per pass on the first announce that needs it,
so an announce costs a lookup, not a walk over the fleet's holdings), the gates (through the
planner: an f2f_only item gets no holder on the public face), and the bencoded answer with
compact peers.

An item the fleet does not declare gets an empty peer list, not a failure: a failure would put
the torrent in a tracker-error state and read like "unregistered" to a reaper.
"""

from __future__ import annotations

import ipaddress
import threading
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastbencode import bencode  # type: ignore[attr-defined]

from controller.errors import TvaError
from controller.planner import PeerFinder
from schemas.desired import DesiredState
from schemas.observed import NodeStatus

__all__ = [
    "ANNOUNCE_INTERVAL",
    "ANNOUNCE_INTERVAL_FETCHING",
    "Announce",
    "Tracker",
    "encode_peers",
    "failure",
    "parse_announce",
]

ANNOUNCE_INTERVAL = 60
"""Seconds between announces of a copy that is complete."""
ANNOUNCE_INTERVAL_FETCHING = 15
"""A copy still fetching looks again sooner: new holders appear as the fleet converges."""
MIN_INTERVAL = 10


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


def encode_peers(peers: Sequence[tuple[str, int]]) -> bytes:
    """Compact IPv4 peers (BEP 23): 4 address bytes and 2 port bytes each; others are left out."""
    out = bytearray()
    for host, port in peers:
        try:
            address = ipaddress.IPv4Address(host)
        except ValueError:
            continue
        out += address.packed + port.to_bytes(2, "big")
    return bytes(out)


def failure(reason: str) -> bytes:
    """A tracker failure answer."""
    data: bytes = bencode({b"failure reason": reason.encode()})
    return data


def answer(peers: Sequence[tuple[str, int]], left: int | None) -> bytes:
    interval = ANNOUNCE_INTERVAL if not left else ANNOUNCE_INTERVAL_FETCHING
    data: dict[bytes, Any] = {b"interval": interval, b"min interval": MIN_INTERVAL,
                              b"peers": encode_peers(peers)}
    encoded: bytes = bencode(data)
    return encoded


class Tracker:
    """The tracker of one node; ``update`` after every plan, ``announce`` from the API thread."""

    def __init__(self, node: str) -> None:
        self.node = node
        self._lock = threading.Lock()
        self._inputs: tuple[DesiredState, Sequence[NodeStatus], datetime] | None = None
        self._finder: PeerFinder | None = None

    def update(self, desired: DesiredState, statuses: Sequence[NodeStatus], now: datetime) -> None:
        """The newest pass's inputs; the holder index is rebuilt on the next announce."""
        with self._lock:
            self._inputs = (desired, statuses, now)
            self._finder = None

    def peers_for(self, infohash: str) -> list[tuple[str, int]] | None:
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
        out: list[tuple[str, int]] = []
        for row in rows:
            if row.peer is None:
                continue
            host, _, port = row.peer.rpartition(":")
            out.append((host.strip("[]"), int(port)))
        return out

    def announce(self, query: bytes, asking: str | None) -> bytes:
        """The bencoded answer to one announce."""
        parsed = parse_announce(query)
        if isinstance(parsed, str):
            return failure(parsed)
        return answer(self.peers_for(parsed.infohash) or [], parsed.left)
