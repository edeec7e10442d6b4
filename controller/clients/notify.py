"""Notification services through apprise: the one module that imports it.

A target's URL is a credential (a Discord webhook's token, an ntfy topic that acts as a
password), given by reference and resolved here at the moment of sending. Before anything is
sent, the service's real destination is worked out from the apprise plugin and checked against
the node's egress policy (``Secret.notify``: only hosts the operator lists in egress.allow). A
plugin whose destination this module cannot tell is refused, not trusted.

apprise logs URLs, payloads and topics at debug and warning level. Its logger is detached from
the daemon's: records are captured per send, the URL's secret parts are masked, and only the
last warning reaches tva's error message.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote, urlsplit

import apprise

from controller.egress import Secret, check
from controller.errors import PermanentError, TemporaryError
from controller.secrets import describe, resolve
from schemas.notify import NotifyTarget

__all__ = ["SELF_HOSTED", "NotifyClient", "destination", "mask"]

SELF_HOSTED = frozenset({"json", "jsons", "form", "forms", "xml", "xmls", "gotify", "gotifys",
                         "ntfy", "ntfys"})
"""apprise services whose URL's host is where they send (the others have a fixed endpoint)."""

_log = logging.getLogger("tva.notify")
_captured = threading.local()


class _Capture(logging.Handler):
    """Keeps apprise's warnings for the thread that is sending, and nothing else."""

    def emit(self, record: logging.LogRecord) -> None:
        lines: list[str] | None = getattr(_captured, "lines", None)
        if lines is not None and record.levelno >= logging.WARNING:
            lines.append(record.getMessage())


class _Mask(logging.Filter):
    """While a thread sends, its apprise records are masked and its HTTP library's dropped
    (urllib3 logs every request line, the webhook token in the path), whoever listens."""

    def __init__(self, drop: bool) -> None:
        super().__init__()
        self.drop = drop

    def filter(self, record: logging.LogRecord) -> bool:
        url: str | None = getattr(_captured, "url", None)
        if url is None:
            return True
        if self.drop:
            return False
        record.msg = mask(record.getMessage(), url)
        record.args = ()
        return True


_apprise_log = logging.getLogger("apprise")
_apprise_log.propagate = False  # its records hold URLs and topics: never in the daemon's log
_apprise_log.setLevel(logging.WARNING)
_apprise_log.handlers[:] = [_Capture()]
_apprise_log.addFilter(_Mask(drop=False))
for _name in ("urllib3.connectionpool", "urllib3.connection", "urllib3.util.retry",
              "requests"):
    logging.getLogger(_name).addFilter(_Mask(drop=True))


@contextmanager
def _capturing(url: str) -> Iterator[list[str]]:
    lines: list[str] = []
    _captured.lines = lines
    _captured.url = url
    try:
        yield lines
    finally:
        _captured.lines = None
        _captured.url = None


def mask(text: str, url: str) -> str:
    """``text`` with every secret-looking part of ``url`` (user info, path segments, query
    values) replaced by ``***``."""
    parts = urlsplit(url)
    pieces = {parts.username or "", parts.password or ""}
    pieces.update(unquote(p) for p in parts.path.split("/"))
    pieces.update(p for p in parts.path.split("/"))
    for pair in parts.query.split("&"):
        pieces.add(pair.partition("=")[2])
    if parts.scheme and parts.hostname and parts.scheme not in ("http", "https"):
        # discord://ID/TOKEN: the "host" is the webhook id
        pieces.add(parts.hostname)
    pieces.add(url)
    for piece in sorted((p for p in pieces if len(p) >= 4), key=len, reverse=True):
        text = text.replace(piece, "***")
    return text


def destination(plugin: Any) -> str:
    """The URL the apprise ``plugin`` will connect to (scheme, host and port)."""
    fixed = getattr(plugin, "notify_url", None)
    protocols = {*_names(getattr(plugin, "protocol", None)),
                 *_names(getattr(plugin, "secure_protocol", None))}
    if "ntfy" in protocols or "ntfys" in protocols:
        if str(getattr(plugin, "mode", "")).lower().endswith("cloud"):
            return str(plugin.cloud_notify_url)
    if protocols & SELF_HOSTED:
        scheme = "https" if getattr(plugin, "secure", False) else "http"
        port = getattr(plugin, "port", None)
        host = str(plugin.host)
        host = f"[{host}]" if ":" in host else host
        return f"{scheme}://{host}" + (f":{port}" if isinstance(port, int) else "")
    if isinstance(fixed, str) and fixed.startswith(("https://", "http://")):
        return fixed
    raise PermanentError(
        f"tva cannot tell where a {sorted(protocols)[0] if protocols else 'this'} target sends, "
        f"so it does not send there; supported: the services with a fixed endpoint (discord, "
        f"tgram, ...) and {', '.join(sorted(SELF_HOSTED))}")


def _names(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return []


class NotifyClient:
    """Sends one message to one target; raises ``TemporaryError`` when the service refused or
    could not be reached (retry later), ``PermanentError`` when it can never work as
    configured (a missing secret, a refused destination, an unknown service)."""

    def __init__(self, endpoints: Mapping[str, str] | None = None) -> None:
        self.endpoints = dict(endpoints or {})
        """Service -> base URL replacing its fixed endpoint (``discord`` -> a local server
        that speaks Discord's webhook protocol, in the lab and tests). The egress check runs on
        the replacement."""

    def send(self, target: NotifyTarget, title: str, body: str) -> None:
        url = resolve(target.url)
        with _capturing(url) as lines:
            plugin = apprise.Apprise.instantiate(url)
        if plugin is None:
            raise PermanentError(
                f"notification target {target.name}: secret {describe(target.url)} is not an "
                "apprise URL this node can use" + (f" ({mask(lines[-1], url)})" if lines else ""))
        for name in _names(getattr(plugin, "secure_protocol", None)) + _names(
                getattr(plugin, "protocol", None)):
            if name in self.endpoints:
                setattr(plugin, "notify_url", self.endpoints[name])  # noqa: B010
                break
        where = destination(plugin)
        check(where, Secret.notify)
        # A redirect would take the message (and, for some services, the token) around the check.
        setattr(plugin, "redirects", False)  # noqa: B010
        with _capturing(url) as lines:
            try:
                ok = plugin.notify(body=body, title=title)
            except Exception as e:  # apprise plugins are many; none may crash the sender
                raise TemporaryError(f"notification target {target.name}: "
                                     f"{mask(type(e).__name__ + ': ' + str(e), url)}") from None
        if not ok:
            why = mask(lines[-1], url) if lines else "the service did not accept the message"
            raise TemporaryError(f"notification target {target.name}: {why}")
        _log.debug("sent to %s", target.name)
