"""``tva-tunnel``: the root helper that brings a declared tunnel up or down.

The controller runs as an unprivileged user with NoNewPrivileges; a tunnel needs root. This
program is the one privileged step, run by the template unit ``tva-tunnel@.service`` (started
through a polkit rule) or by one sudoers line (docs/operations.md#tunnels)::

    tva-tunnel up|down KIND NAME      e.g. tva-tunnel up vpn home-wg
    tva-tunnel up|down KIND-NAME      the unit's instance name (%i), e.g. vpn-home-wg

It takes nothing else from its caller: no option, no path, no command. It reads the operator's
``/etc/tva/node.toml`` (which must belong to root and be writable by root only, since root runs
what it names), refuses any tunnel not declared there, and runs the declared argument list
without a shell; after ``up`` it sets the kill-switch guard when the tunnel's address and
interface are declared (``controller.clients.tunnel.guard_commands``). ``KIND`` is ``vpn`` (a profile: ``[vpn.NAME]``) or ``fabric`` (the fleet's
WireGuard fabric, declared by issue 19's section). Exit codes: 0 done, 1 refused or failed,
2 usage.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Sequence

from controller.clients.tunnel import KINDS, NAME_PATTERN, TunnelKind, bring, commands_for
from controller.errors import TvaError
from controller.nodeconfig import load

__all__ = ["CONFIG", "USAGE", "main", "run"]

CONFIG = "/etc/tva/node.toml"
USAGE = "usage: tva-tunnel up|down KIND NAME  (KIND: vpn or fabric; or KIND-NAME)"


def _parse(argv: Sequence[str]) -> tuple[bool, TunnelKind, str] | str:
    """(up, kind, name) from the arguments, or what is wrong with them."""
    args = list(argv)
    if len(args) == 2 and "-" in args[1]:
        kind, _, name = args[1].partition("-")
        args = [args[0], kind, name]
    if len(args) != 3 or args[0] not in ("up", "down"):
        return USAGE
    which, kind, name = args
    if kind not in KINDS:
        return f"unknown tunnel kind {kind!r} (vpn or fabric)"
    if NAME_PATTERN.match(name) is None:
        return f"not a tunnel name: {name[:64]!r}"
    return which == "up", kind, name


def _trusted(path: str) -> str | None:
    """Why root must not follow ``path``, or None: root runs what it names."""
    try:
        st = os.stat(path)
    except OSError as e:
        return f"{path}: {e.strerror}"
    if st.st_uid != 0 or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"{path} must belong to root and be writable by root only"
    return None


def run(argv: Sequence[str], *, config: str = CONFIG, check_owner: bool = True) -> int:
    """The helper's work; ``config`` and ``check_owner`` exist for tests, never for callers."""
    parsed = _parse(argv)
    if isinstance(parsed, str):
        print(f"tva-tunnel: {parsed}", file=sys.stderr)
        return 2
    up, kind, name = parsed
    which = "up" if up else "down"
    if check_owner and (why := _trusted(config)) is not None:
        print(f"tva-tunnel: refused: {why}", file=sys.stderr)
        return 1
    try:
        node = load(config)
    except TvaError as e:
        print(f"tva-tunnel: {e}", file=sys.stderr)
        return 1
    declared = commands_for(node, kind, name)
    command = (declared.up if up else declared.down) if declared else None
    if command is None:
        print(f"tva-tunnel: refused: {kind} {name} has no {which} command in {config} "
              f"(only tunnels the node's operator declares are switched)", file=sys.stderr)
        return 1
    try:
        bring(node, kind, name, up)
    except TvaError as e:
        print(f"tva-tunnel: {e}", file=sys.stderr)
        return 1
    return 0


def main() -> None:
    sys.exit(run(sys.argv[1:]))
