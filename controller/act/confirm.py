"""Live confirmation before a removal, as git-annex confirms before a drop.

A removal carries ``relies_on``: the nodes whose copies keep the floor without this one. Right
before removing, the node's own player is asked whether it has the item open, and each of those
holders is asked *now* whether it still holds a complete copy — this node
through its own Transmission, a peer through its controller API (``GET /v1/holds/{infohash}``
with the peer's API token, resolved from the peer device's reference on this node). If any
cannot confirm (unreachable, no token here, incomplete), the removal waits: it is skipped and
the next pass plans it again.
"""

from __future__ import annotations

from collections.abc import Callable

from controller.clients.peers import PeerApi
from controller.errors import TvaError
from schemas.desired import DesiredState

__all__ = ["Confirmer"]


class Confirmer:
    def __init__(
        self,
        desired: DesiredState,
        node: str,
        own_holds: Callable[[str], bool],
        peers: PeerApi | None = None,
        playing: Callable[[], set[str]] = set,
    ) -> None:
        self.desired = desired
        self.node = node
        self.own_holds = own_holds
        self.playing = playing
        self.peers = peers or PeerApi()

    def unconfirmed(self, infohash: str, holders: list[str]) -> str | None:
        """None when nothing here plays the item and every holder the floor relies on confirms a
        complete copy now; else why not (for the journal). No holders named means no floor
        relies on another copy (e.g. a watched episode no custody rule keeps)."""
        if infohash in self.playing():
            return "this node's player has it open"
        for holder in holders:
            why = self._ask(holder, infohash)
            if why is not None:
                return f"{holder} could not confirm its copy: {why}"
        return None

    def _ask(self, holder: str, infohash: str) -> str | None:
        try:
            if holder == self.node:
                return None if self.own_holds(infohash) else "not complete here"
            dev = self.desired.devices.get(holder)
            if dev is None:
                return "it is not a device of the fleet"
            return None if self.peers.holds(dev, infohash) else "its copy is not complete"
        except TvaError as e:
            return str(e)
