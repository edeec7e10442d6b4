"""Observe an mpv player over its JSON IPC socket (``--input-ipc-server``).

Why IPC and not python-mpv: the daemon hosts the node's player in-process
(``controller.player.host``), and python-mpv cannot attach to a player it did not create. The
IPC socket is the one view every process shares: ``tva status --node`` in another process, the
daemon itself, and an mpv the user started by hand all answer the same protocol, so the
observer has exactly one backend.

The protocol is newline-delimited JSON: ``{"command": [...], "request_id": N}`` answered by
``{"request_id": N, "error": "success", "data": ...}``, with events (``{"event": ...}``)
interleaved. All requests of one observation are sent at once and the answers collected by id;
reads are bounded (line length, message count, one deadline), so a stuck or hostile peer costs
at most ``timeout`` seconds. A player that cannot be reached gives
``PlayerStatus(reachable=False, error=...)``, never an idle player.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType

from controller.errors import AuthError, PermanentError, TvaError, UnreachableError
from schemas.observed import PlayerStatus

__all__ = [
    "PLAYBACK_PROPERTIES",
    "MpvIpc",
    "PlayerProtocolError",
    "Reply",
    "observe_player",
]

PLAYBACK_PROPERTIES = ("path", "time-pos", "duration", "pause", "idle-active")
"""What one observation asks for, besides the current values of the device's options."""

MAX_LINE = 1 << 20
"""Longest message accepted from the player (bytes); longer means it is not mpv talking."""

MAX_MESSAGES = 10_000
"""Most messages read while waiting for the answers (events are skipped, but not forever)."""

_SUCCESS = "success"

Scalar = str | int | float | bool


class PlayerProtocolError(PermanentError):
    """The peer on the socket does not speak mpv's JSON IPC protocol."""


@dataclass(frozen=True)
class Reply:
    """One answer: ``error`` is mpv's word for the outcome (``"success"`` when it worked)."""

    error: str
    data: object = None

    @property
    def ok(self) -> bool:
        return self.error == _SUCCESS


class MpvIpc:
    """A short-lived connection to one player's IPC socket."""

    def __init__(self, path: str, *, timeout: float = 2.0) -> None:
        self.path = path
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._buf = b""
        self._next_id = 1

    def __enter__(self) -> MpvIpc:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
        except (FileNotFoundError, ConnectionRefusedError) as e:
            sock.close()
            raise UnreachableError(f"no player listens on {self.path}") from e
        except PermissionError as e:
            sock.close()
            raise AuthError(
                f"not allowed to open the player socket {self.path}; "
                "run as the user that runs the player"
            ) from e
        except OSError as e:
            sock.close()
            raise UnreachableError(f"cannot connect to the player at {self.path}: {e}") from e
        self._sock = sock

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def request(self, commands: Sequence[Sequence[Scalar]]) -> list[Reply]:
        """Send every command at once; return their replies in the same order."""
        if self._sock is None:
            raise UnreachableError(f"not connected to the player at {self.path}")
        ids = list(range(self._next_id, self._next_id + len(commands)))
        self._next_id += len(commands)
        payload = b"".join(
            json.dumps({"command": list(cmd), "request_id": rid}).encode() + b"\n"
            for rid, cmd in zip(ids, commands, strict=True)
        )
        deadline = time.monotonic() + self.timeout
        try:
            self._sock.sendall(payload)
        except OSError as e:
            raise UnreachableError(f"the player at {self.path} closed the connection") from e
        wanted = set(ids)
        replies: dict[int, Reply] = {}
        for _ in range(MAX_MESSAGES):
            if not wanted:
                return [replies[rid] for rid in ids]
            msg = self._read_message(deadline)
            rid = msg.get("request_id")
            if isinstance(rid, int) and rid in wanted:
                wanted.discard(rid)
                replies[rid] = Reply(str(msg.get("error", "")), msg.get("data"))
            # anything else is an event or an answer to someone else's request: skip it
        if not wanted:
            return [replies[rid] for rid in ids]
        raise PlayerProtocolError(
            f"the player at {self.path} sent {MAX_MESSAGES} messages without answering"
        )

    def _read_message(self, deadline: float) -> dict[str, object]:
        assert self._sock is not None
        while b"\n" not in self._buf:
            if len(self._buf) > MAX_LINE:
                raise PlayerProtocolError(
                    f"the peer on {self.path} sent a line longer than {MAX_LINE} bytes"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise UnreachableError(f"the player at {self.path} did not answer in time")
            self._sock.settimeout(remaining)
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError as e:
                raise UnreachableError(
                    f"the player at {self.path} did not answer within {self.timeout} s"
                ) from e
            except OSError as e:
                raise UnreachableError(f"reading from the player at {self.path}: {e}") from e
            if not chunk:
                raise UnreachableError(f"the player at {self.path} closed the connection")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        if len(line) > MAX_LINE:
            raise PlayerProtocolError(
                f"the peer on {self.path} sent a line longer than {MAX_LINE} bytes"
            )
        try:
            msg = json.loads(line)
        except ValueError as e:
            raise PlayerProtocolError(f"the peer on {self.path} sent something not JSON") from e
        if not isinstance(msg, dict):
            raise PlayerProtocolError(f"the peer on {self.path} sent a non-object message")
        return msg


def observe_player(
    socket_path: str, options: Iterable[str] = (), *, timeout: float = 2.0
) -> PlayerStatus:
    """What the player on ``socket_path`` has open, where it is, and its ``options`` values.

    ``options`` are the mpv option names the device's settings name; the status reports their
    current values (``options/NAME``) so the planner can tell which settings differ. An option
    mpv does not know is left out. Never raises for an unreachable or broken player.
    """
    names = list(dict.fromkeys(options))
    try:
        with MpvIpc(socket_path, timeout=timeout) as ipc:
            return _observe(ipc, names)
    except TvaError as e:
        return PlayerStatus(reachable=False, error=str(e))


def _observe(ipc: MpvIpc, names: list[str]) -> PlayerStatus:
    props = [*PLAYBACK_PROPERTIES, *(f"options/{n}" for n in names)]
    replies = ipc.request([["get_property", p] for p in props])
    # A property mpv cannot give now (nothing open: "property unavailable") reads as None.
    play = dict(zip(PLAYBACK_PROPERTIES, replies, strict=False))

    values: dict[str, Scalar] = {}
    as_text: list[str] = []
    for name, reply in zip(names, replies[len(PLAYBACK_PROPERTIES) :], strict=True):
        if not reply.ok:
            continue
        if isinstance(reply.data, str | int | float | bool):
            values[name] = reply.data
        else:  # lists and maps (af, vf, msg-level): compare by mpv's own text form
            as_text.append(name)
    if as_text:
        text = ipc.request([["get_property_string", f"options/{n}"] for n in as_text])
        for name, reply in zip(as_text, text, strict=True):
            if reply.ok and isinstance(reply.data, str):
                values[name] = reply.data

    path = _str(play["path"])
    idle = play["idle-active"].data if play["idle-active"].ok else path is None
    return PlayerStatus(
        reachable=True,
        path=path,
        position=_num(play["time-pos"]),
        duration=_num(play["duration"]),
        paused=play["pause"].data if isinstance(play["pause"].data, bool) else None,
        idle=bool(idle),
        options=dict(sorted(values.items())),
    )


def _str(reply: Reply) -> str | None:
    return reply.data if reply.ok and isinstance(reply.data, str) else None


def _num(reply: Reply) -> float | None:
    data = reply.data
    if reply.ok and isinstance(data, int | float) and not isinstance(data, bool):
        return float(data)
    return None
