"""The tunnel client: read a tunnel's state from the kernel and WireGuard, and switch it.

One module for every tunnel tva depends on: a VPN profile declared in the fleet repo (kind
``vpn``) and the fleet's own WireGuard fabric (kind ``fabric``: ``fabric_argv``; what the
helper applies is the spool, ``schemas.fabric_spool``). Reading is
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
    "BLACKHOLE_METRIC",
    "GUARD_PRIORITY",
    "HELPER",
    "KINDS",
    "NAME_PATTERN",
    "SUDO",
    "SYSTEMCTL",
    "TIMEOUT",
    "TunnelKind",
    "bring",
    "commands_for",
    "fabric_argv",
    "guard_commands",
    "helper_show",
    "interface_addresses",
    "latest_handshake",
    "run_command",
    "show_file",
    "show_unit",
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
SYSTEMCTL = "/usr/bin/systemctl"
SUDO = "/usr/bin/sudo"

TIMEOUT = 60.0
_READ_TIMEOUT = 5.0

BLACKHOLE_METRIC = 4000
"""The guard table's blackhole route: behind the tunnel's own route (metric 10)."""
GUARD_PRIORITY = 5180
"""The guard rule's priority: before the main table (32766), whose default route is the bare
link's."""


def commands_for(config: NodeConfig, kind: TunnelKind, name: str) -> VpnCommands | None:
    """The operator's commands for VPN profile ``name`` in node.toml, or None. The fabric has
    no commands: node.toml declares its interface (``[fabric] interface``) and the helper
    applies the spool (``fabric_argv``)."""
    if kind == "vpn":
        return config.vpn.get(name)
    return None


def fabric_argv(config: NodeConfig, interface: str, up: bool) -> list[str] | None:
    """The argument list that makes the root helper apply the fabric spool of ``interface``
    (``up``) or remove the interface, by this node's privileged path; None with ``direct``
    (the controller runs the fabric itself) or when node.toml declares another interface.

    With systemd, ``up`` is ``reload-or-restart``: the unit is a oneshot that stays active, so
    a second ``start`` would do nothing, while its ``ExecReload`` applies the spool again
    (``wg syncconf`` keeps the sessions of unchanged peers)."""
    if config.fabric.interface != interface or NAME_PATTERN.match(interface) is None:
        return None
    via = config.tunnels.via
    if via is TunnelPath.systemd:
        return [SYSTEMCTL, "reload-or-restart" if up else "stop", "--no-ask-password",
                unit_name("fabric", interface)]
    if via is TunnelPath.sudo:
        return [SUDO, "-n", HELPER, "up" if up else "down", "fabric", interface]
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
        return [SYSTEMCTL, "start" if up else "stop", "--no-ask-password", unit_name(kind, name)]
    if via is TunnelPath.sudo:
        return [SUDO, "-n", HELPER, which, kind, name]
    return list(command)


def show_unit(kind: TunnelKind, name: str) -> str:
    """The instance of ``tva-tunnel-show@.service`` that reads one tunnel's WireGuard state."""
    return f"tva-tunnel-show@{kind}-{name}.service"


def show_file(kind: TunnelKind, name: str) -> str:
    """Where that unit leaves what the helper printed (root writes it, mode 0644)."""
    return f"/run/tva-tunnel-{kind}-{name}.dump"


def helper_show(config: NodeConfig, kind: TunnelKind, name: str) -> str | None:
    """``wg show IF dump`` of a declared tunnel as the root helper prints it (the private key
    hidden; empty when the interface does not exist), read by this node's privileged path;
    None with ``direct``, where the caller reads it itself.

    Reading WireGuard's state needs privilege too (wireguard-go's socket is root's, mode 0700;
    the kernel's netlink interface needs CAP_NET_ADMIN), so a controller that is not root reads
    it through the helper's read-only ``show`` verb: with sudo from its output, with systemd by
    starting ``tva-tunnel-show@KIND-NAME.service``, which writes it to ``show_file``."""
    via = config.tunnels.via
    if via is TunnelPath.direct or NAME_PATTERN.match(name) is None:
        return None
    what = f"tva-tunnel show {kind} {name}"
    if via is TunnelPath.sudo:
        return _output([SUDO, "-n", HELPER, "show", kind, name], what)
    _output([SYSTEMCTL, "start", "--no-ask-password", show_unit(kind, name)], what)
    try:
        with open(show_file(kind, name), encoding="utf-8", errors="replace") as f:
            return f.read(1 << 20)
    except OSError as e:
        raise TemporaryError(f"{what}: cannot read {show_file(kind, name)} ({e.strerror})") from None


def _finished(argv: Sequence[str], what: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` (no shell, stdin closed, with a timeout) to its end; tva's errors when it
    cannot start or does not finish."""
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                              check=False, stdin=subprocess.DEVNULL)
    except OSError as e:
        raise PermanentError(f"{what} cannot be started ({type(e).__name__})") from None
    except subprocess.TimeoutExpired:
        raise TemporaryError(f"{what} timed out after {timeout:.0f}s") from None


def _output(argv: Sequence[str], what: str) -> str:
    done = _finished(argv, what, _READ_TIMEOUT)
    if done.returncode != 0:
        tail = (done.stderr or "").strip().splitlines()[-1:] or [""]
        log.warning("%s failed (exit %d): %s", what, done.returncode, tail[0][:500])
        raise TemporaryError(f"{what} failed (exit {done.returncode})")
    return done.stdout


def run_command(argv: Sequence[str], what: str, timeout: float = TIMEOUT) -> None:
    """Run ``argv`` (no shell, stdin closed, with a timeout); tva's errors on failure."""
    done = _finished(argv, what, timeout)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout or "").strip().splitlines()[-1:] or [""]
        log.warning("%s failed (exit %d): %s", what, done.returncode, tail[0][:500])
        raise TemporaryError(f"{what} failed (exit {done.returncode}); its output is in the "
                             "node's log")


def guard_commands(interface: str, address: str, table: int) -> list[list[str]]:
    """The kill-switch guard for one tunnel: a rule sends everything from the tunnel's address
    to its own table, which routes through the tunnel or, when the tunnel's route is gone (the
    interface deleted or down), into a blackhole. Transmission's peer traffic is bound to that
    address, so none of it can leave on the bare link, even before tva reacts or when tva is
    not running. Idempotent: the first command removes an earlier copy of the rule."""
    family = "-6" if ":" in address else "-4"
    t, pref = str(table), str(GUARD_PRIORITY)
    return [
        ["ip", family, "rule", "del", "from", address, "lookup", t, "pref", pref],
        ["ip", family, "route", "replace", "blackhole", "default", "table", t,
         "metric", str(BLACKHOLE_METRIC)],
        ["ip", family, "route", "replace", "default", "dev", interface, "table", t,
         "metric", "10"],
        ["ip", family, "rule", "add", "from", address, "lookup", t, "pref", pref],
    ]


def bring(config: NodeConfig, kind: TunnelKind, name: str, up: bool) -> None:
    """The privileged work itself (root): the declared command, then, after ``up``, the guard
    when the node declares the tunnel's address and interface. The guard stays when the tunnel
    goes down: that is when it works."""
    which = "up" if up else "down"
    declared = commands_for(config, kind, name)
    command = (declared.up if up else declared.down) if declared else None
    if declared is None or command is None:
        raise PermanentError(
            f"this node has no {which} command for {kind} {name}; its operator sets one in "
            f"node.toml ([vpn.{name}] {which} = [...])")
    run_command(command, f"the {which} command of {kind} {name}")
    if (up and declared.address is not None and declared.interface is not None
            and declared.guard_table is not None):
        for i, argv in enumerate(guard_commands(declared.interface, declared.address,
                                                declared.guard_table)):
            if i == 0:  # removing an earlier copy: absent is fine
                subprocess.run(argv, capture_output=True, timeout=_READ_TIMEOUT, check=False,
                               stdin=subprocess.DEVNULL)
            else:
                run_command(argv, f"the kill-switch guard of {kind} {name}", _READ_TIMEOUT)


def switch(config: NodeConfig, kind: TunnelKind, name: str, up: bool) -> None:
    """Bring one declared tunnel up or down through the node's privileged path."""
    which = "up" if up else "down"
    argv = switch_argv(config, kind, name, up)
    if argv is None:
        raise PermanentError(
            f"this node has no {which} command for {kind} {name}; its operator sets one in "
            f"node.toml ([vpn.{name}] {which} = [...])")
    if config.tunnels.via is TunnelPath.direct:
        bring(config, kind, name, up)
    else:
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


def latest_handshake(interface: str, *, profile: str | None = None,
                     config: NodeConfig | None = None) -> float | None:
    """The newest handshake of any peer of the WireGuard interface, as a Unix time; 0 when no
    peer ever completed one; None when the interface is not WireGuard's (or ``wg`` is absent,
    or its state cannot be read here). With the VPN ``profile`` and the node's ``config``, a
    controller that is not root reads it through the helper (``helper_show``)."""
    if profile is not None and config is not None and config.tunnels.via is not TunnelPath.direct:
        try:
            dump = helper_show(config, "vpn", profile)
        except (PermanentError, TemporaryError):
            return None
        if not dump:
            return None
        # ``wg show IF dump``: the interface line, then per peer: key, psk, endpoint, allowed
        # IPs, latest handshake, rx, tx, keepalive.
        stamps = [f[4] for f in (ln.split("\t") for ln in dump.splitlines()[1:]) if len(f) >= 8]
    else:
        out = _read(["wg", "show", interface, "latest-handshakes"])
        if out is None:
            return None
        stamps = [p[1] for p in (ln.split() for ln in out.splitlines()) if len(p) == 2]
    return max((float(t) for t in stamps if t.isdigit()), default=0.0)
