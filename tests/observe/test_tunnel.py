"""A WireGuard tunnel counts as up only after a handshake (issue 13), read from a real
``wireguard-go`` pair in a private network namespace (root only: the kernel here has no
wireguard module and wireguard-go needs /dev/net/tun)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="wireguard-go needs root"),
    pytest.mark.skipif(shutil.which("wireguard-go") is None or shutil.which("wg") is None,
                       reason="wireguard-go and wireguard-tools are not installed"),
]

_SNIPPET = r"""
import json, os, subprocess, sys, time
from controller.observe.host import vpn_state
from controller.waiting import wait_for

def sh(*args, **kw):
    return subprocess.run(list(args), check=True, capture_output=True, text=True, **kw).stdout

a, b = sys.argv[1], sys.argv[2]
sh("ip", "link", "set", "lo", "up")
out = {}
try:
    for name in (a, b):
        sh("wireguard-go", name)
    ka, kb = sh("wg", "genkey").strip(), sh("wg", "genkey").strip()
    pa, pb = sh("wg", "pubkey", input=ka).strip(), sh("wg", "pubkey", input=kb).strip()
    for me, key, port, peer, ip, peer_ip, peer_port in (
            (a, ka, 51820, pb, "10.9.8.1", "10.9.8.2", 51821),
            (b, kb, 51821, pa, "10.9.8.2", "10.9.8.1", 51820)):
        path = f"/tmp/{me}.key"
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(key)
        sh("wg", "set", me, "private-key", path, "listen-port", str(port), "peer", peer,
           "allowed-ips", f"{peer_ip}/32", "endpoint", f"127.0.0.1:{peer_port}")
        os.unlink(path)
        sh("ip", "addr", "add", f"{ip}/32", "dev", me)
        sh("ip", "link", "set", me, "up")
    s = vpn_state("home", a, address="10.9.8.1", wireguard=True)
    out["before"] = [s.up, s.detail]
    sh("wg", "set", a, "peer", pb, "persistent-keepalive", "1")
    s = wait_for(lambda: (lambda v: v if v.up else None)(
        vpn_state("home", a, address="10.9.8.1", wireguard=True)), timeout=30, what="handshake")
    out["after"] = [s.up, s.detail]
    s = vpn_state("home", a, address="10.9.8.1", wireguard=True, now=time.time() + 600)
    out["stale"] = [s.up, s.detail]
finally:
    for name in (a, b):
        subprocess.run(["ip", "link", "del", name], capture_output=True)
print(json.dumps(out))
"""


def test_a_wireguard_tunnel_is_up_only_with_a_recent_handshake() -> None:
    tag = os.getpid() % 100000
    r = subprocess.run(["unshare", "-n", sys.executable, "-c", _SNIPPET, f"tka{tag}",
                        f"tkb{tag}"], capture_output=True, text=True, timeout=120,
                       cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["before"] == [False, "no handshake with any peer yet"]
    assert out["after"] == [True, "up"]
    assert out["stale"][0] is False and "latest handshake" in out["stale"][1]
