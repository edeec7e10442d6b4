"""Dashboard sessions: the API token, typed once into a login form, becomes a session cookie.

A browser cannot send the API's bearer header by itself, and the token must not sit in a URL or
in the page's JavaScript, so the login form trades it for a random session id kept in memory
(``HttpOnly``, ``SameSite=Strict``, ``Secure`` when the API is served over TLS, scoped to the
dashboard's path). A session remembers a digest of the token it was opened with: when the
token is rotated or revoked (the daemon resolves it again every pass), every session opened
with the old one ends. The login form itself is CSRF-safe twice over: a per-form token in a
cookie and a hidden field must agree, and a cross-site ``Origin`` is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["CSRF_COOKIE", "SESSION_COOKIE", "SESSION_SECONDS", "Sessions", "same_origin"]

SESSION_COOKIE = "tva_session"
CSRF_COOKIE = "tva_login"
SESSION_SECONDS = 12 * 3600
"""A session lasts at most this long; the owner logs in again after."""


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass
class Sessions:
    """Open sessions, bounded (the oldest goes first), checked against the current token."""

    token: Callable[[], str | None]
    limit: int = 64
    lifetime: float = SESSION_SECONDS
    clock: Callable[[], float] = time.monotonic
    _open: OrderedDict[str, tuple[bytes, float]] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def login(self, given: str) -> str | None:
        """A new session id when ``given`` is the current token, else None."""
        expected = self.token()
        if expected is None or not hmac.compare_digest(given.encode(), expected.encode()):
            return None
        sid = secrets.token_urlsafe(32)
        with self._lock:
            self._open[sid] = (_digest(expected), self.clock() + self.lifetime)
            while len(self._open) > self.limit:
                self._open.popitem(last=False)
        return sid

    def valid(self, sid: str | None) -> bool:
        if not sid:
            return False
        expected = self.token()
        with self._lock:
            entry = self._open.get(sid)
            if entry is None:
                return False
            digest, until = entry
            if expected is None or until < self.clock() or not hmac.compare_digest(digest, _digest(expected)):
                del self._open[sid]
                return False
        return True

    def logout(self, sid: str | None) -> None:
        with self._lock:
            self._open.pop(sid or "", None)


def same_origin(origin: str | None, host: str | None, scheme: str) -> bool:
    """Is a request's ``Origin`` header this server (or absent, as some browsers leave it on a
    same-origin form post)? A cross-site form post always carries a foreign origin."""
    if origin is None:
        return True
    if origin == "null" or host is None:
        return False
    return origin == f"{scheme}://{host}"
