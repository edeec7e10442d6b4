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
"""

from __future__ import annotations

import hashlib
import hmac
import os
import posixpath
from dataclasses import dataclass
from pathlib import Path

from controller.clients.transmission import TransmissionClient
from controller.errors import TvaError

__all__ = ["SEED_PATH", "SeedFile", "Seeder", "capability"]

SEED_PATH = "/v1/seed"
LOCAL_ERROR = 3


def capability(secret: str, infohash: str) -> str:
    """The unguessable part of an item's web seed URL on this holder."""
    return hmac.new(secret.encode(), b"webseed:" + infohash.encode(), hashlib.sha256).hexdigest()[:40]


@dataclass(frozen=True)
class SeedFile:
    path: Path
    """The file on disk."""


class Seeder:
    """The web seeds of one holder: URLs to hand out, and files to serve."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.client: TransmissionClient | None = None
        """The node's Transmission (None: it runs none, nothing is served)."""
        self.items: frozenset[str] = frozenset()
        """Info-hashes the fleet declares (set every pass)."""

    def url(self, api_base: str, infohash: str) -> str | None:
        """The web seed URL of ``infohash`` at ``api_base`` (this node's controller API), or
        None when this node has no complete copy to serve."""
        if self._torrent(infohash) is None:
            return None
        return f"{api_base.rstrip('/')}{SEED_PATH}/{infohash}/{capability(self.secret, infohash)}/"

    def open(self, infohash: str, token: str, relative: str) -> SeedFile | None:
        """The file ``relative`` (as the torrent names it) of ``infohash``, if ``token`` is its
        capability and the copy is complete; else None."""
        if not hmac.compare_digest(token.encode(), capability(self.secret, infohash).encode()):
            return None
        torrent = self._torrent(infohash)
        if torrent is None:
            return None
        directory, names = torrent
        wanted = posixpath.normpath(relative)
        if wanted not in names or wanted.startswith(("/", "..")):
            return None
        root = os.path.realpath(directory)
        path = os.path.realpath(os.path.join(root, wanted))
        if not path.startswith(root + os.sep) or not os.path.isfile(path):
            return None
        return SeedFile(Path(path))

    def _torrent(self, infohash: str) -> tuple[str, set[str]] | None:
        """(download dir, file names) of a complete, error-free copy of a declared item."""
        if self.client is None or infohash not in self.items:
            return None
        try:
            found = self.client.read(lambda c: c.get_torrents(
                [infohash], arguments=["hashString", "percentDone", "error", "downloadDir",
                                       "files"]))
        except TvaError:
            return None
        if not found:
            return None
        fields = found[0].fields
        if fields.get("percentDone") != 1 or fields.get("error") == LOCAL_ERROR:
            return None
        names = {str(f.get("name", "")) for f in fields.get("files") or []}
        return str(fields.get("downloadDir") or ""), names
