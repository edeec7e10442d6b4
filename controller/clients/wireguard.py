"""The one client for WireGuard and the node's network: ``wg``, ``wireguard-go`` and ``ip``.

Every command is a fixed argument list of absolute programs; nothing from the fleet repo becomes
a program or an option, only values already validated by ``schemas.fabric`` (an interface named
``tvaN``, addresses, keys). Private keys go to ``wg`` on stdin, never on a command line or into
a file outside the node's secrets directory.

Reading keys and addresses (``host_networks``, ``genkey``, ``pubkey``) needs no privilege;
reading the interface (``show``) does, and goes through the root helper when tva is not root. The writes
that do are behind ``FabricLink``: ``LocalFabricLink.apply`` (create the interface, set its
addresses, bring it up, let a relay forward, ``wg syncconf``) and ``LocalFabricLink.down``
(remove the interface when the node leaves the fabric). The daemon calls them through that
interface only: ``LocalFabricLink`` when it runs the fabric itself, or the root helper's path
(``controller.act.fabric_link``), which hands over a ``schemas.fabric_spool.FabricSpool``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from controller.atomic import write_atomic
from controller.errors import PermanentError, TemporaryError
from controller.nodeconfig import current
from controller.waiting import poll
from schemas.fabric_spool import FabricSpool

__all__ = [
    "IP",
    "SOCKET_DIR",
    "TIMEOUT",
    "WG",
    "WIREGUARD_GO",
    "FabricLink",
    "LocalFabricLink",
    "WgDump",
    "WgPeerDump",
    "WireGuardError",
    "dump_text",
    "ensure_key",
    "genkey",
    "host_networks",
    "key_file",
    "parse_dump",
    "promote_key",
    "pubkey",
    "read_key",
    "show",
    "write_key",
]

WG = "/usr/bin/wg"
WIREGUARD_GO = "/usr/bin/wireguard-go"
IP = "/usr/sbin/ip" if os.path.exists("/usr/sbin/ip") else "/sbin/ip"
SOCKET_DIR = "/var/run/wireguard"
TIMEOUT = 20.0

_IFNAME = re.compile(r"^tva[0-9]{1,2}$")


class WireGuardError(TemporaryError):
    """A WireGuard or ip command failed; the message names the command, not its secrets."""


def _run(argv: Sequence[str], *, stdin: str | None = None) -> str:
    try:
        done = subprocess.run(list(argv), input=stdin, capture_output=True, text=True,
                              timeout=TIMEOUT, check=False)
    except FileNotFoundError:
        raise PermanentError(f"{argv[0]} is not installed (Debian: wireguard-tools, "
                             "wireguard-go, iproute2)") from None
    except subprocess.TimeoutExpired:
        raise WireGuardError(f"{os.path.basename(argv[0])} {argv[1]} timed out") from None
    if done.returncode != 0:
        tail = (done.stderr or "").strip().splitlines()[-1:] or [""]
        raise WireGuardError(f"{os.path.basename(argv[0])} {argv[1]} failed "
                             f"(exit {done.returncode}): {tail[0][:300]}")
    return done.stdout


def _interface(name: str) -> str:
    if not _IFNAME.match(name):
        raise PermanentError(f"{name!r} is not a fabric interface name (tva0..tva99)")
    return name


# --------------------------------------------------------------------------- keys


def genkey() -> str:
    """A new private key (``wg genkey``)."""
    return _run([WG, "genkey"]).strip()


def pubkey(private_key: str) -> str:
    """The public key of ``private_key`` (``wg pubkey``, the key on stdin)."""
    return _run([WG, "pubkey"], stdin=private_key.strip() + "\n").strip()


# --------------------------------------------------------------------------- observe


@dataclass(frozen=True)
class WgPeerDump:
    public_key: str
    endpoint: str | None
    allowed_ips: tuple[str, ...]
    latest_handshake: datetime | None
    rx: int
    tx: int
    keepalive: int | None


@dataclass(frozen=True)
class WgDump:
    """``wg show IF dump`` without the private key."""

    public_key: str | None
    listen_port: int
    peers: tuple[WgPeerDump, ...]


def _none(v: str) -> str | None:
    return None if v in ("(none)", "off", "") else v


def parse_dump(text: str) -> WgDump:
    """Parse ``wg show IF dump``: the interface line, then one line per peer (tab-separated)."""
    lines = [ln.split("\t") for ln in text.splitlines() if ln.strip()]
    if not lines or len(lines[0]) < 4:
        raise WireGuardError("wg show dump: unexpected output")
    head = lines[0]
    peers = []
    for f in lines[1:]:
        if len(f) < 8:
            continue
        ips = tuple(sorted(a for a in f[3].split(",") if a and a != "(none)"))
        hs = int(f[4]) if f[4].isdigit() else 0
        keep = _none(f[7])
        peers.append(WgPeerDump(
            public_key=f[0], endpoint=_none(f[2]), allowed_ips=ips,
            latest_handshake=datetime.fromtimestamp(hs, UTC) if hs else None,
            rx=int(f[5]) if f[5].isdigit() else 0, tx=int(f[6]) if f[6].isdigit() else 0,
            keepalive=int(keep) if keep and keep.isdigit() else None))
    return WgDump(public_key=_none(head[1]), listen_port=int(head[2]) if head[2].isdigit() else 0,
                  peers=tuple(peers))


def show(interface: str, helper: Callable[[str], str | None] | None = None) -> WgDump | None:
    """The interface's state, or None when it does not exist. ``helper`` reads the dump through
    the root helper instead (``controller.clients.tunnel.helper_show``: it answers None when
    this process reads it itself, and an empty text when the interface does not exist)."""
    iface = _interface(interface)
    text = helper(iface) if helper is not None else None
    if text is not None:
        return parse_dump(text) if text.strip() else None
    if not os.path.exists(os.path.join(SOCKET_DIR, f"{iface}.sock")) and \
            not os.path.exists(f"/sys/class/net/{iface}"):
        return None
    try:
        return parse_dump(_run([WG, "show", iface, "dump"]))
    except WireGuardError:
        if not os.path.exists(f"/sys/class/net/{iface}"):
            return None
        raise


def dump_text(interface: str) -> str:
    """``wg show IF dump`` with the interface's private key replaced by ``(hidden)``: what the
    root helper's read-only ``show`` prints (``parse_dump`` reads it)."""
    lines = _run([WG, "show", _interface_any(interface), "dump"]).splitlines()
    if lines:
        head = lines[0].split("\t")
        lines[0] = "\t".join(["(hidden)", *head[1:]])
    return "".join(f"{ln}\n" for ln in lines)


def _interface_any(name: str) -> str:
    """A VPN's interface name as node.toml declares it (``VpnCommands.interface``) or a fabric's."""
    if not re.match(r"^[A-Za-z0-9_.-]{1,15}$", name) or name.startswith("-"):
        raise PermanentError(f"{name!r} is not an interface name")
    return name


def host_networks() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The node's addresses (``addr/prefix``, interface) and routes (destination, interface),
    IPv4 and IPv6, from ``ip -j``: what the collision probe compares the fabric subnet with."""
    addresses: list[tuple[str, str]] = []
    for link in json.loads(_run([IP, "-j", "addr", "show"]) or "[]"):
        for a in link.get("addr_info", []):
            if "local" in a and "prefixlen" in a:
                addresses.append((f"{a['local']}/{a['prefixlen']}", str(link.get("ifname", ""))))
    routes: list[tuple[str, str]] = []
    for family in ("-4", "-6"):
        for r in json.loads(_run([IP, "-j", family, "route", "show", "table", "all"]) or "[]"):
            dst, dev = str(r.get("dst", "")), str(r.get("dev", ""))
            if r.get("type", "unicast") not in ("unicast", "local") or not dst:
                continue
            if "/" not in dst and dst != "default":
                dst += "/32" if family == "-4" else "/128"
            routes.append((dst, dev))
    return addresses, routes


# --------------------------------------------------------------------------- privileged


class FabricLink(Protocol):
    """The privileged operations on the fabric interface (the one narrow path)."""

    def apply(self, spool: FabricSpool, private_key: str) -> None:
        """Create the interface if missing, give it exactly the spool's addresses, bring it up,
        set forwarding, then ``wg syncconf`` (peers added, changed, removed; sessions of
        unchanged peers kept). Idempotent."""

    def down(self, interface: str) -> None:
        """Remove ``interface`` (the node left the fabric)."""

    def show(self, interface: str) -> WgDump | None:
        """The interface's state (reading it needs privilege too), None when it is absent."""


class LocalFabricLink:
    """Runs the privileged operations itself (tva running as root, or in a lab namespace; and
    the root helper ``tva-tunnel``, after it validated the spool)."""

    def show(self, interface: str) -> WgDump | None:
        return show(interface)

    def apply(self, spool: FabricSpool, private_key: str) -> None:
        self.up(spool.interface, spool.addresses, spool.forwarding)
        self.sync(spool.interface, spool.config().text(private_key))

    def up(self, interface: str, addresses: Sequence[str], forwarding: bool) -> None:
        iface = _interface(interface)
        if not os.path.exists(f"/sys/class/net/{iface}"):
            # wireguard-go forks into the background and leaves its UAPI socket behind.
            _run([WIREGUARD_GO, iface])
            sock = os.path.join(SOCKET_DIR, f"{iface}.sock")
            if not poll(lambda: os.path.exists(sock), bool, timeout=TIMEOUT):
                raise WireGuardError(f"wireguard-go did not create {iface}")
        have = {a for a, dev in host_networks()[0] if dev == iface and not a.startswith("fe80:")}
        for a in sorted(have - set(addresses)):
            _run([IP, "addr", "del", a, "dev", iface])
        for a in addresses:
            if a not in have:
                _run([IP, "addr", "add", a, "dev", iface])
        _run([IP, "link", "set", iface, "up"])
        # A relay forwards only what arrives on the fabric interface (IPv4 per interface).
        with open(f"/proc/sys/net/ipv4/conf/{iface}/forwarding", "w") as f:
            f.write("1" if forwarding else "0")

    def sync(self, interface: str, config_text: str) -> None:
        _run([WG, "syncconf", _interface(interface), "/dev/stdin"], stdin=config_text)

    def down(self, interface: str) -> None:
        if not os.path.exists(f"/sys/class/net/{_interface(interface)}"):
            return
        # wireguard-go exits when its tun device goes.
        _run([IP, "link", "del", _interface(interface)])


# --------------------------------------------------------------------------- the node's key


def key_file(interface: str, *, upcoming: bool = False) -> str:
    """Where this node keeps its fabric private key: in its first secrets directory
    (node.toml's ``secrets.dirs``), never a place the fleet repo chooses. ``upcoming``: the
    key of a rotation, used once the fleet repo commits its public key."""
    base = os.path.expanduser(current().secrets.dirs[0])
    return os.path.join(base, f"{_interface(interface)}.key" + (".next" if upcoming else ""))


def read_key(path: str) -> str | None:
    """The private key in ``path``, or None when there is none."""
    try:
        with open(path, encoding="ascii") as f:
            key = f.read(200).strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        raise PermanentError(f"{path}: cannot read the fabric key ({type(e).__name__})") from None
    return key or None


def write_key(path: str, key: str) -> None:
    """Write a private key readable by its owner only."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    write_atomic(path, (key.strip() + "\n").encode("ascii"), mode=0o600)


def promote_key(interface: str) -> None:
    """The rotation's key becomes the node's key."""
    os.replace(key_file(interface, upcoming=True), key_file(interface))


def ensure_key(interface: str, *, rotate: bool = False) -> tuple[str, str, bool]:
    """This node's fabric key, made when absent: (public key, file, whether it was made now).

    ``rotate`` works on the upcoming key instead: the node keeps running with its current key
    until the fleet repo commits the upcoming one's public key (``controller.act.fabric``)."""
    path = key_file(interface, upcoming=rotate)
    key = read_key(path)
    made = key is None
    if key is None:
        key = genkey()
        write_key(path, key)
    return pubkey(key), path, made
