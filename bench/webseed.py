"""Benchmark: one Transmission fetching an item from web seeds, by server and lanes (issue 18).

    .venv/bin/python bench/webseed.py [--size-mib 200] [--runs tva:1:0,tva:3:4096,sendfile:3:4096]
                                      [--versions 3.00,4.1] [--settings JSON ...]

Two addresses in a private network namespace: a web seed server on the first (its own process,
as on a holder), a fresh ``transmission-daemon`` (each of ``--versions``: 3.00, 4.1) on the
second for every run. A run is ``SERVER:URLS:CAP_KIB``: ``tva`` is the controller's own app (``controller.daemon.api``, its
``/v1/seed`` route with ``capped_range``), ``sendfile`` a plain threaded server writing with
``os.sendfile``; ``URLS`` web seed URLs of the same server go into the metainfo (lanes); each
answer carries at most ``CAP_KIB`` KiB (0: whole pieces, as before the cap). A ``copy-`` server
(``copy-sendfile``, ``copy-tva``) has the benchmark itself copy the item from that server
(``URLS`` streams of ``CAP_KIB`` ranges) and Transmission then verify it, the rate being the
size over first byte -> verified. Each run reports the
plain copy (``curl``, same link, just before), add -> first byte, the transfer rate and its ratio
to the copy, and CPU seconds of Transmission and of the server. A run in which Transmission's
RPC stops answering for 60 s is reported as ``hung`` (Transmission 3.00's web seed deadlock:
controller/seeder.py) and its daemon killed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controller.act.metainfo import with_webseeds
from controller.lab.netns import run_isolated
from controller.lab.transmission import (
    TRANSMISSION_3,
    VERSIONS,
    TransmissionDaemon,
    free_port,
    make_payload_torrent,
)
from controller.waiting import wait_for

HOLDER, FETCHER = "10.77.0.1", "10.77.0.2"


def serve(kind: str, port: int, root: str, cap_kib: int) -> None:
    """The server process: ``/v1/seed/{infohash}/{lane}/{file}`` with ranges."""
    cap = cap_kib << 10
    if kind == "tva":
        from controller import seeder
        from controller.daemon.api import ApiServer, create_app
        from controller.daemon.metrics import Metrics

        seeder.MAX_RANGE = cap or 1 << 40

        class Backend:
            def seed_file(self, infohash: str, capability: str, relative: str) -> str:
                return os.path.join(root, relative)

        api = ApiServer(create_app(Backend(), lambda: None, Metrics()),  # type: ignore[arg-type]
                        HOLDER, port)
        api.start()
        while True:
            time.sleep(3600)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            fd = os.open(os.path.join(root, self.path.rsplit("/", 1)[1]), os.O_RDONLY)
            try:
                size = os.fstat(fd).st_size
                m = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
                start, end = (int(m[1]), int(m[2]) if m[2] else size - 1) if m else (0, size - 1)
                if cap and m:  # a plain GET (the baseline's curl) gets the whole file
                    end = min(end, start + cap - 1)
                self.send_response(206 if m else 200)
                if m:
                    self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
                left = end - start + 1
                self.send_header("Content-Length", str(left))
                self.end_headers()
                self.wfile.flush()
                while left:
                    sent = os.sendfile(self.connection.fileno(), fd, start, left)
                    start, left = start + sent, left - sent
            finally:
                os.close(fd)

    ThreadingHTTPServer((HOLDER, port), Handler).serve_forever()


def copy_ranges(url: str, dest: Path, size: int, streams: int, chunk: int) -> float:
    """Copy ``url`` into ``dest`` with ``streams`` kept-alive connections, ``chunk`` bytes a
    range, written in place; returns the moment the first byte was written."""
    import http.client
    import threading
    from urllib.parse import urlsplit

    u = urlsplit(url)
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.ftruncate(fd, size)
    starts = list(range(0, size, chunk))
    lock = threading.Lock()
    first: list[float] = []

    def worker() -> None:
        conn = http.client.HTTPConnection(u.hostname or "", u.port, timeout=60)
        buf = bytearray(chunk)
        while True:
            with lock:
                if not starts:
                    break
                start = starts.pop(0)
            end = min(start + chunk, size) - 1
            conn.request("GET", u.path, headers={"Range": f"bytes={start}-{end}"})
            resp = conn.getresponse()
            view, got = memoryview(buf), 0
            while got < end - start + 1:
                n = resp.readinto(view[got:end - start + 1])
                if not n:
                    raise RuntimeError("short answer")
                got += n
            resp.read()
            os.pwrite(fd, view[:got], start)
            if not first:
                first.append(time.monotonic())
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    os.close(fd)
    return first[0]


def cpu_seconds(pid: int) -> float:
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        fields = Path(f"/proc/{pid}/task/{task}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def one_run(root: Path, meta: bytes, infohash: str, size_mib: int, spec: str,
            version: str, settings: dict[str, Any]) -> dict[str, Any]:
    kind, lanes, cap = spec.split(":")
    port = free_port(HOLDER)
    server = subprocess.Popen([sys.executable, __file__, "--serve", kind.removeprefix("copy-"), str(port),
                               str(root / "src"), cap])
    daemon = TransmissionDaemon(root=root / "fetch", bind_ip=FETCHER, settings={"encryption": 2, **settings},
                                version=version)
    try:
        base = f"http://{HOLDER}:{port}/v1/seed/{infohash}"  # /{lane}/item.bin
        wait_for(lambda: subprocess.run(["curl", "-sf", "-o", "/dev/null", "-r", "0-0",
                                         f"{base}/0/item.bin"]).returncode == 0, 30, 0.1, "server")
        os.sync()
        start = time.monotonic()
        subprocess.run(["curl", "-sS", "--fail", "--interface", FETCHER, "-o",
                        str(root / "copy.bin"), f"{base}/0/item.bin"], check=True, timeout=600)
        copy = time.monotonic() - start
        (root / "copy.bin").unlink()
        os.sync()
        daemon.start()
        client = daemon.client()
        client.timeout = 60
        tr0, sv0 = cpu_seconds(daemon.process.pid), cpu_seconds(server.pid)  # type: ignore[union-attr]
        added = time.monotonic()
        first = None
        if kind.startswith("copy-"):
            # The bytes copied outside Transmission, then verified by it (docs/performance.md).
            first = copy_ranges(f"{base}/0/item.bin", daemon.download_dir / "item.bin",
                                size_mib << 20, int(lanes), (int(cap) or 4096) << 10)
            client.add_torrent(meta, download_dir=str(daemon.download_dir), paused=True)
            client.verify_torrent([infohash])
            while client.get_torrents([infohash], arguments=["haveValid"])[0].fields[
                    "haveValid"] < size_mib << 20:
                time.sleep(0.02)
        else:
            client.add_torrent(with_webseeds(meta, [f"{base}/{i}/" for i in range(int(lanes))]),
                               download_dir=str(daemon.download_dir))
            while True:
                try:
                    done = client.get_torrents([infohash], arguments=["hashString", "percentDone"])[0]
                except Exception:  # no answer for 60 s: the hang
                    return {"run": spec, "version": version, "settings": settings, "hung": True}
                if first is None and done.fields["percentDone"] > 0:
                    first = time.monotonic()
                if done.fields["percentDone"] >= 1:
                    break
                time.sleep(0.05)
        end = time.monotonic()
        assert first is not None
        rate, copy_rate = size_mib / (end - first), size_mib / copy
        return {"run": spec, "version": version, "settings": settings, "copy_mibs": round(copy_rate, 1), "add_first": round(first - added, 2),
                "mibs": round(rate, 1), "ratio": round(rate / copy_rate, 2),
                "transmission_cpu": round(cpu_seconds(daemon.process.pid) - tr0, 2),  # type: ignore[union-attr]
                "server_cpu": round(cpu_seconds(server.pid) - sv0, 2)}
    finally:
        if daemon.process is not None:
            daemon.process.kill()
            daemon.process.wait()
            daemon.process = None
        shutil.rmtree(daemon.root, ignore_errors=True)
        server.terminate()
        server.wait()


def story(root_dir: str, size_mib: int, runs: list[str], versions: list[str],
          variants: list[dict[str, Any]]) -> list[dict[str, Any]]:
    root = Path(root_dir)
    shutil.rmtree(root, ignore_errors=True)
    torrent, infohash, _ = make_payload_torrent(root / "src", size_mib << 20, name="item.bin")
    meta = torrent.read_bytes()
    out = []
    for spec, version, settings in [(spec, v, s) for spec in runs for v in versions
                                    for s in variants]:
        r = one_run(root, meta, infohash, size_mib, spec, version, settings)
        print(json.dumps(r), flush=True)
        out.append(r)
    return out


def main() -> None:
    if sys.argv[1:2] == ["--serve"]:
        serve(sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]))
        return
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=200)
    ap.add_argument("--runs", default="tva:1:0,tva:1:4096,tva:3:4096,sendfile:3:4096")
    ap.add_argument("--versions", default=TRANSMISSION_3,
                    help=f"Transmission versions, each run of each in turn ({', '.join(VERSIONS)})")
    ap.add_argument("--settings", nargs="+", default=["{}"], metavar="JSON",
                    help="variants of the fetching Transmission's settings.json, each run of "
                         'each in turn, e.g. \'{"cache-size-mb": 64}\'')
    ap.add_argument("--root", default="/tmp/tva-bench-webseed")
    args = ap.parse_args()
    run_isolated(story, [HOLDER, FETCHER], args.root, args.size_mib, args.runs.split(","),
                 args.versions.split(","), [json.loads(v) for v in args.settings], timeout=3600)


if __name__ == "__main__":
    main()
