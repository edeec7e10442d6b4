"""Faults: Transmission going away mid-way, the remote unreachable, SIGTERM, a second daemon."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from controller.daemon.lock import AlreadyRunning, NodeLock
from schemas.journal import Outcome
from schemas.plan import ActionKind
from tests.conftest import REPO_ROOT
from tests.daemon.conftest import RULE, SoloFleet, wait_for
from tests.daemon.test_end_to_end import held


def test_transmission_down_then_back_converges_without_duplicates(solo_fleet: SoloFleet) -> None:
    d = solo_fleet.controller()
    d.start()
    try:
        wait_for(lambda: d.passes >= 1, what="first pass")
        solo_fleet.daemon.stop()
        solo_fleet.commit({"custody/films.yaml": RULE}, "keep one copy")
        wait_for(lambda: d.last_error and "unreachable" in d.last_error, what="the pass to fail")
        assert d.last is not None and not d.last.status.transmission.reachable
        errors_before = d.metrics.pass_errors._value.get()
        solo_fleet.daemon.start()
        wait_for(lambda: solo_fleet.infohash in held(solo_fleet), what="recovery")
        wait_for(lambda: d.last_error is None, what="a clean pass")
    finally:
        d.stop()
    assert errors_before >= 1
    adds = [e for e in d.runtime.journal.entries()
            if e.kind is ActionKind.add and e.target == solo_fleet.infohash and e.outcome is Outcome.ok]
    assert len(adds) == 1, adds
    assert held(solo_fleet) == {solo_fleet.infohash}


def test_remote_unreachable_keeps_the_last_good_revision(solo_fleet: SoloFleet) -> None:
    d = solo_fleet.controller()
    d.start()
    try:
        good = solo_fleet.commit({"custody/films.yaml": RULE}, "keep one copy")
        wait_for(lambda: d.last and d.last.desired.revision == good, what="the good revision")
        moved = solo_fleet.remote.with_name("gone.git")
        solo_fleet.remote.rename(moved)
        d.wakeup.notify("test")
        wait_for(lambda: d.last_revision is not None and d.last_revision.error, what="a fetch error")
        rev = d.last_revision
        assert rev.applied == good and rev.desired is not None and rev.desired.revision == good
        wait_for(lambda: any(c.type == "Synced" and c.reason == "SourceUnavailable"
                             for c in d.last.status.conditions), what="Synced=False")
        assert solo_fleet.infohash in held(solo_fleet)
    finally:
        d.stop()


def test_one_daemon_per_node(tmp_path: Path) -> None:
    with NodeLock(str(tmp_path), "solo"), pytest.raises(AlreadyRunning, match="another tva daemon"):
        NodeLock(str(tmp_path), "solo").acquire()
    with NodeLock(str(tmp_path), "solo"):  # released: can be taken again
        pass


def test_sigterm_mid_pass_exits_cleanly(solo_fleet: SoloFleet, tmp_path: Path) -> None:
    solo_fleet.commit({"custody/films.yaml": RULE}, "keep one copy")
    log = tmp_path / "daemon.log"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "controller.cli.main", "run", "--node", "solo",
             "--repo", str(solo_fleet.remote), "--state-dir", str(tmp_path / "state"),
             "--status", str(tmp_path / "st"), "--listen", "off", "--log-json"],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT,
        )
        try:
            wait_for(lambda: b'"event": "pass"' in log.read_bytes() or proc.poll() is not None,
                     what="the first pass")
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    text = log.read_text()
    assert code == 0, text
    assert '"event": "stopped"' in text
    assert "Traceback" not in text


def test_transmission_killed_mid_pass_recovers_without_duplicates(
    solo_fleet: SoloFleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGKILL the daemon between planning and applying the add: the action fails, the loop
    backs off, and once Transmission is back the same add is applied exactly once."""
    from controller.act.transmission import TransmissionActuator

    original = TransmissionActuator.apply
    killed: list[bool] = []

    def apply_after_kill(self: TransmissionActuator, action):  # type: ignore[no-untyped-def]
        if not killed:
            killed.append(True)
            proc = solo_fleet.daemon.process
            assert proc is not None
            proc.kill()
            proc.wait()
        return original(self, action)

    monkeypatch.setattr(TransmissionActuator, "apply", apply_after_kill)
    d = solo_fleet.controller()
    d.start()
    try:
        wait_for(lambda: d.passes >= 1, what="first pass")
        solo_fleet.commit({"custody/films.yaml": RULE}, "keep one copy")
        wait_for(lambda: any(e.outcome is Outcome.failed for e in d.runtime.journal.entries()),
                 what="the add to fail mid-pass")
        solo_fleet.daemon.process = None
        solo_fleet.daemon.start()
        wait_for(lambda: solo_fleet.infohash in held(solo_fleet), what="recovery")
        wait_for(lambda: d.last_error is None and d.last is not None and not d.last.plan.actions,
                 what="convergence")
    finally:
        d.stop()
    entries = [e for e in d.runtime.journal.entries() if e.target == solo_fleet.infohash]
    assert [e.outcome for e in entries if e.kind is ActionKind.add].count(Outcome.ok) == 1
    assert held(solo_fleet) == {solo_fleet.infohash}
