"""Real ``transmission-daemon`` instances for the lab, the demo, the tests and the benchmarks.

Each :class:`TransmissionDaemon` gets its own config dir, download dir and ports, runs in the
foreground (``-f``) and is stopped with SIGTERM. Settings follow ../shared/LAB.md: DHT, LPD, PEX,
uTP and port forwarding off, so a daemon only ever talks to what it is pointed at.

Two versions: 3.00 is the host's (Debian 12); 4.1 runs from a Debian 13 root that
``scripts/setup`` builds with debootstrap (:data:`TRANSMISSION4_ROOT`). The 4.1 daemon is
started in a private mount namespace of its own (``unshare -m``): the daemon's directory is
bind-mounted at the same path inside the root, so every path under it (config, downloads, a
free-space probe) means the same file inside and out, and the mounts vanish with the process.
Then ``chroot ROOT /usr/bin/transmission-daemon`` (an absolute path: a wrapper on ``PATH`` would
be found again inside the root). Each ``exec`` keeps the pid, so the ``Popen`` pid is the daemon
itself and SIGTERM reaches it. Started inside a network namespace, it stays in it. This needs
root (mount, chroot): :func:`unavailable` says why a version cannot run here.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torf
import transmission_rpc
from fastbencode import bencode  # type: ignore[attr-defined]

from controller.waiting import wait_for

DAEMON = "transmission-daemon"
RPC_PATH = "/transmission/rpc"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0

TRANSMISSION_3 = "3.00"
TRANSMISSION_4 = "4.1"
VERSIONS: tuple[str, ...] = (TRANSMISSION_3, TRANSMISSION_4)
"""The Transmission versions the lab can start: the host's, and the Debian 13 root's."""

TRANSMISSION4_ROOT = Path(
    os.environ.get("TVA_TRANSMISSION4_ROOT", "/var/cache/tva/trixie-transmission")
)
"""The Debian 13 root holding Transmission 4.1 (``scripts/setup`` builds it; same variable)."""

_CHROOTED = (
    'R=$1; D=$2; shift 2; mkdir -p "$R$D" && mount --bind "$D" "$R$D" || exit 125; '
    '(mountpoint -q "$R/proc" || mount -t proc proc "$R/proc") 2>/dev/null; '
    'exec chroot "$R" /usr/bin/transmission-daemon "$@"'
)
"""Run by ``unshare -m``: bind the daemon's directory into the root, /proc if it can, chroot."""

_T = TypeVar("_T")

__all__ = [
    "TRANSMISSION4_ROOT",
    "TRANSMISSION_3",
    "TRANSMISSION_4",
    "VERSIONS",
    "TransmissionDaemon",
    "free_port",
    "make_payload_torrent",
    "payload_metainfo",
    "piece_size",
    "system_root",
    "unavailable",
]


def system_root(version: str) -> Path | None:
    """The root a ``version`` daemon runs in: None for the host's (3.00)."""
    if version == TRANSMISSION_3:
        return None
    if version == TRANSMISSION_4:
        return TRANSMISSION4_ROOT
    raise ValueError(f"unknown Transmission version {version!r}; the lab has {', '.join(VERSIONS)}")


def unavailable(version: str) -> str | None:
    """None when a ``version`` daemon can start on this machine; else why not (for a skip)."""
    root = system_root(version)
    if root is None:
        return None if shutil.which(DAEMON) else f"{DAEMON} is not installed (scripts/setup)"
    if not (root / "usr/bin" / DAEMON).exists():
        return (f"no Debian 13 root with Transmission {version} at {root}: run scripts/setup "
                "as root (it builds one with debootstrap)")
    if os.geteuid() != 0:
        return f"Transmission {version} runs chrooted in {root}, which needs root"
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    return None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago (the kernel picks it)."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class TransmissionDaemon:
    """One ``transmission-daemon`` with its own directory, ports and (optional) RPC auth.

    ``root`` holds ``config/`` (settings.json, resume files, a log) and ``downloads/``.
    Ports are picked once, so a restarted daemon answers on the same URL. ``version`` is one of
    :data:`VERSIONS` (see the module docstring for how 4.1 runs).
    """

    root: Path
    version: str = TRANSMISSION_3
    bind_ip: str = "127.0.0.1"
    username: str | None = None
    password: str | None = None
    rpc_whitelist: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    rpc_port: int = 0
    peer_port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root).absolute()
        system_root(self.version)  # an unknown version fails here, not at start
        self.config_dir.mkdir(parents=True, exist_ok=True)
        self.download_dir.mkdir(parents=True, exist_ok=True)
        if not self.rpc_port:
            self.rpc_port = free_port(self.bind_ip)
        if not self.peer_port:
            self.peer_port = free_port(self.bind_ip)

    @property
    def config_dir(self) -> Path:
        return self.root / "config"

    @property
    def download_dir(self) -> Path:
        return self.root / "downloads"

    @property
    def log_path(self) -> Path:
        return self.root / "daemon.log"

    @property
    def url(self) -> str:
        """The RPC URL, without credentials (as a device's ``addresses.transmission_rpc``)."""
        return f"http://{self.bind_ip}:{self.rpc_port}{RPC_PATH}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def settings_json(self) -> dict[str, Any]:
        s: dict[str, Any] = {
            "rpc-enabled": True,
            "rpc-port": self.rpc_port,
            "rpc-bind-address": self.bind_ip,
            "rpc-host-whitelist-enabled": False,
            "rpc-whitelist-enabled": self.rpc_whitelist is not None,
            "rpc-whitelist": self.rpc_whitelist or "127.0.0.1",
            "rpc-authentication-required": self.username is not None,
            "rpc-username": self.username or "",
            "rpc-password": self.password or "",
            "peer-port": self.peer_port,
            "peer-port-random-on-start": False,
            "bind-address-ipv4": self.bind_ip,
            "bind-address-ipv6": "::1",
            "download-dir": str(self.download_dir),
            "incomplete-dir-enabled": False,
            "watch-dir-enabled": False,
            "dht-enabled": False,
            "lpd-enabled": False,
            "pex-enabled": False,
            "utp-enabled": False,
            "port-forwarding-enabled": False,
            "blocklist-enabled": False,
            "download-queue-enabled": False,
            "seed-queue-enabled": False,
            "queue-stalled-enabled": False,
            "ratio-limit-enabled": False,
            "idle-seeding-limit-enabled": False,
            "start-added-torrents": True,
            "message-level": 2,
        }
        s.update(self.settings)
        return s

    def start(self, timeout: float = START_TIMEOUT) -> TransmissionDaemon:
        """Write settings.json, start the daemon and wait until its RPC answers."""
        if self.running:
            return self
        (self.config_dir / "settings.json").write_text(json.dumps(self.settings_json(), indent=2))
        log = self.log_path.open("ab")
        try:
            self.process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        finally:
            log.close()
        try:
            wait_for(self._rpc_answers, timeout=timeout, interval=0.05, what=f"RPC at {self.url}")
        except BaseException:
            self.stop()
            raise
        return self

    def command(self) -> list[str]:
        """The daemon's command line (``--log-error``: 3.00 knows no ``--log-level``)."""
        args = ["-f", "-g", str(self.config_dir), "--log-error"]
        root = system_root(self.version)
        if root is None:
            return [DAEMON, *args]
        return ["unshare", "-m", "--propagation", "private", "sh", "-c", _CHROOTED, "sh",
                str(root), str(self.root), *args]

    def tool(self, name: str) -> list[str]:
        """The command prefix for one of this version's tools, e.g. ``transmission-remote``."""
        root = system_root(self.version)
        return [name] if root is None else ["chroot", str(root), f"/usr/bin/{name}"]

    def _rpc_answers(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(
                f"transmission-daemon exited with {self.process and self.process.returncode}; "
                f"log: {self.log_path.read_text(errors='replace')[-2000:]}"
            )
        conn = http.client.HTTPConnection(self.bind_ip, self.rpc_port, timeout=2)
        try:
            conn.request("POST", RPC_PATH, body=b"{}")
            # 409 (session id needed), 401 (auth) and 403 (whitelist) all mean "up".
            return conn.getresponse().status in {200, 401, 403, 409}
        except OSError:
            return False
        finally:
            conn.close()

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM and wait (the daemon saves its resume files); SIGKILL only if it hangs."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        self._remove_mount_point()

    def _remove_mount_point(self) -> None:
        """Remove the empty directories ``start`` made inside the root for the bind mount."""
        root = system_root(self.version)
        if root is None:
            return
        inside = root / self.root.relative_to("/")
        while inside != root and inside.parent != root:  # keep the root's own top-level dirs
            try:
                inside.rmdir()
            except OSError:  # not empty, or still a mount point of a daemon that runs
                return
            inside = inside.parent

    def client(self, timeout: float = START_TIMEOUT) -> transmission_rpc.Client:
        """A transmission-rpc client; retried until the daemon answers (it connects eagerly)."""

        def connect() -> transmission_rpc.Client | None:
            try:
                return transmission_rpc.Client(
                    host=self.bind_ip,
                    port=self.rpc_port,
                    username=self.username,
                    password=self.password,
                    timeout=30,
                )
            except transmission_rpc.TransmissionConnectError:
                return None

        return wait_for(connect, timeout=timeout, what=self.url)

    def __enter__(self) -> TransmissionDaemon:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


MiB = 1 << 20


def piece_size(size: int) -> int:
    """The piece size of a torrent the fleet makes: 4 MiB, 16 MiB from 64 MiB up.

    Transmission 3.00 fetches from a web seed one piece per HTTP request, four at a time, so
    the piece size sets the speed of a re-pin over HTTP (docs/performance.md#re-pins: 512 KiB
    pieces about 25 MB/s, 4 MiB about 100, 16 MiB about 250); over the peer path it does not
    matter. It is part of the info-hash: chosen once, when the torrent is made."""
    return 16 * MiB if size >= 64 * MiB else 4 * MiB


def make_payload_torrent(
    directory: Path,
    size: int,
    name: str | None = None,
    trackers: Sequence[str] = (),
    private: bool = False,
) -> tuple[Path, str, Path]:
    """Write ``size`` random bytes to ``directory/name`` and a torrent for them next to it
    (pieces of ``piece_size(size)``).

    Returns ``(torrent_path, infohash, data_path)``. Random content keeps every infohash unique.
    Put the data in a daemon's download dir (or copy it there) to have the torrent complete.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    name = name or f"payload-{secrets.token_hex(4)}.bin"
    data_path = directory / name
    data_path.write_bytes(os.urandom(size))
    t = torf.Torrent(
        path=data_path,
        trackers=list(trackers) or None,
        private=private or None,
        created_by=None,
        creation_date=None,
        piece_size=piece_size(size),
    )
    t.generate(threads=1)
    torrent_path = directory / f"{name}.torrent"
    t.write(torrent_path, overwrite=True)
    return torrent_path, str(t.infohash).lower(), data_path


def payload_metainfo(
    payload: bytes,
    name: str,
    trackers: Sequence[str] = (),
    piece_length: int = 16384,
) -> tuple[bytes, str]:
    """A single-file torrent's metainfo for ``payload``, built in memory; ``(bencoded, infohash)``.

    Much faster than torf for thousands of tiny torrents (the benchmark adds 10,000), and exact:
    the pieces are the real SHA-1s of ``payload``.
    """
    pieces = b"".join(
        hashlib.sha1(payload[i : i + piece_length]).digest()
        for i in range(0, max(len(payload), 1), piece_length)
    )
    info = {
        b"name": name.encode(),
        b"length": len(payload),
        b"piece length": piece_length,
        b"pieces": pieces,
    }
    meta: dict[bytes, Any] = {b"info": info}
    if trackers:
        meta[b"announce"] = trackers[0].encode()
        meta[b"announce-list"] = [[t.encode()] for t in trackers]
    infohash = hashlib.sha1(bencode(info)).hexdigest()
    return bencode(meta), infohash
