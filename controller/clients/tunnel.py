"""The tunnel client: read a tunnel's state from the kernel and WireGuard, and switch it.

One module for every tunnel tva depends on: a VPN profile declared in the fleet repo (kind
``vpn``) and, later, the fleet's own WireGuard fabric (kind ``fabric``, issue 19). Reading is
unprivileged: the interface's addresses from ``ip -j addr`` and a WireGuard tunnel's latest
handshakes from ``wg show IF latest-handshakes`` (both answer for the caller's network
namespace). Switching needs root; how the controller gets there is the operator's choice in
node.toml (``[tunnels] via``):

- ``direct``: run the profile's own ``up``/``down`` argument list from node.toml;
- ``systemd``: ``systemctl start|stop tva-tunnel@KIND-NAME.service`` (a polkit rule lets the
  controller's user start exactly those units), which runs the root helper;
- ``sudo``: ``sudo -n /usr/sbin/tva-tunnel up|down KIND NAME`` (one sudoers line).

Either way the program is the operator's: the helper (``controller.cli.tunnel_helper``) looks
the name up in the root-owned node.toml and refuses any tunnel not declared there. Nothing here
takes a command from the fleet repo. What a program prints stays on this node: the error that
reaches the journal is a fixed sentence, the last line of its output goes to the node's log.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
from collections.abc import Sequence
from typing import Literal

from controller.errors import PermanentError, TemporaryError
from schemas.node import NodeConfig, TunnelPath, VpnCommands

__all__ = [
    "HELPER",
    "KINDS",
    "NAME_PATTERN",
    "TIMEOUT",
    "TunnelKind",
    "commands_for",
    "interface_addresses",
    "latest_handshake",
    "run_command",
    "switch",
    "switch_argv",
    "unit_name",
]

log = logging.getLogger("tva.tunnel")

TunnelKind = Literal["vpn", "fabric"]
KINDS: tuple[TunnelKind, ...] = ("vpn", "fabric")
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
"""A tunnel name as the helper accepts it (a profile's ``Name``; nothing a shell or systemd
would read specially)."""

HELPER = "/usr/sbin/tva-tunnel"
"""Where packaging installs the root helper (the sudoers line names this path)."""

TIMEOUT = 60.0
_READ_TIMEOUT = 5.0


def commands_for(config: NodeConfig, kind: TunnelKind, name: str) -> VpnCommands | None:
    """The operator's declaration of tunnel ``name`` of ``kind`` in node.toml, or None.

    ``fabric`` has no declaration yet: the fleet fabric (issue 19) adds its own here.
    """
    if kind == "vpn":
        return config.vpn.get(name)
    return None


def unit_name(kind: TunnelKind, name: str) -> str:
    """The instance of the template unit ``tva-tunnel@.service`` for one tunnel."""
    return f"tva-tunnel@{kind}-{name}.service"


def switch_argv(config: NodeConfig, kind: TunnelKind, name: str, up: bool) -> list[str] | None:
    """The argument list that brings the tunnel up (or down) by this node's privileged path,
    or None when the node declares no command for it."""
    which = "up" if up else "down"
    declared = commands_for(config, kind, name)
    command = (declared.up if up else declared.down) if declared else None
    if command is None or NAME_PATTERN.match(name) is None:
        return None
    via = config.tunnels.via
    if via is TunnelPath.systemd:
        return ["systemctl", "start" if up else "stop", "--no-ask-password", unit_name(kind, name)]
    if via is TunnelPath.sudo:
        return ["sudo", "-n", HELPER, which, kind, name]
    return list(command)


def run_command(argv: Sequence[str], what: str, timeout: float = TIMEOUT) -> None:
    """Run ``argv`` (no shell, stdin closed, with a timeout); tva's errors on failure."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                              check=False, stdin=subprocess.DEVNULL)
    except OSError as e:
        raise PermanentError(f"{what} cannot be started ({type(e).__name__})") from None
    except subprocess.TimeoutExpired:
        raise TemporaryError(f"{what} timed out after {timeout:.0f}s") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout or "").strip().splitlines()[-1:] or [""]
        log.warning("%s failed (exit %d): %s", what, done.returncode, tail[0][:500])
        raise TemporaryError(f"{what} failed (exit {done.returncode}); its output is in the "
                             "node's log")


def switch(config: NodeConfig, kind: TunnelKind, name: str, up: bool) -> None:
    """Bring one declared tunnel up or down through the node's privileged path."""
    which = "up" if up else "down"
    argv = switch_argv(config, kind, name, up)
    if argv is None:
        raise PermanentError(
            f"this node has no {which} command for {kind} {name}; its operator sets one in "
            f"node.toml ([vpn.{name}] {which} = [...])")
    run_command(argv, f"the {which} command of {kind} {name}")


def _read(argv: list[str]) -> str | None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=_READ_TIMEOUT,
                              check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def interface_addresses(interface: str) -> list[str] | None:
    """The addresses (no prefix length) on ``interface`` in this network namespace; None when
    they cannot be read (no such interface, no ``ip``)."""
    out = _read(["ip", "-j", "addr", "show", "dev", interface])
    if out is None:
        return None
    try:
        links = json.loads(out or "[]")
        return [str(a["local"]) for link in links for a in link.get("addr_info", [])
                if "local" in a]
    except (ValueError, TypeError, KeyError):
        return None


def latest_handshake(interface: str) -> float | None:
    """The newest handshake of any peer of the WireGuard interface, as a Unix time; 0 when no
    peer ever completed one; None when the interface is not WireGuard's (or ``wg`` is absent)."""
    out = _read(["wg", "show", interface, "latest-handshakes"])
    if out is None:
        return None
    newest = 0.0
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            newest = max(newest, float(parts[1]))
    return newest
