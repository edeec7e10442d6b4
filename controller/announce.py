"""The fleet tracker's announce URL: its shape, and how a node's token stays out of what is
published.

Each node's controller serves a tracker for its own Transmission only (``controller.tracker``).
The announce URL a node writes into the torrents it adds is its controller's API address, then
``/announce/``, then a secret token of that node (``controller/daemon`` keeps it in the state
dir). The plan names only the base URL (``…/announce``, no token: plans and statuses are shared
with the fleet and with CI); the node's actuator puts the token in, and anything observed is
redacted before it is published.
"""

from __future__ import annotations

import re

__all__ = ["ANNOUNCE_PATH", "base_url", "is_fleet", "redact", "with_token"]

ANNOUNCE_PATH = "/announce"

_TOKENED = re.compile(r"(/announce/)[^/?#]+")


def base_url(controller_api: str) -> str:
    """The announce URL of a controller, as plans show it (no token)."""
    return controller_api.rstrip("/") + ANNOUNCE_PATH


def with_token(base: str, token: str) -> str:
    """The announce URL this node's Transmission uses: the base and the node's token."""
    return f"{base}/{token}"


def is_fleet(url: str, base: str) -> bool:
    """Is ``url`` the tracker at ``base`` (with or without a token)?"""
    return url == base or url.startswith(base + "/")


def redact(url: str) -> str:
    """``url`` without a fleet tracker token (for statuses, logs and plans)."""
    return _TOKENED.sub(r"\1<token>", url)
