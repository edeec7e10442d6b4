"""The kill switch's trigger (issue 13): a link, address or route change wakes the loop at
once, from the kernel's own events (``ip monitor``), in a private network namespace."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

_SNIPPET = r"""
import json, subprocess
from controller.daemon.triggers import LinkWatcher
from controller.daemon.wakeup import Wakeup

def ip(*args):
    subprocess.run(["ip", *args], check=True, capture_output=True)

ip("link", "set", "lo", "up")
ip("link", "add", "tva-t0", "type", "veth", "peer", "name", "tva-t1")
wakeup = Wakeup()
watcher = LinkWatcher(wakeup)
watcher.start()
assert watcher.ready.wait(30)
out = {"quiet": wakeup.wait(0.5)}
for step, args in (("up", ("link", "set", "tva-t0", "up")),
                   ("address", ("addr", "add", "10.9.7.1/32", "dev", "tva-t0")),
                   ("down", ("link", "set", "tva-t0", "down")),
                   ("gone", ("link", "del", "tva-t0"))):
    ip(*args)
    out[step] = wakeup.wait(30)  # a generous wait: the event itself ends it
wakeup.stop()
watcher.stop()
watcher.join(30)
out["stopped"] = not watcher.is_alive()
print(json.dumps(out))
"""


def test_a_link_change_wakes_the_loop() -> None:
    probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip(f"no private network namespace: {probe.stderr.decode().strip()}")
    r = subprocess.run(["unshare", "-rn", sys.executable, "-c", _SNIPPET], capture_output=True,
                       text=True, timeout=180, cwd=REPO_ROOT,
                       env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["quiet"] == [], "nothing changed: no wake-up"
    for step in ("up", "address", "down", "gone"):
        assert out[step] == ["link"], (step, out)
    assert out["stopped"] is True
