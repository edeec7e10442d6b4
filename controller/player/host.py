"""Host the node's mpv player inside the controller daemon, through libmpv (python-mpv).

Why in-process: python-mpv embeds libmpv and cannot attach to an mpv that is already running
(see docs/player.md), so on a node that runs the player service the daemon owns the player.
It opens mpv's JSON IPC server on a unix socket so that other processes (``tva status``, a
remote, the user's scripts) can see and drive the same player; ``controller.observe.player``
reads the player's state there, never through this object, so observation is identical for a
hosted player and for an mpv the user started with ``--input-ipc-server``.

Safety: player options come from the fleet repo, which is untrusted input. Only options on
``MPV_ALLOWED_OPTIONS`` reach mpv (``RefusedOption`` otherwise); the host itself pins the
options that would load code or user configuration (``config=no``, ``load-scripts=no``) and
owns ``idle`` and ``input-ipc-server``. Only absolute paths of local files are opened.

Watch progress: when a file plays to its end the host records its path once per load (in
``watched`` and through the ``on_watched`` hook, called on libmpv's event thread).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import stat
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import mpv

from controller.errors import PermanentError, UnreachableError
from controller.waiting import poll
from schemas.desired import MPV_ALLOWED_OPTIONS, MPV_REFUSED_OPTIONS, MpvValue, mpv_value_problem

__all__ = ["HEADLESS", "PlayerError", "PlayerHost", "RefusedOption", "check_option"]

log = logging.getLogger(__name__)

HEADLESS: Mapping[str, MpvValue] = {"vo": "null", "ao": "null"}
"""Null video and audio outputs: for tests and for nodes without a screen."""

_HOST_OWNED = frozenset({"idle", "input-ipc-server"})
"""Options the host sets itself; fleet settings may not change them."""

_PINNED: Mapping[str, MpvValue] = {"config": "no", "load-scripts": "no", "idle": "yes"}
"""Set on every hosted player: no user config files, no auto-loaded scripts, stay alive idle."""

_DEFAULTS: Mapping[str, MpvValue] = {"keep-open": "yes"}
"""Defaults the device's settings may override: hold the last frame at the end of a file."""

_SOCKET_WAIT = 5.0
"""Seconds to wait for mpv to open its IPC socket after start."""

_MAX_SOCKET_PATH = 107
"""A unix socket path is at most 107 bytes on Linux (sun_path[108] with its NUL)."""


class PlayerError(PermanentError):
    """mpv refused a command or an option value."""


class RefusedOption(PlayerError):
    """An option that is not on tva's allow-list (or that could run code)."""


def check_option(name: str, value: MpvValue | None = None) -> None:
    """Raise ``RefusedOption`` unless ``name`` is an option the player settings may set, to
    ``value`` when given (``schemas.desired.mpv_value_problem``: no file outputs, no paths)."""
    if name in MPV_REFUSED_OPTIONS:
        raise RefusedOption(f"mpv option {name!r} is refused: it loads or runs code")
    if name in _HOST_OWNED:
        raise RefusedOption(f"mpv option {name!r} is set by the player host itself")
    if name not in MPV_ALLOWED_OPTIONS:
        raise RefusedOption(
            f"mpv option {name!r} is not on tva's allow-list (see docs/reference.md#player)"
        )
    if value is not None and (problem := mpv_value_problem(name, value)) is not None:
        raise RefusedOption(problem)


class PlayerHost:
    """One embedded mpv, serving its JSON IPC protocol on ``socket_path``.

    ``options`` are the device's player settings (each checked with ``check_option``, except
    that ``idle`` is overridden); ``headless`` forces null video and audio outputs over them.
    Use as a context manager, or call ``start()`` and ``close()``.
    """

    def __init__(
        self,
        socket_path: str | os.PathLike[str],
        options: Mapping[str, MpvValue] | None = None,
        *,
        headless: bool = False,
        on_watched: Callable[[str], None] | None = None,
    ) -> None:
        self.socket_path = os.fspath(socket_path)
        if len(os.fsencode(self.socket_path)) > _MAX_SOCKET_PATH:
            raise PlayerError(
                f"player socket path {self.socket_path!r} is longer than {_MAX_SOCKET_PATH} "
                "bytes, the limit for a unix socket; choose a shorter path"
            )
        self.options = dict(options or {})
        for name, value in self.options.items():
            check_option(name, value)
        self.headless = headless
        self.on_watched = on_watched
        self._mpv: Any = None
        self._lock = threading.Lock()
        self._watched: list[str] = []
        self._current: str | None = None
        self._recorded = False

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Create the player and its IPC socket. Starting a running host does nothing."""
        if self._mpv is not None:
            return
        self._claim_socket()
        opts: dict[str, MpvValue] = {**_DEFAULTS, **self.options}
        if self.headless:
            opts.update(HEADLESS)
        opts.update(_PINNED)
        opts["input-ipc-server"] = self.socket_path
        try:
            player = mpv.MPV(**opts)
        except (AttributeError, TypeError, ValueError, RuntimeError, SystemError) as e:
            raise PlayerError(f"mpv refused the player settings: {_mpv_reason(e)}") from e
        except OSError as e:
            raise PlayerError(f"libmpv could not be loaded: {e}") from e
        player.observe_property("path", self._on_path)
        player.observe_property("eof-reached", self._on_eof_reached)
        player.register_event_callback(self._on_event)
        self._mpv = player
        # mpv opens the socket from its own IPC thread, shortly after initialisation.
        if not poll(lambda: _is_socket(self.socket_path), bool, timeout=_SOCKET_WAIT,
                    interval=0.01):
            self.close()
            raise PlayerError(
                f"mpv started but did not open its IPC socket at {self.socket_path}; "
                "check that the directory is writable"
            )

    def close(self) -> None:
        """Shut the player down and remove its socket. Closing a stopped host does nothing."""
        player, self._mpv = self._mpv, None
        if player is None:
            return
        player.terminate()
        if _is_socket(self.socket_path):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.socket_path)

    def __enter__(self) -> PlayerHost:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def running(self) -> bool:
        return self._mpv is not None and not self._mpv.core_shutdown

    # ------------------------------------------------------------------ control

    def set_option(self, name: str, value: MpvValue) -> None:
        """Change one option of the running player (allow-listed options only)."""
        check_option(name, value)
        self._command(lambda p: p.__setitem__(name, value), f"set {name}={value!r}")
        self.options[name] = value

    def load(self, path: str | os.PathLike[str]) -> None:
        """Open a local file, replacing what is open. Returns at once; playback starts async."""
        p = Path(path)
        if not p.is_absolute():
            raise PlayerError(f"the player only opens absolute paths, not {os.fspath(path)!r}")
        if not p.is_file():
            raise PlayerError(f"cannot play {os.fspath(path)!r}: no such file")
        self._command(lambda m: m.loadfile(os.fspath(p)), f"open {p}")

    def stop(self) -> None:
        """Stop playback and close the file; the player stays up, idle."""
        self._command(lambda m: m.stop(), "stop")

    def pause(self, paused: bool = True) -> None:
        self._command(lambda m: setattr(m, "pause", paused), "pause" if paused else "resume")

    def seek(self, position: float) -> None:
        """Seek to ``position`` seconds from the start, exactly (not to a keyframe)."""
        self._command(lambda m: m.seek(position, "absolute", "exact"), f"seek to {position}")

    def current_path(self) -> str | None:
        """What the player has open right now (None when idle); asked before any removal."""
        player = self._mpv
        if player is None:
            return None
        try:
            value = player.path
        except Exception:  # cannot ask: answer as if the last file were still open
            with self._lock:
                return self._current
        return os.fsdecode(value) if isinstance(value, str | bytes) else None

    # ------------------------------------------------------------------ watch progress

    @property
    def watched(self) -> list[str]:
        """Paths played to their end since the host started, oldest first, each once."""
        with self._lock:
            return list(self._watched)

    def _on_path(self, _name: str, value: object) -> None:
        if isinstance(value, str | bytes):
            with self._lock:
                self._current = os.fsdecode(value)

    def _on_eof_reached(self, _name: str, value: object) -> None:
        # keep-open=yes (the default here): the file stays open at its end and mpv raises
        # eof-reached instead of sending end-file.
        if value is True:
            self._record()

    def _on_event(self, event: Any) -> None:
        eid = event.event_id.value
        if eid == mpv.MpvEventID.START_FILE:
            with self._lock:
                self._recorded = False
        elif eid == mpv.MpvEventID.END_FILE and event.data.reason == mpv.MpvEventEndFile.EOF:
            # keep-open=no: the file ends and closes.
            self._record()

    def _record(self) -> None:
        with self._lock:
            path = self._current
            if path is None or self._recorded:
                return
            self._recorded = True
            if path not in self._watched:
                self._watched.append(path)
        if self.on_watched is not None:
            try:
                self.on_watched(path)
            except Exception:
                log.exception("watch-progress hook failed for %s", path)

    # ------------------------------------------------------------------ internals

    def _command(self, do: Callable[[Any], object], what: str) -> None:
        player = self._mpv
        if player is None:
            raise UnreachableError(f"cannot {what}: the player is not running")
        try:
            do(player)
        except mpv.ShutdownError as e:
            raise UnreachableError(f"cannot {what}: the player has shut down") from e
        except (AttributeError, TypeError, ValueError, RuntimeError, SystemError) as e:
            raise PlayerError(f"mpv refused to {what}: {_mpv_reason(e)}") from e

    def _claim_socket(self) -> None:
        """Make the socket's directory (private) and clear a stale socket left by a crash.

        A socket another player still answers on is left alone: two hosts on one socket
        would each think they own the player.
        """
        parent = os.path.dirname(self.socket_path) or "."
        os.makedirs(parent, mode=0o700, exist_ok=True)
        if not os.path.lexists(self.socket_path):
            return
        if not _is_socket(self.socket_path):
            raise PlayerError(f"{self.socket_path} exists and is not a socket; remove it")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(1.0)
            try:
                s.connect(self.socket_path)
            except OSError:
                os.unlink(self.socket_path)  # nobody listens: stale
                return
        raise PlayerError(f"another player already serves {self.socket_path}")


def _is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def _mpv_reason(e: BaseException) -> str:
    """python-mpv's exceptions carry (message, code, (handle, name, value)): say which option."""
    if not e.args:
        return type(e).__name__
    reason = str(e.args[0])
    call = e.args[2] if len(e.args) > 2 else None
    if isinstance(call, tuple) and len(call) == 3 and all(isinstance(x, bytes) for x in call[1:]):
        name = os.fsdecode(call[1]).removeprefix("options/")
        reason += f" ({name}={os.fsdecode(call[2])!r})"
    return reason
