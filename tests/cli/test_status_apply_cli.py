"""``tva status`` and ``tva apply`` as a person runs them, against a real transmission-daemon."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from controller.lab.transmission import TransmissionDaemon, make_payload_torrent
from tests.conftest import REPO_ROOT

FLEET = "apiVersion: tva/v1\nkind: Fleet\nname: one\n"


def tva(*args: str, cwd: Path, columns: int | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    if columns is not None:  # rich wraps tables to the terminal's width
        env["COLUMNS"] = str(columns)
    return subprocess.run([sys.executable, "-m", "controller.cli.main", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def one(tmp_path: Path, transmission_daemon: Callable[..., TransmissionDaemon]) -> tuple[Path, TransmissionDaemon, str]:
    tr = transmission_daemon("one")
    fleet = tmp_path / "fleet"
    (fleet / "devices").mkdir(parents=True)
    (fleet / "fleet.yaml").write_text(FLEET)
    (fleet / "devices/one.yaml").write_text(
        "apiVersion: tva/v1\nkind: Device\nname: one\nclass: server\nalways_on: true\n"
        f"storage: [{{path: {tr.download_dir}, capacity: 1GiB}}]\n"
        f"addresses: {{transmission_rpc: {tr.url}}}\n")
    torrent, infohash, data = make_payload_torrent(tmp_path / "payload", 128 * 1024, name="film.bin")
    shutil.copy(data, tr.download_dir / "film.bin")
    (fleet / "torrents").mkdir()
    shutil.copy(torrent, fleet / "torrents/film.torrent")
    (fleet / "items.yaml").write_text(
        "apiVersion: tva/v1\nkind: Collection\nname: films\nitems:\n"
        "  - {name: Film, torrent: torrents/film.torrent}\n")
    return fleet, tr, infohash


def test_status_node_observes_the_real_daemon(one: tuple[Path, TransmissionDaemon, str], tmp_path: Path) -> None:
    fleet, tr, _ = one
    tr.client().add_torrent((fleet / "torrents/film.torrent").read_bytes(), paused=True)
    r = tva("status", str(fleet), "--node", "one", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    assert st["node"] == "one" and st["transmission"]["reachable"] is True
    assert [t["name"] for t in st["transmission"]["torrents"]] == ["film.bin"]
    assert st["storage"][0]["path"] == str(tr.download_dir) and st["storage"][0]["free"] > 0


def test_status_publish_then_fleet_view(one: tuple[Path, TransmissionDaemon, str], tmp_path: Path) -> None:
    fleet, _, _ = one
    shared = tmp_path / "statuses"
    r = tva("status", str(fleet), "--node", "one", "--publish", "--status", str(shared), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = tva("status", str(fleet), "--fleet", "--status", str(shared), "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    nodes = json.loads(r.stdout)["nodes"]
    assert [(n["node"], n["freshness"]) for n in nodes] == [("one", "fresh")]


@pytest.mark.transmission_versions
def test_status_shows_the_transmission_version(
    one: tuple[Path, TransmissionDaemon, str], tmp_path: Path
) -> None:
    fleet, tr, _ = one
    session = tr.client().get_session()
    shown = f"{session.version} (RPC {session.rpc_version})"
    assert session.rpc_version == (16 if tr.version == "3.00" else 18)
    r = tva("status", str(fleet), "--node", "one", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"Transmission {shown}" in r.stdout
    shared = tmp_path / "statuses"
    r = tva("status", str(fleet), "--node", "one", "--publish", "--status", str(shared), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = tva("status", str(fleet), "--fleet", "--status", str(shared), cwd=tmp_path,
            columns=200)
    assert r.returncode == 0, r.stderr
    assert shown in r.stdout, r.stdout


def test_status_of_a_stopped_daemon_says_unreachable(one: tuple[Path, TransmissionDaemon, str], tmp_path: Path) -> None:
    fleet, tr, _ = one
    tr.stop()
    r = tva("status", str(fleet), "--node", "one", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)["transmission"]
    assert st["reachable"] is False and st["error"] and st["torrents"] == []


def test_apply_adds_then_has_nothing_to_do(one: tuple[Path, TransmissionDaemon, str], tmp_path: Path) -> None:
    fleet, tr, infohash = one
    (fleet / "custody.yaml").write_text(
        "apiVersion: tva/v1\nkind: CustodyRule\nname: films\nselect: {collections: [films]}\nmin: 1\n")
    state = tmp_path / "state"
    r = tva("apply", str(fleet), "--node", "one", "--state-dir", str(state), "--yes", cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "add" in r.stdout and "custody/films" in r.stdout
    assert infohash in {t.hash_string for t in tr.client().get_torrents(arguments=["hashString"])}
    r = tva("history", "--node", "one", "--state-dir", str(state), "--json", cwd=tmp_path)
    entries = json.loads(r.stdout)
    assert [(e["kind"], e["target"], e["outcome"]) for e in entries] == [
        ("add", infohash, "started"), ("add", infohash, "ok")]  # intent first, then the outcome
    # Once it completes (the data is in place), a second apply has nothing to do.
    from controller.waiting import wait_for

    wait_for(lambda: tr.client().get_torrent(infohash, arguments=["percentDone"]).percent_done == 1.0,
             60, what="the copy to verify")
    r = tva("apply", str(fleet), "--node", "one", "--state-dir", str(state), "--yes", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "nothing to do" in r.stdout
