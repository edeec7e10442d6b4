"""Real ``transmission-daemon`` instances and real torrents, for tests, benchmarks and the demo.

Tests run the real daemon (see ``../shared/LAB.md``): each :class:`TransmissionDaemon` gets its
own config dir, download dir and free ports, runs in the foreground (``-f``) and is stopped with
SIGTERM. Settings follow the lab notes: DHT, LPD, PEX, uTP and port forwarding off, so a daemon
only ever talks to what a test points it at. A test can stop and restart a daemon (the config dir
and its torrents survive), which is how "unreachable" and "ids change across restarts" are shown.

For moving data between daemons, start each with its own ``bind_ip`` inside a network
namespace and point their torrents at a :class:`Tracker` (Transmission 3.00 ignores loopback
peers; LAB.md shows the namespace setup). :func:`make_payload_torrent` makes real torrents from
random bytes with torf; :func:`payload_metainfo` builds thousands of them in memory for the
benchmarks.

The daemon and torrent helpers live in ``controller/lab/transmission.py`` (the demo and the lab
use them too) and are re-exported here; the fake HTTP :class:`Tracker` and the pytest fixtures,
which only add cleanup, are test-only.

The version matrix: a module marked ``pytest.mark.transmission_versions`` runs each test that
starts a daemon (through ``transmission_daemon`` or ``transmission_version``) once per version in
:data:`VERSIONS` (ids ``tr3.00``, ``tr4.1``). Other tests use 3.00. A version this machine
cannot start (no Debian 13 root, no root privileges) skips with the reason, except in CI (the
``CI`` variable set), where it fails: CI runs as root and builds the root in ``scripts/setup``.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastbencode import bencode  # type: ignore[attr-defined]

from controller.lab.transmission import (
    TRANSMISSION_3,
    TRANSMISSION_4,
    VERSIONS,
    TransmissionDaemon,
    free_port,
    make_payload_torrent,
    payload_metainfo,
    unavailable,
)
from controller.waiting import wait_for

__all__ = [
    "TRANSMISSION_3",
    "TRANSMISSION_4",
    "VERSIONS",
    "Tracker",
    "TransmissionDaemon",
    "free_port",
    "make_payload_torrent",
    "payload_metainfo",
    "pytest_generate_tests",
    "require_version",
    "tracker",
    "transmission_daemon",
    "transmission_version",
    "wait_for",
]


def require_version(version: str) -> str:
    """``version`` if this machine can start it; else skip saying why (fail in CI)."""
    why = unavailable(version)
    if why is not None:
        if os.environ.get("CI"):
            pytest.fail(f"Transmission {version} is required in CI: {why}")
        pytest.skip(f"Transmission {version}: {why}")
    return version


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """The version matrix of modules marked ``transmission_versions``."""
    if (metafunc.definition.get_closest_marker("transmission_versions") is not None
            and "transmission_version" in metafunc.fixturenames):
        metafunc.parametrize("transmission_version", VERSIONS, indirect=True,
                             ids=[f"tr{v}" for v in VERSIONS])


class Tracker:
    """A small real HTTP BitTorrent tracker (BEP 3 announce, BEP 23 compact peers) on a thread.

    Each announcing daemon is remembered as a peer (its address and announced port) and gets the
    others back, leaving itself out. ``fail`` makes it answer one infohash with a
    ``failure reason``, as a tracker that forgot a torrent does; ``swarm`` adds fixed seeder and
    leecher counts to the answer. ``/scrape`` is 404, as the lab notes expect. Loopback peers are
    dropped by Transmission 3.00, so moving data needs the namespace setup in LAB.md.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, interval: int = 60) -> None:
        self.interval = interval
        self.failures: dict[str, str] = {}
        self.counts: dict[str, tuple[int, int]] = {}
        self.peers: dict[str, dict[tuple[str, int], bool]] = {}
        self.announces: list[tuple[str, str]] = []  # (infohash, event)
        self.sources: dict[str, set[str]] = {}  # infohash -> addresses that announced it
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def announce_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/announce"

    def fail(self, infohash: str, reason: str) -> None:
        with self._lock:
            self.failures[infohash.lower()] = reason

    def swarm(self, infohash: str, seeders: int, leechers: int) -> None:
        with self._lock:
            self.counts[infohash.lower()] = (seeders, leechers)

    def announced(self, infohash: str) -> int:
        with self._lock:
            return sum(1 for h, _ in self.announces if h == infohash.lower())

    def announcers(self, infohash: str) -> set[str]:
        """Every address that announced ``infohash`` (any event)."""
        with self._lock:
            return set(self.sources.get(infohash.lower(), ()))

    def start(self) -> Tracker:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Tracker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def answer(self, query: dict[str, list[str]], client_ip: str) -> dict[bytes, Any]:
        infohash = query["info_hash"][0].encode("latin-1").hex()
        event = query.get("event", [""])[0]
        with self._lock:
            self.announces.append((infohash, event))
            self.sources.setdefault(infohash, set()).add(client_ip)
            if infohash in self.failures:
                return {b"failure reason": self.failures[infohash].encode()}
            swarm = self.peers.setdefault(infohash, {})
            me = (client_ip, int(query.get("port", ["0"])[0]))
            if event == "stopped":
                swarm.pop(me, None)
            else:
                swarm[me] = query.get("left", ["1"])[0] == "0"
            others = [p for p in swarm if p != me]
            seeders, leechers = self.counts.get(
                infohash, (sum(swarm.values()), len(swarm) - sum(swarm.values()))
            )
        compact = b"".join(socket.inet_aton(ip) + port.to_bytes(2, "big") for ip, port in others)
        return {
            b"interval": self.interval,
            b"complete": seeders,
            b"incomplete": leechers,
            b"peers": compact,
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        tracker = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path != "/announce":
                    self.send_error(404)
                    return
                query = parse_qs(url.query, encoding="latin-1")
                body = bencode(tracker.answer(query, self.client_address[0]))
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                self.send_error(404)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def transmission_version(request: pytest.FixtureRequest) -> str:
    """The Transmission version this test runs against: 3.00, or each of the matrix."""
    return require_version(getattr(request, "param", TRANSMISSION_3))


@pytest.fixture
def transmission_daemon(
    tmp_path: Path, transmission_version: str
) -> Iterator[Callable[..., TransmissionDaemon]]:
    """A factory: ``transmission_daemon(name="a", **options)`` starts a daemon; all stop at teardown.

    Options are those of :class:`TransmissionDaemon` (``bind_ip``, ``username``/``password``,
    ``rpc_whitelist``, extra ``settings``, ``version``, by default ``transmission_version``);
    ``start=False`` returns it unstarted.
    """
    started: list[TransmissionDaemon] = []

    def make(name: str = "tr", *, start: bool = True, **options: Any) -> TransmissionDaemon:
        options.setdefault("version", transmission_version)
        require_version(options["version"])
        daemon = TransmissionDaemon(root=tmp_path / name, **options)
        started.append(daemon)
        return daemon.start() if start else daemon

    yield make
    for daemon in reversed(started):
        daemon.stop()


@pytest.fixture
def tracker() -> Iterator[Tracker]:
    """A running :class:`Tracker` on a free loopback port."""
    with Tracker() as t:
        yield t
