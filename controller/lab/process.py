"""A lab node's controller in a process of its own, as on a fleet node.

In-process controllers (``Daemon.start``: threads of the lab's process) share one interpreter
lock: a holder serving web seeds then competes with every other node's controller for it, which
no fleet node does. Benchmarks of speed run each controller in a forked child instead (forked,
not spawned: the child inherits what the benchmark set up, such as the peer-path-only switch).
The child reports its tracker token once and its pass count after every pass; ``stop`` asks it
to stop and waits, then kills.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event

from controller.daemon.daemon import Daemon, DaemonConfig
from controller.daemon.node import PassOutcome
from controller.errors import PermanentError

__all__ = ["STARTUP_SECONDS", "ControllerProcess"]

STARTUP_SECONDS = 60.0
"""How long a child may take to build its controller and report its token."""


class ControllerProcess:
    """One node's ``Daemon`` running in a child process; ``passes`` and ``token`` as a
    ``Daemon`` has them."""

    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        self.token = ""
        self._ctx = multiprocessing.get_context("fork")
        self._passes: Synchronized[int] = self._ctx.Value("i", 0)
        self._stop: Event = self._ctx.Event()
        self._proc: BaseProcess | None = None

    @property
    def passes(self) -> int:
        return int(self._passes.value)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    def start(self) -> None:
        parent, child = self._ctx.Pipe(duplex=False)
        self._proc = self._ctx.Process(target=_serve, args=(self.config, self._passes, self._stop,
                                                            child), name=f"tva-{self.config.node}")
        self._proc.start()
        child.close()
        if not parent.poll(STARTUP_SECONDS):
            self.stop()
            raise PermanentError(f"the controller of {self.config.node} did not start")
        kind, value = parent.recv()
        if kind != "token":
            self.stop()
            raise PermanentError(f"the controller of {self.config.node} failed to start: {value}")
        self.token = value

    def stop(self, timeout: float = 60.0) -> None:
        self._stop.set()
        if self._proc is None:
            return
        self._proc.join(timeout)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5)
        self._proc = None


def _serve(config: DaemonConfig, passes: Synchronized[int], stop: Event, conn: Connection) -> None:
    try:
        daemon = Daemon(config)
    except BaseException as e:  # reported to the parent, which raises
        conn.send(("error", f"{type(e).__name__}: {e}"))
        return

    def counted(outcome: PassOutcome) -> None:  # called at the end of every successful pass
        with passes.get_lock():
            passes.value += 1

    daemon.listeners.append(counted)
    daemon.start()
    conn.send(("token", daemon.runtime.token))
    conn.close()
    stop.wait()
    daemon.stop()
