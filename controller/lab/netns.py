"""Run a function in a private network namespace, without root: the lab's own little network.

Transmission drops loopback peer addresses (../shared/LAB.md), so lab nodes need real-looking
addresses. A forked child unshares a user and a network namespace (``unshare -rn`` in C terms:
the child is single-threaded right after ``fork``, which user namespaces require), maps the
caller's uid to root inside, brings up its private ``lo`` and gives it one /32 address per
node. Everything the lab runs (daemons, controllers, the narration) runs in that child; the
result, or the error, comes back over a pipe. Traffic never leaves the namespace.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import pickle
import subprocess
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from controller.errors import PermanentError

__all__ = [
    "CLONE_NEWNET",
    "CLONE_NEWUSER",
    "LabFailed",
    "NamespaceRefused",
    "available",
    "run_isolated",
    "setup_addresses",
    "shape_downlinks",
]

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000

T = TypeVar("T")


class NamespaceRefused(PermanentError):
    """The kernel (or its policy) refuses unprivileged network namespaces here."""


class LabFailed(Exception):
    """The function failed inside the namespace; the message carries its traceback."""


def _unshare() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    uid, gid = os.getuid(), os.getgid()
    flags = CLONE_NEWNET if uid == 0 else CLONE_NEWUSER | CLONE_NEWNET
    if libc.unshare(flags) != 0:
        err = ctypes.get_errno()
        raise NamespaceRefused(
            f"the kernel refused a private network namespace ({os.strerror(err)}); "
            "unprivileged user namespaces may be disabled (sysctl kernel.unprivileged_userns_clone "
            "or user.max_user_namespaces)"
        )
    if uid != 0:
        with open("/proc/self/setgroups", "w") as f:
            f.write("deny")
        with open("/proc/self/uid_map", "w") as f:
            f.write(f"0 {uid} 1")
        with open("/proc/self/gid_map", "w") as f:
            f.write(f"0 {gid} 1")


def setup_addresses(addresses: Sequence[str]) -> None:
    """Bring ``lo`` up and add each address as a /32 on it (inside the namespace)."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, capture_output=True)
    for addr in addresses:
        subprocess.run(["ip", "addr", "add", f"{addr}/32", "dev", "lo"], check=True, capture_output=True)


def shape_downlinks(addresses: Sequence[str], mbit: int) -> None:
    """Cap what each address receives at ``mbit`` Mbit/s (inside the namespace).

    The lab's nodes share one loopback, which moves bytes at memory speed; a real home link is
    1 or 2.5 Gbit/s. One HTB class per address, matched on the destination, models each node's
    own downlink: a node fetching from two holders still gets at most its link. Traffic to any
    other address (127.0.0.1) is not shaped.
    """
    rate = f"{mbit}mbit"
    burst = max(256 * 1024, mbit * 1_000_000 // 8 // 1000)  # at least a millisecond of the link
    subprocess.run(["tc", "qdisc", "replace", "dev", "lo", "root", "handle", "1:", "htb"],
                   check=True, capture_output=True)
    for i, addr in enumerate(addresses, start=1):
        subprocess.run(["tc", "class", "add", "dev", "lo", "parent", "1:", "classid", f"1:{i:x}",
                        "htb", "rate", rate, "ceil", rate, "burst", str(burst), "cburst", str(burst),
                        "quantum", "131072"], check=True, capture_output=True)
        subprocess.run(["tc", "filter", "add", "dev", "lo", "parent", "1:", "protocol", "ip",
                        "prio", "1", "u32", "match", "ip", "dst", f"{addr}/32",
                        "flowid", f"1:{i:x}"], check=True, capture_output=True)


def _child(conn: Connection, fn: Callable[..., Any], addresses: Sequence[str], args: tuple[Any, ...]) -> None:
    try:
        _unshare()
        setup_addresses(addresses)
        result = fn(*args)
        conn.send(("ok", pickle.dumps(result)))
    except NamespaceRefused as e:
        conn.send(("refused", str(e)))
    except BaseException as e:  # report everything to the parent, then exit
        conn.send(("error", f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))
    finally:
        conn.close()


def run_isolated(fn: Callable[..., T], addresses: Sequence[str], *args: Any, timeout: float | None = None) -> T:
    """Call ``fn(*args)`` in a fresh network namespace holding ``addresses``; return its result.

    Raises ``NamespaceRefused`` when namespaces are not available, ``LabFailed`` when ``fn``
    raised (with its traceback), ``TimeoutError`` after ``timeout`` seconds.
    """
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, fn, list(addresses), args), daemon=False)
    proc.start()
    child.close()
    try:
        if not parent.poll(timeout):
            proc.kill()
            raise TimeoutError(f"the lab did not finish within {timeout} s")
        kind, payload = parent.recv()
    except EOFError:
        proc.join(5)
        raise LabFailed(f"the lab process died (exit code {proc.exitcode})") from None
    finally:
        proc.join(30)
        if proc.is_alive():
            proc.kill()
    if kind == "refused":
        raise NamespaceRefused(payload)
    if kind == "error":
        raise LabFailed(payload)
    result: T = pickle.loads(payload)
    return result


def available() -> str | None:
    """None when private network namespaces work here; else why not."""
    try:
        run_isolated(_probe, ["10.77.255.1"], timeout=30)
    except NamespaceRefused as e:
        return str(e)
    except (LabFailed, OSError, subprocess.CalledProcessError, TimeoutError) as e:
        return f"the lab network could not be set up: {e}"
    return None


def _probe() -> bool:
    out = subprocess.run(["ip", "-o", "addr", "show", "dev", "lo"], capture_output=True, text=True, check=True)
    return "10.77.255.1" in out.stdout
