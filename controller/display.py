"""Make any string safe to show: control characters escaped, credentials in URLs redacted.

Everything in the fleet repo is written by whoever can push to it, and much of what tva shows
(item and device names, reasons, URLs, git and peer messages) comes from there. A name holding
ESC can rewrite the terminal, a bidi override can make ``evil`` read as ``live``, and an indexer
URL with ``?apikey=`` pasted into a pull-request comment leaks the key. So every renderer (the
terminal console of the CLI, the review's text and Markdown, the daemon's logs) passes text
through ``safe`` here, one rule for all of them.
"""

from __future__ import annotations

import re

__all__ = ["SENSITIVE_PARAMS", "escape_controls", "first_control", "redact_urls", "safe"]

SENSITIVE_PARAMS = frozenset({
    "apikey", "api_key", "api-key", "passkey", "token", "access_token", "auth", "key",
    "password", "pass", "passwd", "secret", "sig", "signature", "session", "sessionid", "pk",
    "authkey", "torrent_pass", "uid",
})
"""Query parameters whose value is a credential (indexers' apikey, trackers' passkey...)."""

_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_INVISIBLE = "\u200b\u2028\u2029\ufeff"
# C0 controls, DEL, C1 controls, bidi controls and line/paragraph separators.
_CONTROL = re.compile(f"[\\x00-\\x1f\\x7f-\\x9f{_BIDI}{_INVISIBLE}]")
_CONTROL_KEEP_LINES = re.compile(f"[\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f{_BIDI}{_INVISIBLE}]")

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s<>\"'`|]+")
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^/?#@]*)@")
_PARAM = re.compile(r"([?&;])([^=&;#]+)=([^&;#]*)")


def _escape_one(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape_controls(text: str, *, keep_newlines: bool = False) -> str:
    r"""``text`` with every control, C1, bidi and invisible separator character written as an
    escape (``\x1b``, ``\u202e``); with ``keep_newlines``, ``\n`` and ``\t`` stay as they are
    (multi-line output made by tva itself)."""
    pattern = _CONTROL_KEEP_LINES if keep_newlines else _CONTROL
    return pattern.sub(_escape_one, text)


def first_control(text: str) -> str | None:
    """The first character of ``text`` that ``escape_controls`` would escape (tab and newline
    allowed), or None."""
    m = _CONTROL_KEEP_LINES.search(text)
    return m.group() if m else None


def _redact_url(m: re.Match[str]) -> str:
    url = m.group()
    url = _USERINFO.sub(lambda u: u.group(1) + "***@", url)

    def param(p: re.Match[str]) -> str:
        name = p.group(2)
        if name.lower() in SENSITIVE_PARAMS and p.group(3):
            return f"{p.group(1)}{name}=***"
        return p.group()

    return _PARAM.sub(param, url)


def redact_urls(text: str) -> str:
    """``text`` with the user info and credential query parameters of every URL in it replaced
    by ``***`` (``https://***@host/?apikey=***``)."""
    if "://" not in text:
        return text
    return _URL.sub(_redact_url, text)


def safe(text: str, *, keep_newlines: bool = False) -> str:
    """The one rule for showing a string: URLs redacted, then controls escaped."""
    return escape_controls(redact_urls(text), keep_newlines=keep_newlines)
