"""The node's player: mpv hosted in-process by the controller daemon (see docs/player.md)."""

from controller.player.host import HEADLESS, PlayerError, PlayerHost, RefusedOption, check_option

__all__ = ["HEADLESS", "PlayerError", "PlayerHost", "RefusedOption", "check_option"]
