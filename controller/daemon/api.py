"""The controller's HTTP API (FastAPI, served by uvicorn in a thread of the daemon).

- ``GET /healthz`` (open): liveness.
- ``GET /announce/{token}`` (BitTorrent HTTP tracker protocol): the node's tracker
  (``controller.tracker``) answers its own Transmission only (the node's token in the path, one
  of the node's addresses as the source) with the fleet holders of an item, gates applied;
  anyone else gets a tracker failure and no address. Transmission cannot send a header, so the
  token travels in the URL, which only this node's Transmission is given.
- Everything else needs ``Authorization: Bearer <token>``, the device's ``api_token`` given by
  reference: ``/metrics``, ``/v1/status``, ``/v1/plan``, ``/v1/holds/{infohash}`` (live
  confirmation before a peer drops a copy), ``/v1/torrents/{infohash}.torrent`` (metainfo of a
  held item), ``/v1/webseed/{infohash}?lanes=N`` (the URLs of this node's web seed for an item it
  holds complete, N lanes: ``controller.seeder``), ``POST /v1/webhook`` (a git push: look again now).
- ``GET|HEAD /v1/seed/{infohash}/{capability}/{file}`` (the capability in the path, handed out
  by ``/v1/webseed``): the file of a complete copy, with ranges, for a fetching node's
  Transmission; one answer carries at most ``seeder.MAX_RANGE`` bytes (``seeder.capped_range``).

The token is asked for on every request (``token`` is a callable): the daemon resolves the
reference again each pass, so a rotated or revoked token takes effect without a restart.

Anyone who can reach the port can open connections, so the server bounds them
(``ConnectionLimits``): beyond ``max_connections`` a new connection is closed as soon as it is
accepted, a connection gets ``header_timeout`` seconds to send each request's headers, idle
keep-alive connections close after ``keep_alive`` seconds, and headers are capped in size. The
daemon's descriptors (and so its passes) are never exhausted by a flood of idle sockets.
With a certificate and key the API is served over TLS (for an ``https://`` controller_api).
"""

from __future__ import annotations

import asyncio
import hmac
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import FileResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from uvicorn.protocols.http.h11_impl import H11Protocol

from controller.daemon.metrics import Metrics
from controller.seeder import capped_range

__all__ = ["ApiBackend", "ApiServer", "ConnectionLimits", "TlsFiles", "create_app"]


class ApiBackend(Protocol):
    """What the API needs from the daemon; every method is cheap (reads cached state)."""

    def status_json(self) -> dict[str, Any] | None: ...
    def plan_json(self) -> dict[str, Any] | None: ...
    def announce(self, query: bytes, asking: str | None, token: str | None) -> bytes: ...
    def holds(self, infohash: str) -> bool | None: ...
    def metainfo(self, infohash: str) -> bytes | None: ...
    def webseed_urls(self, infohash: str, lanes: int) -> list[str] | None: ...
    def seed_file(self, infohash: str, capability: str, relative: str) -> str | None: ...
    def wake(self, reason: str) -> None: ...


def create_app(backend: ApiBackend, token: Callable[[], str | None], metrics: Metrics) -> FastAPI:
    """The app; ``token()`` is the current token (None: the API is closed but for the open
    endpoints)."""
    app = FastAPI(title="tva controller", docs_url=None, redoc_url=None, openapi_url=None)

    def require_token(request: Request) -> None:
        expected = token()
        if expected is None:
            raise HTTPException(403, "this device has no api_token configured; the API is closed")
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.encode(), expected.encode()):
            raise HTTPException(401, "missing or wrong token", headers={"WWW-Authenticate": "Bearer"})

    auth = [Depends(require_token)]

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics", dependencies=auth)
    def prom() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/status", dependencies=auth)
    def status() -> dict[str, Any]:
        data = backend.status_json()
        if data is None:
            raise HTTPException(503, "no status yet: the first pass has not finished")
        return data

    @app.get("/v1/plan", dependencies=auth)
    def plan() -> dict[str, Any]:
        data = backend.plan_json()
        if data is None:
            raise HTTPException(503, "no plan yet: the first pass has not finished")
        return data

    @app.get("/v1/holds/{infohash}", dependencies=auth)
    def holds(infohash: str) -> dict[str, Any]:
        ih = _infohash(infohash)
        held = backend.holds(ih)
        if held is None:
            raise HTTPException(503, "cannot confirm now: Transmission is unreachable")
        return {"infohash": ih, "complete": held}

    @app.get("/v1/torrents/{name}", dependencies=auth)
    def torrent(name: str) -> Response:
        if not name.endswith(".torrent"):
            raise HTTPException(404)
        data = backend.metainfo(_infohash(name.removesuffix(".torrent")))
        if data is None:
            raise HTTPException(404, "this node has no metainfo for that item")
        return Response(data, media_type="application/x-bittorrent")

    @app.get("/v1/webseed/{infohash}", dependencies=auth)
    def webseed(infohash: str, lanes: int = 1) -> dict[str, Any]:
        urls = backend.webseed_urls(_infohash(infohash), lanes)
        if urls is None:
            raise HTTPException(404, "this node holds no complete copy of that item to serve")
        return {"url": urls[0], "urls": urls}

    @app.api_route("/v1/seed/{infohash}/{capability}/{relative:path}", methods=["GET", "HEAD"])
    def seed(request: Request, infohash: str, capability: str, relative: str) -> Response:
        path = backend.seed_file(_infohash(infohash), capability, relative)
        if path is None:
            raise HTTPException(404)
        asked = request.headers.get("range")
        capped = capped_range(asked)
        if capped != asked:  # FileResponse reads the range from the request's headers
            request.scope["headers"] = [(k, v) for k, v in request.scope["headers"]
                                        if k != b"range"] + [(b"range", str(capped).encode())]
        return _SeedFile(path, media_type="application/octet-stream")

    @app.post("/v1/webhook", dependencies=auth)
    def webhook() -> dict[str, str]:
        backend.wake("webhook")
        return {"status": "queued"}

    def tracker(request: Request, token: str | None) -> Response:
        query: bytes = request.scope.get("query_string", b"")
        asking = request.client.host if request.client else None
        return Response(backend.announce(query, asking, token), media_type="text/plain")

    @app.get("/announce")
    def announce_without_token(request: Request) -> Response:
        return tracker(request, None)

    @app.get("/announce/{token}")
    def announce(request: Request, token: str) -> Response:
        return tracker(request, token)

    @app.get("/scrape")
    def scrape() -> Response:
        return Response(status_code=404)

    return app


def _infohash(value: str) -> str:
    v = value.lower()
    if len(v) != 40 or any(c not in "0123456789abcdef" for c in v):
        raise HTTPException(400, "expected a 40-digit hex info-hash")
    return v


@dataclass(frozen=True)
class ConnectionLimits:
    """Bounds on what one client (or many) can hold open; see the module docstring."""

    max_connections: int = 128
    header_timeout: float = 10.0
    keep_alive: float = 5.0
    max_header_bytes: int = 16 * 1024


@dataclass(frozen=True)
class TlsFiles:
    """A certificate (chain) and its private key, from the node's own configuration."""

    cert: str
    key: str


def _bounded_protocol(limits: ConnectionLimits) -> type[H11Protocol]:
    class Bounded(H11Protocol):
        """uvicorn's h11 protocol, closing connections over the limit at once and those that
        do not send a request's headers in time (uvicorn bounds neither)."""

        _header_timer: asyncio.TimerHandle | None = None
        _refused = False

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            if len(self.connections) >= limits.max_connections:
                self._refused = True
                transport.abort()  # frees the descriptor now; the client sees a reset
                return
            super().connection_made(transport)
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._refused:
                return  # never counted, nothing to end
            if self._header_timer is not None:
                self._header_timer.cancel()
            super().connection_lost(exc)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()

        def _arm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
            self._header_timer = self.loop.call_later(limits.header_timeout, self._headers_due)

        def _headers_due(self) -> None:
            self._header_timer = None
            if self.cycle is None or self.cycle.response_complete:  # no request under way
                self.transport.abort()

    return Bounded


class _SeedFile(FileResponse):
    """A web seed's file: read in 1 MiB chunks (Starlette's 64 KiB costs a thread hop per
    chunk; a re-pin asks for whole pieces of 4 or 16 MiB)."""

    chunk_size = 1 << 20


@dataclass
class ApiServer:
    """Serves the app on ``host:port`` in a background thread; ``stop()`` shuts it down."""

    app: FastAPI
    host: str
    port: int
    limits: ConnectionLimits = field(default_factory=ConnectionLimits)
    tls: TlsFiles | None = None

    def start(self) -> None:
        config = uvicorn.Config(
            self.app, host=self.host, port=self.port, log_level="warning", access_log=False,
            lifespan="off", http=_bounded_protocol(self.limits),
            limit_concurrency=self.limits.max_connections + 1,  # the cap is ours (connection_made)
            # asyncio accepts up to ``backlog`` sockets in one burst before any protocol runs:
            # a small backlog keeps that burst (and its descriptors) small too.
            backlog=self.limits.max_connections,
            timeout_keep_alive=int(max(self.limits.keep_alive, 1)),
            h11_max_incomplete_event_size=self.limits.max_header_bytes,
            ssl_certfile=self.tls.cert if self.tls else None,
            ssl_keyfile=self.tls.key if self.tls else None,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="tva-api", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
