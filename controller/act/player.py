"""Carry out player actions on the node's hosted mpv (``controller.player.host``)."""

from __future__ import annotations

from controller.errors import PermanentError
from controller.player.host import PlayerHost
from schemas.plan import Action, ActionKind

__all__ = ["PlayerActuator"]


class PlayerActuator:
    KINDS = frozenset({ActionKind.player_set, ActionKind.player_load, ActionKind.player_stop})

    def __init__(self, host: PlayerHost | None) -> None:
        self.host = host

    def peer_only(self, action: Action) -> bool:
        """Not a torrent add: nothing to space."""
        return False

    def apply(self, action: Action) -> str:
        if self.host is None:
            raise PermanentError("this node hosts no player (the device has no player service)")
        if action.kind is ActionKind.player_set:
            self.host.set_option(action.target, action.params["value"])
        elif action.kind is ActionKind.player_load:
            self.host.load(action.params["path"])
        else:
            self.host.stop()
        return "done"
