"""Bring a VPN profile up or down with the command the node's operator configured.

The fleet repo names the profile; it never chooses the program: the argument list comes from
the node's configuration (``[vpn.NAME]`` in node.toml, ``controller.nodeconfig``), is run
without a shell and with a timeout. What the program prints stays on this node: the outcome
that reaches the journal and the published status is a fixed sentence (exit code, or timeout),
and the last line of its error output goes to the node's own log, escaped.
"""

from __future__ import annotations

import logging
import subprocess

from controller.errors import PermanentError, TemporaryError
from controller.nodeconfig import current
from schemas.desired import DesiredState
from schemas.plan import Action, ActionKind

__all__ = ["TIMEOUT", "VpnActuator"]

TIMEOUT = 60.0

log = logging.getLogger("tva.vpn")


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
        which = "up" if action.kind is ActionKind.vpn_up else "down"
        commands = current().vpn.get(prof.name)
        argv = (commands.up if which == "up" else commands.down) if commands else None
        if not argv:
            raise PermanentError(
                f"this node has no {which} command for VPN profile {prof.name}; its operator "
                f"sets one in node.toml ([vpn.{prof.name}] {which} = [...])"
            )
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT,
                                  check=False, stdin=subprocess.DEVNULL)
        except OSError as e:
            raise PermanentError(
                f"the {which} command of VPN profile {prof.name} cannot be started "
                f"({type(e).__name__})") from None
        except subprocess.TimeoutExpired:
            raise TemporaryError(
                f"the {which} command of VPN profile {prof.name} timed out after "
                f"{TIMEOUT:.0f}s") from None
        if done.returncode != 0:
            tail = (done.stderr or done.stdout or "").strip().splitlines()[-1:] or [""]
            log.warning("VPN %s command of %s failed (exit %d): %s", which, prof.name,
                        done.returncode, tail[0][:500])
            raise TemporaryError(
                f"the {which} command of VPN profile {prof.name} failed (exit "
                f"{done.returncode}); its output is in the node's log")
        return "done"
