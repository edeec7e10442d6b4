"""``tva run --node NAME --repo URL``: the controller daemon of one node (systemd/launchd)."""

from __future__ import annotations

import os
import signal
from types import FrameType

from controller.daemon.daemon import Daemon, DaemonConfig
from controller.daemon.logs import setup

__all__ = ["default_state_dir", "run"]


def default_state_dir() -> str:
    if os.geteuid() == 0:
        return "/var/lib/tva"
    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return os.path.join(base, "tva")


def run(config: DaemonConfig, *, log_json: bool) -> int:
    setup(as_json=log_json)
    daemon = Daemon(config)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        daemon.wakeup.stop()  # the current action finishes, then the loop returns

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    daemon.run()
    return 0
