"""A fetching node takes web seed lanes from a holder's controller only on that controller's own
address, and no more than it asked for (issue 18): a hostile peer answering ``/v1/webseed``
cannot point this node's Transmission elsewhere, nor widen what it fetches at once."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from controller.clients.peers import PeerApi, PeerRefused
from schemas.desired import Device


class HostilePeer:
    """A real HTTP server on loopback answering ``/v1/webseed`` with ``answer``."""

    def __init__(self) -> None:
        self.answer: tuple[int, Any] = (200, {})
        self.paths: list[str] = []
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                peer.paths.append(self.path)
                status, body = peer.answer
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def peer(monkeypatch: pytest.MonkeyPatch) -> Iterator[HostilePeer]:
    monkeypatch.setenv("TVA_API_TOKEN", "api-token")
    p = HostilePeer()
    yield p
    p.close()


def device(api: str) -> Device:
    return Device.model_validate({
        "apiVersion": "tva/v1", "kind": "Device", "name": "nas", "class": "server",
        "services": ["controller"], "addresses": {"controller_api": api},
        "credentials": {"api_token": {"env": "TVA_API_TOKEN"}}})


IH = "ab" * 20


def test_lanes_are_asked_for_and_trimmed_to_what_was_asked(peer: HostilePeer) -> None:
    urls = [f"{peer.base}/v1/seed/{IH}/{i:040d}/" for i in range(5)]
    peer.answer = (200, {"url": urls[0], "urls": urls})
    got = PeerApi(timeout=5).webseed(device(peer.base), IH, lanes=2)
    assert got == urls[:2]
    assert peer.paths == [f"/v1/webseed/{IH}?lanes=2"]


def test_a_holder_that_knows_no_lanes_gives_its_one_url(peer: HostilePeer) -> None:
    url = f"{peer.base}/v1/seed/{IH}/{'0' * 40}/"
    peer.answer = (200, {"url": url})
    assert PeerApi(timeout=5).webseed(device(peer.base), IH, lanes=3) == [url]


@pytest.mark.parametrize("bad", [
    "http://10.66.0.9:8080/v1/seed/x/", "http://127.0.0.1:1/v1/seed/x/", "file:///etc/passwd", 7,
], ids=["other-host", "other-port", "file", "not-a-string"])
def test_one_lane_off_the_holders_address_refuses_them_all(peer: HostilePeer, bad: Any) -> None:
    good = f"{peer.base}/v1/seed/{IH}/{'0' * 40}/"
    peer.answer = (200, {"url": good, "urls": [good, bad]})
    with pytest.raises(PeerRefused, match="outside its own address"):
        PeerApi(timeout=5).webseed(device(peer.base), IH, lanes=3)


def test_no_copy_to_serve_is_no_lane(peer: HostilePeer) -> None:
    peer.answer = (404, {"detail": "no copy"})
    assert PeerApi(timeout=5).webseed(device(peer.base), IH, lanes=3) == []
    peer.answer = (200, {"urls": "http://elsewhere/"})
    with pytest.raises(PeerRefused):
        PeerApi(timeout=5).webseed(device(peer.base), IH, lanes=3)
