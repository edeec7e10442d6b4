"""The Transmission labels tva puts on torrents, in one place.

Labels are how tva recognises its own torrents after a restart (Transmission keeps them) and
why each one is there. tva never removes data from a torrent without ``TVA_LABEL``.
"""

from __future__ import annotations

__all__ = [
    "FACE_LABEL",
    "LEAK_STOPPED_LABEL",
    "PUBLIC_SWARM_LABEL",
    "TVA_LABEL",
    "VPN_STOPPED_LABEL",
    "custody_label",
    "player_label",
    "watchlist_label",
]

TVA_LABEL = "tva"
"""Every torrent tva adds carries it; tva never removes data from a torrent without it."""
VPN_STOPPED_LABEL = "tva:vpn-stopped"
"""Marks a torrent the VPN kill switch stopped, so that only those are started again."""
FACE_LABEL = "tva:face"
"""A public item the public_swarm_face fetched from the public swarm for the fleet's home nodes."""
LEAK_STOPPED_LABEL = "tva:leak-stopped"
"""Marks a fleet-only torrent stopped because its node's session would leak it (DHT, PEX, LPD)."""

PUBLIC_SWARM_LABEL = "tva:public-swarm"
"""A public item a home node fetched from the public swarm itself (the face's fallback): the kill
switch treats it as public for good, since Transmission keeps dialling the peers it met."""


def custody_label(rule: str) -> str:
    """A copy kept for custody rule ``rule``."""
    return f"tva:custody/{rule}"


def watchlist_label(name: str) -> str:
    """A copy kept ready for watchlist ``name``."""
    return f"tva:watchlist/{name}"


def player_label(device: str) -> str:
    """A copy queued for the player of ``device``."""
    return f"tva:player/{device}"
