"""Nodes with their own network for the fabric's lab: each node is a process in a network and
mount namespace of its own, so each can run ``wireguard-go tva0`` with its own UAPI socket.

WireGuard keeps one socket per interface name in ``/var/run/wireguard`` (fixed in both
``wireguard-go`` and ``wg``), and ``/sys/class/net`` shows the namespace of whoever mounted
sysfs; so every node gets a private tmpfs there and its own sysfs. The nodes meet on an
"underlay": a bridge in one more namespace, one veth per node (``u0``) with an address in
192.168.77.0/24 that a test may change (a laptop roaming). Needs root (CI is root); nothing
touches the host's own network namespace.

A ``NetNode`` runs functions in its process: ``call(fn, *args)`` pickles a module-level
function and its arguments, runs it there, and returns the result or raises ``LabFailed``
with the traceback. State that must live in the node (an actuator, a daemon) lives in
``LOCAL``, the node process's own dictionary.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import shutil
import subprocess
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from controller.lab.netns import CLONE_NEWNET, LabFailed

__all__ = [
    "CLONE_NEWNS",
    "LOCAL",
    "UNDERLAY",
    "NetNode",
    "Underlay",
    "missing",
    "run",
]

CLONE_NEWNS = 0x00020000
UNDERLAY = "192.168.77."

LOCAL: dict[str, Any] = {}
"""State of the node process (each node has its own copy after the fork)."""

T = TypeVar("T")


def missing() -> str | None:
    """Why the fabric lab cannot run here, or None."""
    if os.geteuid() != 0:
        return "the fabric lab needs root (wireguard-go creates tva0; CI runs as root)"
    for program in ("wireguard-go", "wg", "ip"):
        if shutil.which(program) is None:
            return f"{program} is not installed (Debian: wireguard-go, wireguard-tools, iproute2)"
    if not os.path.exists("/dev/net/tun"):
        return "/dev/net/tun is missing: wireguard-go cannot create a tun device"
    return None


def run(*argv: str) -> str:
    """Run a command in the calling node; its output (``CalledProcessError`` on failure)."""
    return subprocess.run(list(argv), check=True, capture_output=True, text=True).stdout


def _enter(name: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET | CLONE_NEWNS) != 0:
        raise OSError(ctypes.get_errno(), f"unshare for lab node {name}")
    run("mount", "--make-rprivate", "/")
    run("mount", "-t", "sysfs", "sysfs", "/sys")
    os.makedirs("/var/run/wireguard", exist_ok=True)
    run("mount", "-t", "tmpfs", "-o", "mode=0700", "tmpfs", "/var/run/wireguard")
    run("ip", "link", "set", "lo", "up")
    LOCAL["name"] = name


def _serve(conn: Connection, name: str) -> None:
    try:
        _enter(name)
        conn.send(("ok", os.getpid()))
    except BaseException as e:
        conn.send(("error", f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))
        return
    while True:
        try:
            request = conn.recv()
        except EOFError:
            break
        if request is None:
            break
        fn, args = request
        try:
            conn.send(("ok", fn(*args)))
        except BaseException as e:
            conn.send(("error", f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))
    for stop in LOCAL.get("on_exit", []):
        with contextlib.suppress(Exception):
            stop()
    for iface in sorted(os.listdir("/sys/class/net")):
        if iface.startswith("tva"):  # wireguard-go exits when its tun device goes
            subprocess.run(["ip", "link", "del", iface], check=False, capture_output=True)
    conn.close()


class NetNode:
    """A process in its own network and mount namespaces, running what it is asked to."""

    def __init__(self, name: str) -> None:
        self.name = name
        ctx = multiprocessing.get_context("fork")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, name), daemon=True,
                                 name=f"lab-{name}")
        self._proc.start()
        child.close()
        self.pid: int = self._reply(60)

    def _reply(self, timeout: float) -> Any:
        if not self._conn.poll(timeout):
            raise TimeoutError(f"lab node {self.name} did not answer within {timeout:g} s")
        kind, payload = self._conn.recv()
        if kind == "error":
            raise LabFailed(f"on {self.name}: {payload}")
        return payload

    def call(self, fn: Callable[..., T], *args: Any, timeout: float = 120.0) -> T:
        self._conn.send((fn, args))
        result: T = self._reply(timeout)
        return result

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._conn.send(None)
        self._proc.join(30)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5)


def _bridge() -> None:
    run("ip", "link", "add", "br0", "type", "bridge")
    run("ip", "link", "set", "br0", "up")


def _attach(port: str) -> None:
    run("ip", "link", "set", port, "master", "br0")
    run("ip", "link", "set", port, "up")


def _plug(hub_pid: int, port: str, address: str) -> None:
    run("ip", "link", "add", "u0", "type", "veth", "peer", "name", port, "netns", str(hub_pid))
    run("ip", "addr", "add", f"{address}/24", "dev", "u0")
    run("ip", "link", "set", "u0", "up")


def set_underlay(address: str) -> None:
    """Move this node to another underlay address (a laptop changing networks)."""
    run("ip", "addr", "flush", "dev", "u0")
    run("ip", "addr", "add", f"{address}/24", "dev", "u0")


class Underlay:
    """The nodes' shared network: a bridge in a namespace of its own, a veth per node."""

    def __init__(self) -> None:
        self.hub = NetNode("underlay")
        self.hub.call(_bridge)
        self.nodes: dict[str, NetNode] = {}

    def add(self, name: str, index: int) -> NetNode:
        node = NetNode(name)
        port = f"p-{name}"[:15]
        node.call(_plug, self.hub.pid, port, f"{UNDERLAY}{index}")
        self.hub.call(_attach, port)
        self.nodes[name] = node
        return node

    def close(self) -> None:
        for node in self.nodes.values():
            node.close()
        self.hub.close()
