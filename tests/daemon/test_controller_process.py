"""A lab node's controller in a process of its own (``controller.lab.process``): benchmarks run
each controller so, as on a fleet node, rather than as threads sharing one interpreter lock."""

from __future__ import annotations

import threading
from pathlib import Path

from controller.daemon.daemon import DaemonConfig
from controller.lab.process import ControllerProcess
from tests.daemon.conftest import SoloFleet, wait_for


def test_the_controller_runs_its_passes_in_another_process_and_stops(
        solo_fleet: SoloFleet) -> None:
    config = DaemonConfig(node="solo", repo=str(solo_fleet.remote),
                          state_dir=str(solo_fleet.state_dir), status_dir=str(solo_fleet.status_dir),
                          listen="off", host_player=False, poll=0.3)
    process = ControllerProcess(config)
    process.start()
    try:
        assert process.running
        token = (Path(solo_fleet.state_dir) / "solo.tracker-token").read_text().strip()
        assert process.token == token and len(token) >= 32
        wait_for(lambda: process.passes >= 1, what="a pass in the child")
        # No controller thread here: the passes were made by the child.
        assert not any(t.name.startswith("tva-daemon-") for t in threading.enumerate())
    finally:
        process.stop()
    assert not process.running
