"""Local HTTP servers that speak the Discord webhook and ntfy publishing protocols.

Discord and ntfy.sh cannot be reached from here, so, as the house rules allow for outside
services, each is a fake that speaks the real protocol over a real socket: Discord's
``POST /api/webhooks/{id}/{token}`` with a JSON body (``content``, ``username``...) answered
``204``, and ntfy's ``POST /`` with a JSON body (``topic``, ``title``, ``message``) answered
``200`` with the message as JSON. A test can make either answer with errors first
(``fail_next``): ``429`` with Discord's rate-limit headers, or ``500``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

__all__ = ["FakeService", "Request", "discord_server", "ntfy_server"]


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeService:
    kind: str
    """discord or ntfy."""
    server: ThreadingHTTPServer
    requests: list[Request] = field(default_factory=list)
    """Every request, the refused ones included."""
    failures: list[int] = field(default_factory=list)
    """Status codes to answer, in order, before answering normally again."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    redirect_to: str | None = None
    """Answer every request with a 307 to this URL (a service that tries to send tva elsewhere)."""

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail_next(self, *codes: int) -> None:
        with self.lock:
            self.failures.extend(codes)

    def delivered(self) -> list[Request]:
        """The requests that were answered with success (what the owner saw)."""
        with self.lock:
            return [r for r in self.requests if r.headers.get("x-test-outcome") == "ok"]

    def texts(self) -> list[str]:
        """The text of every delivered message."""
        out = []
        for r in self.delivered():
            if self.kind == "discord":
                out.append(str(r.body.get("content", "")) + json.dumps(r.body.get("embeds", [])))
            else:
                out.append(f"{r.body.get('title', '')}\n{r.body.get('message', '')}")
        return out


def _handler(service: FakeService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                body = {"_raw": raw.decode("utf-8", "replace")}
            headers = {k.lower(): v for k, v in self.headers.items()}
            with service.lock:
                code = service.failures.pop(0) if service.failures else None
                headers["x-test-outcome"] = "ok" if code is None else str(code)
                service.requests.append(Request("POST", self.path, headers, body))
            if service.redirect_to is not None:
                self.send_response(307)
                self.send_header("Location", service.redirect_to)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if service.kind == "discord" and not self.path.startswith("/api/webhooks/"):
                code = 404
            if code is None:
                if service.kind == "discord":
                    self.send_response(204)
                    self.send_header("X-RateLimit-Remaining", "4")
                    self.send_header("X-RateLimit-Reset", str(int(time.time()) + 1))
                    self.end_headers()
                else:
                    out = json.dumps({"id": "x", "time": int(time.time()), "event": "message",
                                      "topic": body.get("topic", "")}).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                return
            payload = json.dumps({"message": "failing on purpose", "code": code}).encode()
            self.send_response(code)
            if code == 429:
                # Discord's 429 also carries X-RateLimit-Reset, which apprise sleeps until (plus
                # a clock skew of ten seconds): left out, so that the tests need not wait.
                self.send_header("Retry-After", "1")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler


def _serve(kind: str, host: str = "127.0.0.1") -> Iterator[FakeService]:
    server = ThreadingHTTPServer((host, 0), BaseHTTPRequestHandler)
    service = FakeService(kind, server)
    server.RequestHandlerClass = _handler(service)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield service
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def discord_server() -> Iterator[FakeService]:
    yield from _serve("discord")


@pytest.fixture
def ntfy_server() -> Iterator[FakeService]:
    yield from _serve("ntfy")
