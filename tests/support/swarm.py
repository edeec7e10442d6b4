"""The public swarm in lab stories, and the watcher that proves who met it.

``Outsider`` is a stock BitTorrent client from Debian (aria2c), not part of any fleet, seeding
one file at its own address through a public tracker only (no DHT, PEX or LPD). ``Watcher``
samples every TCP connection in the namespace (``ss``) and every peer each lab node's
Transmission reports, so a story can assert that no home node ever talked to the outsider.
Shared by tests/lab/test_face.py and tests/lab/test_acquisition.py.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path

from controller.lab.lab import Lab

__all__ = ["Outsider", "Watcher"]


class Outsider:
    """aria2c seeding ``data`` (described by ``torrent``) from ``address``, listening on
    ``ports`` (``"6901-6909"``), logging every peer it meets to ``workdir/aria2.log``."""

    def __init__(self, data: Path, torrent: Path, workdir: Path, ports: str, address: str) -> None:
        self.address = address
        self.dir = workdir / "data"
        self.dir.mkdir(parents=True)
        shutil.copy(data, self.dir / data.name)
        self.log = workdir / "aria2.log"
        self.proc = subprocess.Popen(
            ["aria2c", f"--dir={self.dir}", f"--log={self.log}", "--log-level=debug",
             "--console-log-level=error", "--summary-interval=0", "--enable-dht=false",
             "--enable-dht6=false", "--bt-enable-lpd=false", "--enable-peer-exchange=false",
             "--check-integrity=true", "--seed-ratio=0.0", "--seed-time=30",
             f"--interface={address}", f"--listen-port={ports}", "--file-allocation=none",
             "--bt-tracker-interval=2", str(torrent)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def peer_log(self) -> str:
        """The log without the lines where aria2c lists every address of the interface it binds
        at start (those are not peers)."""
        return "\n".join(line for line in self.text().splitlines()
                         if "configured address" not in line)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Watcher:
    """Every TCP connection in the namespace (``ss``) and every peer each node's Transmission
    reports, sampled until stopped."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.pairs: set[tuple[str, str]] = set()
        self.peers: dict[str, set[str]] = {n: set() for n in lab.nodes}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Watcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(30)

    def met(self, a: str, b: str) -> bool:
        """Did addresses ``a`` and ``b`` ever hold a TCP connection, either way?"""
        return (a, b) in self.pairs or (b, a) in self.pairs

    def _run(self) -> None:
        while not self._stop.is_set():
            out = subprocess.run(["ss", "-tnH"], capture_output=True, text=True, check=False)
            for line in out.stdout.splitlines():
                cols = line.split()
                if len(cols) >= 5:
                    local, peer = cols[3].rsplit(":", 1)[0], cols[4].rsplit(":", 1)[0]
                    self.pairs.add((local, peer))
            for name, node in self.lab.nodes.items():
                if not node.transmission.running:
                    continue
                try:
                    got = node.transmission.client().get_torrents(arguments=["hashString", "peers"])
                except Exception:  # a daemon stopping between the check and the call
                    continue
                for t in got:
                    self.peers[name].update(str(p["address"]) for p in t.fields.get("peers") or [])
            self._stop.wait(0.2)
