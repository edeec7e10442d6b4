"""Triggers: threads that only say "look again" (a new revision, a peer's status, Transmission,
a network interface, address or route changing).

Each watcher is cheap and sleeps between looks; none of them decides anything. They stop when
the shared ``Wakeup`` stops.
"""

from __future__ import annotations

import hashlib
import logging
import random
import shutil
import subprocess
import threading
from collections.abc import Callable

from controller.clients.git import ls_remote
from controller.daemon.wakeup import Wakeup

__all__ = ["CheckoutWatcher", "LinkWatcher", "Poller", "remote_heads"]

log = logging.getLogger("tva.triggers")


class Poller(threading.Thread):
    """Calls ``look()`` every ``interval`` seconds (with +-20% jitter, so nodes do not poll in
    step); notifies ``reason`` when its answer differs from the last one."""

    def __init__(self, name: str, wakeup: Wakeup, interval: float, look: Callable[[], object],
                 reason: str, rng: random.Random | None = None) -> None:
        super().__init__(name=f"tva-{name}", daemon=True)
        self.wakeup = wakeup
        self.interval = interval
        self.look = look
        self.reason = reason
        self.rng = rng or random.Random()
        self._last: object = None

    def start(self) -> None:
        """Take the first look now, before the first pass runs, then poll in the background:
        a change that lands between the two is then seen by the pass, or by the next look."""
        self._last = self._look()
        super().start()

    def _look(self) -> object:
        try:
            return self.look()
        except Exception as e:  # a watcher never dies; the pass reports real errors
            log.debug("%s: %s", self.name, e)
            return None

    def run(self) -> None:
        while True:
            delay = self.interval * (0.8 + 0.4 * self.rng.random())
            if self.wakeup.sleep(delay):
                return
            seen = self._look()
            if seen is not None and seen != self._last:
                self.wakeup.notify(self.reason)
            if seen is not None:
                self._last = seen


def remote_heads(url: str, patterns: list[str]) -> str:
    """A digest of the remote's refs matching ``patterns`` (cheap: ``git ls-remote``, with no
    prompt and a time limit, so a dead link never hangs the poller)."""
    out = ls_remote(url, patterns)
    return hashlib.sha256(out.encode()).hexdigest()


class CheckoutWatcher(threading.Thread):
    """Watches a local checkout's git directory (watchfiles): a commit or checkout there is a
    reason to look again. Debounced by watchfiles itself."""

    def __init__(self, path: str, wakeup: Wakeup) -> None:
        super().__init__(name="tva-checkout", daemon=True)
        self.path = path
        self.wakeup = wakeup
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        from watchfiles import watch

        try:
            # watch_filter=None: watchfiles' default filter ignores everything under .git,
            # which is exactly what is watched here (refs and HEAD move on a commit).
            for _changes in watch(self.path, watch_filter=None, stop_event=self._stop,
                                  debounce=200, step=50, rust_timeout=1000,
                                  yield_on_timeout=False):
                if self.wakeup.stopped:
                    return
                self.wakeup.notify("checkout")
        except Exception as e:
            log.warning("cannot watch %s: %s", self.path, e)


class LinkWatcher(threading.Thread):
    """Wakes the loop when a network interface, address or route changes (the kill switch,
    issue 13: a tunnel going down is seen within a second, not at the next resync).

    Reads ``ip monitor link address route``: the kernel's netlink events, one line each, as they
    happen; the thread blocks on the pipe (no polling). A burst of events gives one more pass
    (the ``Wakeup`` coalesces). Without ``ip`` the watcher says so once and the resync timer
    remains.
    """

    COMMAND = ("ip", "monitor", "link", "address", "route")

    def __init__(self, wakeup: Wakeup) -> None:
        super().__init__(name="tva-links", daemon=True)
        self.wakeup = wakeup
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self.ready = threading.Event()
        """Set once the monitor runs (tests wait for it before changing a link)."""

    def stop(self) -> None:
        with self._lock:
            proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()

    def run(self) -> None:
        program = shutil.which(self.COMMAND[0])
        if program is None:
            log.warning("no ip command: tunnel changes are seen at the next pass only")
            return
        try:
            proc = subprocess.Popen([program, *self.COMMAND[1:]], stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        except OSError as e:
            log.warning("cannot watch links: %s", e)
            return
        with self._lock:
            self._proc = proc
        if self.wakeup.stopped:  # stop() ran before the monitor existed
            proc.terminate()
        self.ready.set()
        try:
            assert proc.stdout is not None
            for _line in proc.stdout:
                if self.wakeup.stopped:
                    break
                self.wakeup.notify("link")
        finally:
            if proc.poll() is None:
                proc.terminate()
            proc.wait()
