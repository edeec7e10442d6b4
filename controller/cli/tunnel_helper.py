"""``tva-tunnel``: the root helper that brings a declared tunnel up or down.

The controller runs as an unprivileged user with NoNewPrivileges; a tunnel needs root. This
program is the one privileged step, run by the template unit ``tva-tunnel@.service`` (started
through a polkit rule) or by one sudoers line (docs/operations.md#tunnels)::

    tva-tunnel up|down KIND NAME      e.g. tva-tunnel up vpn home-wg, tva-tunnel up fabric tva0
    tva-tunnel up|down KIND-NAME      the unit's instance name (%i), e.g. vpn-home-wg
    tva-tunnel show KIND NAME         read-only: ``wg show IF dump``, the private key hidden

It takes nothing else from its caller: no option, no path, no command. It reads the operator's
``/etc/tva/node.toml`` (which must belong to root and be writable by root only, since root runs
what it names) and refuses any tunnel not declared there.

- ``vpn NAME``: runs the declared argument list (``[vpn.NAME]``) without a shell; after ``up``
  it sets the kill-switch guard when the tunnel's address and interface are declared
  (``controller.clients.tunnel.guard_commands``).
- ``fabric tvaN``: the interface must be node.toml's ``[fabric] interface``. ``up`` applies the
  spool the controller wrote (``[fabric] spool``/tvaN.json: a regular file in a directory only
  its owner can write, no symlink), validated again with ``schemas.fabric_spool`` and against
  node.toml's ``[fabric] allow``, after the collision probe; the private key comes from the
  node's secrets directory, and the ``wg syncconf`` file is written here, never taken from the
  caller. ``down`` removes the interface.
- ``show``: prints the declared interface's ``wg show IF dump`` with the private key hidden, for
  a controller that may not read WireGuard's state itself (wireguard-go's socket is root's; the
  kernel's netlink needs CAP_NET_ADMIN).

Exit codes: 0 done, 1 refused or failed, 2 usage.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from controller.clients import wireguard as wg
from controller.clients.tunnel import KINDS, NAME_PATTERN, TunnelKind, bring, commands_for
from controller.errors import TvaError
from controller.nodeconfig import install, load
from schemas.fabric import collisions, key_problem
from schemas.fabric_spool import MAX_BYTES, FabricSpool
from schemas.node import NodeConfig

__all__ = ["CONFIG", "USAGE", "main", "run"]

CONFIG = "/etc/tva/node.toml"
USAGE = "usage: tva-tunnel up|down|show KIND NAME  (KIND: vpn or fabric; or KIND-NAME)"


def _parse(argv: Sequence[str]) -> tuple[str, TunnelKind, str] | str:
    """(verb, kind, name) from the arguments, or what is wrong with them."""
    args = list(argv)
    if len(args) == 2 and "-" in args[1]:
        kind, _, name = args[1].partition("-")
        args = [args[0], kind, name]
    if len(args) != 3 or args[0] not in ("up", "down", "show"):
        return USAGE
    which, kind, name = args
    if kind not in KINDS:
        return f"unknown tunnel kind {kind!r} (vpn or fabric)"
    if NAME_PATTERN.match(name) is None:
        return f"not a tunnel name: {name[:64]!r}"
    return which, kind, name


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
    which, kind, name = parsed
    up = which == "up"
    if check_owner and (why := _trusted(config)) is not None:
        print(f"tva-tunnel: refused: {why}", file=sys.stderr)
        return 1
    try:
        node = load(config)
    except TvaError as e:
        print(f"tva-tunnel: {e}", file=sys.stderr)
        return 1
    if which == "show":
        return _show(node, kind, name)
    if kind == "fabric":
        try:
            why = _fabric(node, name, up, check_owner=check_owner)
        except (TvaError, OSError) as e:  # OSError: /proc's forwarding switch
            print(f"tva-tunnel: {e}", file=sys.stderr)
            return 1
        if why is not None:
            print(f"tva-tunnel: refused: {why}", file=sys.stderr)
            return 1
        return 0
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


_WRITABLE = stat.S_IWGRP | stat.S_IWOTH


def read_spool(path: str, *, check_owner: bool = True) -> FabricSpool | str:
    """The validated spool at ``path``, or why it is refused. Root reads what the controller's
    user wrote: no symlink, a regular file of bounded size that only its owner (root or the
    spool directory's owner) can write, in a directory only its owner can write."""
    folder = os.path.dirname(path)
    try:
        dst = os.lstat(folder)
    except OSError as e:
        return f"{folder}: {e.strerror}"
    if not stat.S_ISDIR(dst.st_mode) or dst.st_mode & _WRITABLE:
        return f"{folder} must be a directory (not a link) only its owner can write"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as e:
        return f"{path}: {e.strerror} (the controller writes it before it calls the helper)"
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_mode & _WRITABLE:
            return f"{path} must be a regular file only its owner can write"
        if check_owner and st.st_uid not in (0, dst.st_uid):
            return f"{path} must belong to root or to the owner of {folder}"
        data = f.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        return f"{path} is larger than {MAX_BYTES} bytes"
    try:
        return FabricSpool.model_validate_json(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top)"
        return f"{path}: {where}: {first['msg']}"


def _show(node: NodeConfig, kind: TunnelKind, name: str) -> int:
    """``show``: print ``wg show IF dump`` of a declared tunnel with the private key hidden
    (nothing when the interface does not exist). Read-only: what a controller that is not root
    needs to see handshakes, peers and counters."""
    interface = node.fabric.interface if kind == "fabric" and node.fabric.interface == name else (
        declared.interface if kind == "vpn" and (declared := node.vpn.get(name)) else None)
    if interface is None:
        print(f"tva-tunnel: refused: {kind} {name} is not declared in node.toml with an "
              "interface", file=sys.stderr)
        return 1
    if not os.path.exists(f"/sys/class/net/{interface}"):
        return 0
    try:
        text = wg.dump_text(interface)
    except (TvaError, OSError) as e:
        print(f"tva-tunnel: {e}", file=sys.stderr)
        return 1
    sys.stdout.write(text)
    return 0


def _fabric(node: NodeConfig, name: str, up: bool, *, check_owner: bool) -> str | None:
    """Apply (or remove) the fabric interface ``name``; why it is refused, or None."""
    if node.fabric.interface != name:
        return (f"fabric {name} is not declared in node.toml ([fabric] interface); only the "
                "interface its operator declares is switched")
    link = wg.LocalFabricLink()
    if not up:
        link.down(name)
        return None
    spool = read_spool(os.path.join(node.fabric.spool, f"{name}.json"), check_owner=check_owner)
    if isinstance(spool, str):
        return spool
    if (why := spool.refusal(node.fabric.interface, node.fabric.allow)) is not None:
        return why
    found = collisions(spool.subnet, *wg.host_networks(), name)
    if found:
        return found[0].message()
    install(node)  # the key's place: node.toml's secrets directory, not the caller's word
    key = wg.read_key(wg.key_file(name))
    if key is None or key_problem(key) is not None:
        return f"no valid private key in {wg.key_file(name)} (`tva fabric keys` makes it)"
    link.apply(spool, key)
    return None


def main() -> None:
    sys.exit(run(sys.argv[1:]))
