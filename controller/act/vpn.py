"""Bring a VPN profile up or down with the profile's own command, as an argument list.

Never through a shell: the command comes from the fleet repo (untrusted input) and is run as
exactly the arguments written there, with a timeout.
"""

from __future__ import annotations

import subprocess

from controller.errors import PermanentError, TemporaryError
from schemas.desired import DesiredState
from schemas.plan import Action, ActionKind

__all__ = ["TIMEOUT", "VpnActuator"]

TIMEOUT = 60.0


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
        argv = prof.up if action.kind is ActionKind.vpn_up else prof.down
        if not argv:
            raise PermanentError(
                f"VPN profile {prof.name} has no {'up' if action.kind is ActionKind.vpn_up else 'down'} "
                "command; add one to its file in the fleet repo"
            )
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, check=False)
        except FileNotFoundError as e:
            raise PermanentError(f"VPN command {argv[0]!r} not found on this node") from e
        except subprocess.TimeoutExpired as e:
            raise TemporaryError(f"VPN command {argv[0]} timed out after {TIMEOUT:.0f}s") from e
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [""]
            raise TemporaryError(f"VPN command {argv[0]} failed ({done.returncode}): {tail[0]}")
        return "done"
