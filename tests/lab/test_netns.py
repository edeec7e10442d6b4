"""The lab's network: each node's downlink can be capped (``shape_downlinks``), so benchmarks
can model a home link instead of the loopback's memory speed. Asserted by what the kernel
counted per class, not by time."""

from __future__ import annotations

import re
import socket
import subprocess
import threading

import pytest

from controller.lab.netns import available, run_isolated, shape_downlinks

WHY = available()
pytestmark = pytest.mark.skipif(WHY is not None, reason=f"no private network namespace: {WHY}")

A, B = "10.77.9.1", "10.77.9.2"
PAYLOAD = 2 << 20


def _send(src: str, dst: str) -> None:
    """``PAYLOAD`` bytes over TCP from ``src`` to a listener at ``dst``."""
    server = socket.create_server((dst, 0))
    got = bytearray()

    def take() -> None:
        conn, _ = server.accept()
        with conn:
            while chunk := conn.recv(1 << 16):
                got.extend(chunk)

    t = threading.Thread(target=take)
    t.start()
    with socket.create_connection(server.getsockname(), source_address=(src, 0)) as c:
        c.sendall(b"x" * PAYLOAD)
    t.join(60)
    server.close()
    assert len(got) == PAYLOAD


def shaped_story() -> dict[str, tuple[int, str | None]]:
    shape_downlinks([A, B], 200)
    _send(B, A)
    out = subprocess.run(["tc", "-s", "class", "show", "dev", "lo"], capture_output=True,
                         text=True, check=True).stdout
    classes: dict[str, tuple[int, str | None]] = {}
    for block in out.split("class htb ")[1:]:
        classid = block.split()[0]
        sent = re.search(r"Sent (\d+) bytes", block)
        rate = re.search(r" rate (\S+) ", block)
        classes[classid] = (int(sent.group(1)) if sent else 0, rate.group(1) if rate else None)
    return classes


def test_each_address_gets_its_own_capped_class() -> None:
    classes = run_isolated(shaped_story, [A, B], timeout=120)
    assert set(classes) == {"1:1", "1:2"}
    assert all(rate == "200Mbit" for _, rate in classes.values())
    # everything sent to A went through A's class; B's class saw only A's acknowledgements
    assert classes["1:1"][0] >= PAYLOAD
    assert classes["1:2"][0] < PAYLOAD // 4
