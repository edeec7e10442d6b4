"""A holder serves its complete copies over HTTP as BitTorrent web seeds (BEP 19).

Measured on Transmission 3.00 (docs/performance.md#re-pins): between two fleet nodes the peer
path levels off near 8 MB/s (511 queued 16 KiB blocks per peer and second) and waits about
10 s for the first unchoke; from a web seed the first byte arrives about 2 s after the add and
a 200 MiB item with 16 MiB pieces moves at about 250 MB/s. So a node fetching a re-pin adds the
torrent with each live holder's web seed URL in its ``url-list`` and keeps the peer path as a
fallback. Transmission hash-checks every piece, whatever it came from.

Who may fetch: the URL carries a capability, an HMAC of the info-hash under the holder's own
secret (its tracker token). A fetching node gets the URL from the holder's API
(``GET /v1/webseed/{infohash}``, which needs the holder's API token); the holder serves only an
item the fleet declares, only from a copy its Transmission reports complete and error-free, and
only the files that torrent lists, inside its download directory (no ``..``, no symlink out).
Ranges and the file transfer are Starlette's ``FileResponse``.

Transmission 3.00 deadlocks when a web seed gets too far ahead of it (measured:
docs/performance.md#re-pins): its web thread hands every 16 KiB block to the event thread
through a 64 KiB pipe (about 3,850 messages, 60 MiB of blocks) while holding the session lock,
and blocks when the pipe is full; the event thread takes the session lock every half second, so
the daemon hangs, RPC and all. A fast seed hung a 1 GiB re-pin with 16 MiB pieces (4 pieces in
flight: 64 MiB) in three runs out of three. A web seed asks again only from the event thread,
after it took the previous answer, so the bytes that can pile up are bounded by what is in
flight: at most :data:`MAX_RANGE` per answer (``capped_range``: asked for a 16 MiB piece, the
holder sends the first 4 MiB with a ``Content-Range`` saying so, and Transmission, 3.00 and 4.1
alike, asks for the rest), four requests per web seed URL, and at most :data:`WEBSEEDS_PER_ADD`
URLs in one add: 3 x 4 x 4 MiB = 48 MiB (six lanes, 96 MiB in flight, hung 3.00 in the
benchmark).

Transmission 4.0 and later (RPC 17 and up) hand the blocks over differently (4.1's
``webseed.cc``: ``run_in_session_thread`` appends to a list under a short mutex and wakes the
event loop; no pipe, nothing that blocks while holding the session lock), and ask for at most
64 blocks per free request slot (4 MiB), so the cap does not bind them. A fetching node whose
Transmission is known to be 4.x therefore asks for up to :data:`MAX_LANES` lanes
(``lane_budget``); one whose version is 3.00 or unknown keeps :data:`WEBSEEDS_PER_ADD`. The
holder serves whatever lanes are asked, up to :data:`MAX_LANES`: the bound is the fetching
node's own, for its own Transmission.

Within that bound the speed follows the requests in flight (3.00 wakes its web thread up to
200 ms after a request is queued), so a holder hands out several URLs for one item, *lanes*,
each with its own capability: one holder fills all three lanes, two holders share them. A small
item gets fewer (one per :data:`LANE_BYTES`): with more requests in flight than the item has
pieces left, Transmission asks several web seeds for the same blocks (4.1 fetched a 6 MiB item
twice over from three lanes).

Which copies are complete is looked up in Transmission once per pass and item, not once per
range request: the cache is cleared every pass (``refresh``) and an entry lives at most
:data:`LOOKUP_SECONDS`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import posixpath
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from controller.clients.transmission import TransmissionClient
from controller.errors import TvaError

__all__ = ["LANE_BYTES", "LOOKUP_SECONDS", "MAX_LANES", "MAX_RANGE", "QUEUED_HANDOFF_RPC",
           "SEED_PATH", "WEBSEEDS_PER_ADD", "SeedFile", "Seeder", "capability", "capped_range",
           "lane_budget", "lanes_per_holder"]

SEED_PATH = "/v1/seed"
LOCAL_ERROR = 3
MAX_RANGE = 4 << 20
"""The most bytes one answer of a web seed carries (see the module docstring)."""
WEBSEEDS_PER_ADD = 3
"""Web seed URLs (lanes, over all holders) in one add to Transmission 3.00 at most."""
MAX_LANES = 6
"""Web seed URLs in one add to Transmission 4 at most; also the most lanes a holder serves."""
QUEUED_HANDOFF_RPC = 17
"""The first RPC version (Transmission 4.0) whose web thread queues blocks instead of writing
them to a pipe (see the module docstring)."""
LANE_BYTES = 64 << 20
"""A holder hands out one lane per this many bytes of the item (at least one)."""
LOOKUP_SECONDS = 5.0
"""How long a lookup of a copy in Transmission is reused at most (a pass clears them sooner)."""

_RANGE = re.compile(r"bytes=(\d{1,19})-(\d{0,19})")


def capped_range(header: str | None, limit: int | None = None) -> str | None:
    """``header`` (an HTTP ``Range``) asking for at most ``limit`` bytes (default
    :data:`MAX_RANGE`): a single range ``bytes=A-B`` or ``bytes=A-`` longer than that becomes
    ``bytes=A-(A+limit-1)``; anything else (no range, several, a suffix, malformed) is returned
    unchanged, for the file response to answer as it would."""
    m = _RANGE.fullmatch(header.strip()) if header else None
    if m is None:
        return header
    limit = MAX_RANGE if limit is None else limit
    start = int(m[1])
    end = int(m[2]) if m[2] else None
    if end is not None and (end < start or end - start < limit):
        return header
    return f"bytes={start}-{start + limit - 1}"


def capability(secret: str, infohash: str, lane: int = 0) -> str:
    """The unguessable part of an item's web seed URL (lane ``lane``) on this holder."""
    message = b"webseed:" + infohash.encode() + (f":{lane}".encode() if lane else b"")
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:40]


def lane_budget(rpc_version: int | None) -> int:
    """Web seed URLs one add may carry for a fetching Transmission of ``rpc_version`` (None:
    not known): :data:`WEBSEEDS_PER_ADD` unless it is known to queue its blocks."""
    if rpc_version is not None and rpc_version >= QUEUED_HANDOFF_RPC:
        return MAX_LANES
    return WEBSEEDS_PER_ADD


def lanes_per_holder(holders: int, budget: int = WEBSEEDS_PER_ADD) -> list[int]:
    """How many web seed URLs to ask of each of ``holders`` holders (in order) so that an add
    carries at most ``budget``: shared out evenly, the first holders first; 0 past the budget."""
    if holders <= 0:
        return []
    return [budget // holders + (1 if i < budget % holders else 0) for i in range(holders)]


_Copy = tuple[str, frozenset[str], int]
"""A complete copy: its download directory, the names of its files, and their total size."""


@dataclass(frozen=True)
class SeedFile:
    path: Path
    """The file on disk."""


class Seeder:
    """The web seeds of one holder: URLs to hand out, and files to serve."""

    def __init__(self, secret: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.secret = secret
        self.client: TransmissionClient | None = None
        """The node's Transmission (None: it runs none, nothing is served)."""
        self.items: frozenset[str] = frozenset()
        """Info-hashes the fleet declares (set every pass)."""
        self.clock = clock
        self._found: dict[str, tuple[float, _Copy | None]] = {}
        self._generation = 0
        self._lock = threading.Lock()

    def refresh(self, client: TransmissionClient | None, items: frozenset[str]) -> None:
        """A new pass: this node's Transmission and the declared items; lookups start afresh."""
        with self._lock:
            self.client, self.items = client, items
            self._found.clear()
            self._generation += 1

    def urls(self, api_base: str, infohash: str, lanes: int = 1) -> list[str] | None:
        """The web seed URLs of ``infohash`` at ``api_base`` (this node's controller API):
        ``lanes`` of them, at most :data:`MAX_LANES` and one per :data:`LANE_BYTES` of the item;
        None when this node has no complete copy to serve."""
        copy = self._torrent(infohash, fresh=True)
        if copy is None:
            return None
        base = f"{api_base.rstrip('/')}{SEED_PATH}/{infohash}"
        served = max(1, min(lanes, MAX_LANES, copy[2] // LANE_BYTES))
        return [f"{base}/{capability(self.secret, infohash, lane)}/" for lane in range(served)]

    def open(self, infohash: str, token: str, relative: str) -> SeedFile | None:
        """The file ``relative`` (as the torrent names it) of ``infohash``, if ``token`` is its
        capability and the copy is complete; else None."""
        given = token.encode()
        if not any(hmac.compare_digest(given, capability(self.secret, infohash, lane).encode())
                   for lane in range(MAX_LANES)):
            return None
        torrent = self._torrent(infohash)
        if torrent is None:
            return None
        directory, names, _ = torrent
        wanted = posixpath.normpath(relative)
        if wanted not in names or wanted.startswith(("/", "..")):
            return None
        root = os.path.realpath(directory)
        path = os.path.realpath(os.path.join(root, wanted))
        if not path.startswith(root + os.sep) or not os.path.isfile(path):
            return None
        return SeedFile(Path(path))

    def _torrent(self, infohash: str, *, fresh: bool = False) -> _Copy | None:
        """(download dir, file names, size) of a complete, error-free copy of a declared item,
        from this pass's lookup when there is one (``fresh``: ask Transmission now)."""
        with self._lock:
            client, declared = self.client, infohash in self.items
            cached, generation = self._found.get(infohash), self._generation
        if client is None or not declared:
            return None
        now = self.clock()
        if cached is not None and not fresh and now - cached[0] < LOOKUP_SECONDS:
            return cached[1]
        found = self._lookup(client, infohash)
        with self._lock:
            if self._generation == generation:  # not a lookup from before a refresh
                self._found[infohash] = (now, found)
        return found

    @staticmethod
    def _lookup(client: TransmissionClient, infohash: str) -> _Copy | None:
        try:
            found = client.read(lambda c: c.get_torrents(
                [infohash], arguments=["hashString", "percentDone", "error", "downloadDir",
                                       "files"]))
        except TvaError:
            return None
        if not found:
            return None
        fields = found[0].fields
        if fields.get("percentDone") != 1 or fields.get("error") == LOCAL_ERROR:
            return None
        files = fields.get("files") or []
        names = frozenset(str(f.get("name", "")) for f in files)
        size = sum(int(f.get("length") or 0) for f in files)
        return str(fields.get("downloadDir") or ""), names, size
