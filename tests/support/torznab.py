"""A fake Torznab indexer: a real HTTP server on a real socket speaking the protocol Prowlarr
and Jackett speak (``t=caps``, ``t=search``, ``t=tvsearch``, ``t=movie``; RSS with
``torznab:attr`` seeders, size, infohash; enclosure URLs it serves itself).

It stands in for an indexer only because none can run here. Releases are registered with
``add`` (a ``.torrent`` it then serves at ``/dl/<n>.torrent``); ``answer`` replaces the next
answers with raw bytes (malformed, huge or hostile XML); ``throttle`` answers HTTP 429 with a
Retry-After. ``requests`` records what was asked (the API key included, so tests can check it
arrived and was never logged elsewhere).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape, quoteattr

__all__ = ["FakeIndexer", "FakeRelease"]


@dataclass
class FakeRelease:
    title: str
    torrent: bytes | None
    infohash: str
    size: int
    seeders: int = 5
    published: datetime = field(default_factory=lambda: datetime(2026, 11, 1, tzinfo=UTC))
    categories: tuple[int, ...] = (2000,)
    modes: tuple[str, ...] = ("search", "movie", "tvsearch")
    season: int | None = None
    episode: int | None = None
    claimed_infohash: str | None = None
    """The info-hash the feed announces (default: the real one); a lie for the mismatch test."""


class FakeIndexer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, api_key: str | None = None) -> None:
        self.api_key = api_key
        self.modes = {"tv-search", "movie-search"}
        """The search modes ``t=caps`` offers besides plain search."""
        self.releases: list[FakeRelease] = []
        self.requests: list[dict[str, str]] = []
        self.raw: list[tuple[int, bytes, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/api"

    @property
    def base(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def add(self, release: FakeRelease) -> FakeRelease:
        with self._lock:
            self.releases.append(release)
        return release

    def answer(self, body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> None:
        """Answer the next API request with ``body`` (queued, one per request)."""
        with self._lock:
            self.raw.append((status, body, headers or {}))

    def throttle(self, retry_after: str = "120") -> None:
        self.answer(b"slow down", 429, {"Retry-After": retry_after})

    def searches(self) -> list[dict[str, str]]:
        with self._lock:
            return [r for r in self.requests if r.get("t") not in (None, "caps", "download")]

    def start(self) -> FakeIndexer:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- the protocol --------------------------------------------------------------------------

    def caps(self) -> bytes:
        def offered(mode: str) -> bytes:
            return b"yes" if mode in self.modes else b"no"

        return (b'<?xml version="1.0" encoding="UTF-8"?><caps>'
                b'<server title="fake indexer"/><limits max="100" default="50"/>'
                b'<searching><search available="yes" supportedParams="q"/>'
                b'<tv-search available="' + offered("tv-search") + b'" supportedParams="q,season,ep"/>'
                b'<movie-search available="' + offered("movie-search") + b'" supportedParams="q"/>'
                b'</searching><categories><category id="2000" name="Movies"/>'
                b'<category id="5000" name="TV"/></categories></caps>')

    def feed(self, query: dict[str, str]) -> bytes:
        mode = query.get("t", "search")
        words = query.get("q", "").casefold().split()
        cats = {int(c) for c in query.get("cat", "").split(",") if c.isdigit()}
        items = []
        with self._lock:
            releases = list(enumerate(self.releases))
        for n, r in releases:
            if mode not in r.modes or not all(w in r.title.casefold() for w in words):
                continue
            if cats and not cats & set(r.categories):
                continue
            if mode == "tvsearch" and "ep" in query and r.episode is not None \
                    and str(r.episode) != query["ep"]:
                continue
            link = f"{self.base}/dl/{n}.torrent"
            attrs = "".join(f'<torznab:attr name="category" value="{c}"/>' for c in r.categories)
            attrs += (f'<torznab:attr name="seeders" value="{r.seeders}"/>'
                      f'<torznab:attr name="size" value="{r.size}"/>'
                      f'<torznab:attr name="infohash" value="{r.claimed_infohash or r.infohash}"/>')
            items.append(
                f"<item><title>{escape(r.title)}</title><guid>{escape(link)}</guid>"
                f"<link>{escape(link)}</link><size>{r.size}</size>"
                f"<pubDate>{format_datetime(r.published)}</pubDate>"
                f"<enclosure url={quoteattr(link)} length=\"{r.size}\" "
                f"type=\"application/x-bittorrent\"/>{attrs}</item>")
        return ('<?xml version="1.0" encoding="UTF-8"?>'
                '<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom" '
                'xmlns:torznab="http://torznab.com/schemas/2015/feed"><channel>'
                "<title>fake indexer</title>" + "".join(items) + "</channel></rss>").encode()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def _send(self, status: int, body: bytes, ctype: str, headers: dict[str, str]) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                if parts.path.startswith("/dl/"):
                    with fake._lock:
                        fake.requests.append({"t": "download", "path": parts.path})
                        n = parts.path.removeprefix("/dl/").removesuffix(".torrent")
                        r = fake.releases[int(n)] if n.isdigit() and int(n) < len(fake.releases) else None
                    if r is None or r.torrent is None:
                        self._send(404, b"no such release", "text/plain", {})
                    else:
                        self._send(200, r.torrent, "application/x-bittorrent", {})
                    return
                with fake._lock:
                    fake.requests.append(query)
                    raw = fake.raw.pop(0) if fake.raw else None
                if raw is not None:
                    self._send(raw[0], raw[1], "application/xml", raw[2])
                    return
                if fake.api_key is not None and query.get("apikey") != fake.api_key:
                    self._send(200, b'<?xml version="1.0"?><error code="100" '
                               b'description="Invalid API Key"/>', "application/xml", {})
                    return
                if query.get("t") == "caps":
                    self._send(200, fake.caps(), "application/xml", {})
                else:
                    self._send(200, fake.feed(query), "application/rss+xml", {})

        return Handler
