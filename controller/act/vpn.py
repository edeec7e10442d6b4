"""Bring a VPN profile up or down with the command the node's operator configured.

The fleet repo names the profile; it never chooses the program: the argument list comes from
the node's configuration (``[vpn.NAME]`` in node.toml, ``controller.nodeconfig``), reached
through the node's privileged path (``[tunnels] via``: directly, a systemd unit or the sudo
helper; ``controller.clients.tunnel``), and is run without a shell and with a timeout. What
the program prints stays on this node: the outcome that reaches the journal and the published
status is a fixed sentence (exit code, or timeout), and the last line of its error output goes
to the node's own log, escaped.
"""

from __future__ import annotations

from controller.clients import tunnel
from controller.errors import PermanentError
from controller.nodeconfig import current
from schemas.desired import DesiredState
from schemas.plan import Action, ActionKind

__all__ = ["VpnActuator"]


class VpnActuator:
    KINDS = frozenset({ActionKind.vpn_up, ActionKind.vpn_down})

    def __init__(self, desired: DesiredState) -> None:
        self.desired = desired

    def peer_only(self, action: Action) -> bool:
        """Not a torrent add: nothing to space."""
        return False

    def apply(self, action: Action) -> str:
        prof = self.desired.vpn.get(action.target)
        if prof is None:
            raise PermanentError(f"unknown VPN profile {action.target!r}")
        tunnel.switch(current(), "vpn", prof.name, action.kind is ActionKind.vpn_up)
        return "done"
