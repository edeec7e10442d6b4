"""Benchmark: observing a real Transmission daemon that holds many torrents.

    .venv/bin/python bench/observe.py [--torrents 10000] [--repeat 9] [--versions 3.00,4.1]

For each Transmission version (3.00 from the host, 4.1 from the Debian 13 root; see
controller/lab/transmission.py), one after the other, it starts a real ``transmission-daemon``
in a temporary directory and adds N torrents it makes
itself (16 KiB random payloads, one tracker each, metainfo built in memory, added paused and
without data, over RPC). Then, against the same daemon and interleaved so that every measurement
sees the same daemon state and machine load, it repeats:

- ``transmission-remote HOST:PORT -l`` (the reference listing, the same version's CLI);
- one full observation (``TransmissionObserver.observe_full``);
- start a handful of torrents, then one incremental observation (``incremental``);
- one full observation with tracker details for every torrent (``all_tracker_stats=True``).

Each is measured as wall time and as CPU time (the observer's or the CLI process's, plus the
daemon's, from ``/proc/PID/task/*/schedstat``); the CPU figures hold still on a loaded machine,
the wall figures do not. Medians are printed per version with the ratios the issue sets as
goals (full <= 1.2x the CLI listing, incremental <= 0.1x full), then each version's CPU figures
against the first one's.

Setup details: after adding, the daemon is restarted once so that it keeps its resume data and
does not check 10,000 torrents for data (about ten a second); the measurements start once the
daemon's 60-second "recently active" window has passed since that restart (every loaded torrent
counts as active meanwhile). ``scrape-paused-torrents-enabled`` is off so 10,000 paused torrents
do not keep the daemon busy scraping a tracker that does not exist.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from base64 import b64encode
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controller.lab.transmission import (
    VERSIONS,
    TransmissionDaemon,
    free_port,
    payload_metainfo,
    unavailable,
    wait_for,
)
from controller.observe.transmission import TransmissionObserver
from schemas.observed import TorrentState

PAYLOAD = 16 * 1024
TOUCHED = 5
WINDOW = 60.0  # Transmission's recently-active window, seconds
CHECKING = {TorrentState.check_pending, TorrentState.checking}
_T = TypeVar("_T")


class Meter:
    """Wall and CPU seconds of one operation: this process, its children, and the daemon."""

    def __init__(self, daemon_pid: int) -> None:
        self.tasks = Path(f"/proc/{daemon_pid}/task")

    def daemon_cpu(self) -> float:
        total = 0
        for task in self.tasks.iterdir():
            try:
                total += int((task / "schedstat").read_text().split()[0])
            except (OSError, IndexError, ValueError):
                continue  # a thread that just ended
        return total / 1e9

    @staticmethod
    def children_cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    def measure(self, run: Callable[[], _T]) -> tuple[float, float, _T]:
        cpu0 = time.process_time() + self.children_cpu() + self.daemon_cpu()
        wall0 = time.perf_counter()
        result = run()
        wall = time.perf_counter() - wall0
        cpu = time.process_time() + self.children_cpu() + self.daemon_cpu() - cpu0
        return wall, cpu, result


def add_torrents(daemon: TransmissionDaemon, count: int) -> list[str]:
    """Add ``count`` paused torrents over RPC; returns their infohashes."""
    client = daemon.client()
    tracker = f"http://127.0.0.1:{free_port()}/announce"  # nothing listens: paused, never asked
    hashes = []
    for i in range(count):
        meta, infohash = payload_metainfo(os.urandom(PAYLOAD), f"item-{i:05d}.bin", [tracker])
        client._request(
            "torrent-add",  # type: ignore[arg-type]
            {"metainfo": b64encode(meta).decode(), "paused": True},
        )
        hashes.append(infohash)
        if (i + 1) % 1000 == 0:
            print(f"  added {i + 1}/{count}", file=sys.stderr)
    return hashes


def cli_listing(daemon: TransmissionDaemon) -> Callable[[], bytes]:
    def run() -> bytes:
        return subprocess.run(
            [*daemon.tool("transmission-remote"), f"{daemon.bind_ip}:{daemon.rpc_port}", "-l"],
            check=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        ).stdout

    return run


def measure(version: str, n: int, repeat: int) -> tuple[dict[str, list[tuple[float, float]]], float]:
    """The samples of every measurement against one ``version`` daemon, and the add time."""
    samples: dict[str, list[tuple[float, float]]] = {
        k: [] for k in ("cli", "full", "incremental", "all", "first")
    }
    with tempfile.TemporaryDirectory(prefix="tva-bench-") as tmp:
        daemon = TransmissionDaemon(
            Path(tmp),
            version=version,
            settings={"scrape-paused-torrents-enabled": False, "start-added-torrents": False},
        )
        with daemon:
            print(f"Transmission {version}: adding {n} torrents ...", file=sys.stderr)
            start = time.perf_counter()
            hashes = add_torrents(daemon, n)
            add_time = time.perf_counter() - start
            daemon.stop()
            daemon.start()
            restarted_at = time.monotonic()
            assert daemon.process is not None
            meter = Meter(daemon.process.pid)
            client = daemon.client()
            wait_for(lambda: client.session_stats().torrent_count == n, what="torrents loaded")

            observer = TransmissionObserver(daemon.url)
            wall, cpu, status = meter.measure(observer.full)
            samples["first"].append((wall, cpu))
            assert status.reachable and len(status.torrents) == n, status.error
            assert not any(t.state in CHECKING for t in status.torrents), "daemon is checking"
            listing = cli_listing(daemon)
            lines = listing().count(b"\n")
            assert lines >= n, f"transmission-remote listed {lines} lines"
            all_trackers = TransmissionObserver(daemon.url, all_tracker_stats=True)
            all_trackers.full()

            wait = WINDOW + 2 - (time.monotonic() - restarted_at)
            if wait > 0:
                print(f"waiting {wait:.0f}s for the recently-active window ...", file=sys.stderr)
                time.sleep(wait)

            for rep in range(repeat):
                wall, cpu, _ = meter.measure(listing)
                samples["cli"].append((wall, cpu))
                wall, cpu, observation = meter.measure(observer.observe_full)
                samples["full"].append((wall, cpu))
                touched: list[str | int] = list(hashes[rep * TOUCHED : (rep + 1) * TOUCHED])
                client.start_torrent(touched)
                step = partial(observer.incremental, observation.status)
                wall, cpu, incremental = meter.measure(step)
                samples["incremental"].append((wall, cpu))
                assert not incremental.full, "the incremental pass fell back to a full pass"
                assert set(touched) <= set(incremental.changed), incremental.changed
                client.stop_torrent(touched)
                wall, cpu, _ = meter.measure(all_trackers.full)
                samples["all"].append((wall, cpu))
    return samples, add_time


def report(version: str, samples: dict[str, list[tuple[float, float]]], n: int, repeat: int,
           add_time: float) -> dict[str, float]:
    """Print one version's table; its median wall ms per measurement."""
    wall_ms = {k: statistics.median(w for w, _ in v) * 1000 for k, v in samples.items()}
    cpu_ms = {k: statistics.median(c for _, c in v) * 1000 for k, v in samples.items()}
    print(f"Transmission {version}: {n} torrents (added in {add_time:.0f}s); "
          f"medians of {repeat} repetitions")
    print(f"{'':36} {'wall ms':>9} {'CPU ms':>9}  {'wall ratio':>10} {'CPU ratio':>10}")
    rows = [
        ("transmission-remote -l", "cli", "cli"),
        ("full observe", "full", "cli"),
        ("full observe, first pass (once)", "first", "cli"),
        ("full observe, all tracker stats", "all", "cli"),
        (f"incremental ({TOUCHED} torrents touched)", "incremental", "full"),
    ]
    for label, key, ref in rows:
        ratios = ""
        if key != ref:
            ratios = f"{wall_ms[key] / wall_ms[ref]:9.2f}x {cpu_ms[key] / cpu_ms[ref]:9.2f}x {ref}"
        print(f"{label:<36} {wall_ms[key]:9.1f} {cpu_ms[key]:9.1f}  {ratios}")
    return cpu_ms


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--torrents", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--versions", default=",".join(VERSIONS),
                        help=f"Transmission versions to measure, comma-separated ({', '.join(VERSIONS)})")
    args = parser.parse_args(argv)
    n, repeat = args.torrents, args.repeat
    versions = [v.strip() for v in args.versions.split(",") if v.strip()]
    for version in versions:
        if version not in VERSIONS:
            parser.error(f"unknown version {version!r}; known: {', '.join(VERSIONS)}")
        why = unavailable(version)
        if why is not None:
            print(f"Transmission {version} cannot run here: {why}", file=sys.stderr)
            return 1

    results = {v: measure(v, n, repeat) for v in versions}
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"machine: {machine}; load average at the end: {load}")
    cpu = {}
    for version, (samples, add_time) in results.items():
        print()
        cpu[version] = report(version, samples, n, repeat, add_time)
    print("\ngoals (each version against its own transmission-remote): full <= 1.2x CLI, "
          "incremental <= 0.1x full")
    if len(cpu) > 1:
        base, *others = versions
        for other in others:
            line = ", ".join(f"{key} {cpu[other][key] / cpu[base][key]:.2f}x"
                             for key in ("cli", "full", "incremental", "all"))
            print(f"CPU, Transmission {other} against {base}: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
