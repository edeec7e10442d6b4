"""The client of other controllers' HTTP API (httpx): the one place tva calls a peer.

``holds`` asks a peer's controller, live, whether it holds a complete copy of an item
(``GET /v1/holds/{infohash}``); ``webseed`` asks it for the URL of its web seed for an item
(``GET /v1/webseed/{infohash}``, ``controller.seeder``). Both send the peer's API token, resolved
from the peer device's reference on this node. Failures are tva errors whose message says why
in words (unreachable, refused, not JSON), never the token. The token goes only where the
node's egress policy allows (``controller.egress``): loopback, private networks, or what the
operator lists.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from controller.egress import Secret, check
from controller.errors import PermanentError, UnreachableError
from controller.secrets import resolve
from schemas.desired import Device

__all__ = ["TIMEOUT", "PeerApi", "PeerRefused"]

TIMEOUT = 10.0


class PeerRefused(PermanentError):
    """The peer answered, but not with what was asked (an HTTP error, not JSON)."""


class PeerApi:
    """Calls to other nodes' controllers; one ``httpx.Client`` (connection pool) for all."""

    def __init__(self, client: httpx.Client | None = None, *, timeout: float = TIMEOUT) -> None:
        self.http = client or httpx.Client(timeout=timeout)

    def holds(self, device: Device, infohash: str) -> bool:
        """Does ``device``'s controller say it holds a complete copy of ``infohash`` now?"""
        answer = self._get(device, f"/v1/holds/{infohash}", None)
        return bool(answer.get("complete"))

    def webseed(self, device: Device, infohash: str, *, lanes: int = 1,
                timeout: float = 3.0) -> list[str]:
        """The web seed URLs (up to ``lanes``) ``device`` serves ``infohash`` at; none when it
        has no copy to serve. A URL that is not on the device's own controller address is
        refused: a peer cannot send this node's Transmission anywhere else."""
        try:
            answer = self._get(device, f"/v1/webseed/{infohash}?lanes={lanes}", timeout)
        except PeerRefused:
            return []
        urls = answer.get("urls", [answer.get("url")])
        api = device.addresses.controller_api or ""
        if not isinstance(urls, list) or not all(isinstance(u, str) and _same_origin(u, api)
                                                 for u in urls):
            raise PeerRefused(f"offered a web seed outside its own address ({api})")
        return [str(u) for u in urls[:lanes]]

    def _get(self, device: Device, path: str, timeout: float | None) -> dict[str, object]:
        if device.addresses.controller_api is None:
            raise PermanentError("it has no controller_api address")
        if device.credentials.api_token is None:
            raise PermanentError("it has no api_token reference")
        url = device.addresses.controller_api.rstrip("/") + path
        check(url, Secret.peer)
        token = resolve(device.credentials.api_token)
        try:
            r = self.http.get(url, headers={"Authorization": f"Bearer {token}"},
                              timeout=timeout if timeout is not None else self.http.timeout)
        except httpx.HTTPError as e:
            raise UnreachableError(f"unreachable ({type(e).__name__})") from e
        if r.status_code != 200:
            raise PeerRefused(f"answered HTTP {r.status_code}")
        try:
            answer = r.json()
        except ValueError as e:
            raise PeerRefused("answered something that is not JSON") from e
        if not isinstance(answer, dict):
            raise PeerRefused("answered JSON that is not an object")
        return answer

    def close(self) -> None:
        self.http.close()


def _same_origin(url: str, base: str) -> bool:
    a, b = urlsplit(url), urlsplit(base)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port) and a.scheme in (
        "http", "https")
