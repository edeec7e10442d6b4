"""Crash-safe state on real parts: a journal torn by a crash, a state dir on a full filesystem
(a real, small tmpfs) under a real transmission-daemon, a damaged watch-progress file."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from controller.act.apply import Applier
from controller.act.transmission import TransmissionActuator
from controller.clients.transmission import TransmissionClient
from controller.journal import Journal
from controller.player.watched import WatchedStore
from schemas.journal import JournalEntry, Outcome
from schemas.plan import Action, ActionKind, Plan, action_id
from tests.support.transmission import TransmissionDaemon, make_payload_torrent

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def entry(target: str, error: str = "") -> JournalEntry:
    return JournalEntry(at=NOW, node="solo", action_id=action_id("solo", ActionKind.verify, target),
                        kind=ActionKind.verify, target=target, outcome=Outcome.failed, error=error)


def test_a_journal_torn_inside_a_character_loses_nothing_after_it(tmp_path: Path) -> None:
    path = tmp_path / "state" / "solo.journal.jsonl"
    journal = Journal(str(path))
    journal.append([entry("a" * 40, "überall"), entry("b" * 40, "schön")])
    data = path.read_bytes()
    cut = data.rindex("ö".encode()) + 1  # inside the two bytes of 'ö'
    path.write_bytes(data[:cut])

    reopened = Journal(str(path))
    assert [e.target for e in reopened.entries()] == ["a" * 40]
    reopened.append([entry("c" * 40)])
    assert [e.target for e in Journal(str(path)).entries()] == ["a" * 40, "c" * 40]

    proc = subprocess.run([sys.executable, "-m", "controller.cli.main", "history", "--node", "solo",
                           "--state-dir", str(path.parent), "--json"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert [e["target"] for e in json.loads(proc.stdout)] == ["a" * 40, "c" * 40]


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A real 256 KiB tmpfs (needs root and mount rights; skipped with the reason otherwise)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {proc.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(directory: Path) -> Path:
    """Fill the filesystem of ``directory`` to the last byte; the filler file."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (4096, 1):
            while True:
                try:
                    os.write(fd, b"\0" * size)
                except OSError as e:
                    assert e.errno == errno.ENOSPC
                    break
    finally:
        os.close(fd)
    return filler


def test_no_action_runs_when_its_intent_cannot_be_journalled(
    small_fs: Path, tmp_path: Path, transmission_daemon: Callable[..., TransmissionDaemon]
) -> None:
    tr = transmission_daemon()
    torrent, infohash, _ = make_payload_torrent(tmp_path / "payload", 64 * 1024)
    client = TransmissionClient(tr.url, timeout=10)
    actuator = TransmissionActuator(client, metainfo=lambda a: torrent.read_bytes())
    filler = fill(small_fs)
    journal = Journal(str(small_fs / "solo.journal.jsonl"))
    applier = Applier("solo", [actuator], journal=journal, confirmer=None, clock=lambda: NOW,
                      sleep=lambda s: None)
    add = Action(id=action_id("solo", ActionKind.add, infohash), node="solo", kind=ActionKind.add,
                 target=infohash, reason="test", params={"paused": True, "labels": ["tva"]})
    plan = Plan(now=NOW, nodes=["solo"], actions=[add])

    report = applier.apply(plan)
    assert [(a.outcome, a.temporary) for a in report.applied] == [(Outcome.failed, True)]
    assert "cannot write the journal" in report.applied[0].error
    assert tr.client().get_torrents() == [], "nothing was done that the journal does not know"
    assert Journal(journal.path).entries() == []

    filler.unlink()
    report = applier.apply(plan)
    assert [(a.outcome, a.result) for a in report.applied] == [(Outcome.ok, "done")]
    assert [t.hash_string for t in tr.client().get_torrents()] == [infohash]
    assert [(e.target, e.outcome) for e in Journal(journal.path).entries()] == [
        (infohash, Outcome.started), (infohash, Outcome.ok)]


def test_a_damaged_watch_progress_file_is_kept_aside(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "tv.watched.json"
    WatchedStore(str(path)).add("aa" * 20)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] + b"\xc3")  # torn, and inside a character
    store = WatchedStore(str(path))
    assert store.keys() == []
    kept = [p for p in os.listdir(tmp_path) if p.startswith("tv.watched.json.corrupt-")]
    assert len(kept) == 1 and (tmp_path / kept[0]).read_bytes() == data[: len(data) // 2] + b"\xc3"
    assert any("unreadable" in r.getMessage() for r in caplog.records)
    store.add("bb" * 20)
    assert WatchedStore(str(path)).keys() == ["bb" * 20]
