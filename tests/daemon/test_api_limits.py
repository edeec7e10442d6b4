"""The API under a flood of idle connections, with a rotated token, and with an https address:
a real daemon (in a subprocess with systemd's default descriptor limit, or in a thread), real
sockets to 127.0.0.1."""

from __future__ import annotations

import json
import os
import resource
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from controller.daemon.api import ConnectionLimits
from controller.daemon.daemon import Daemon
from tests.daemon.conftest import FLEET, SoloFleet, wait_for
from tests.support.transmission import free_port

TOKEN = "flood-test-token"
FLOOD = 1100
NOFILE = 1024
"""systemd's default soft limit of open files for a service."""


def with_api(fleet: SoloFleet, url: str) -> None:
    device = (fleet.checkout / "devices/solo.yaml").read_text()
    device += f"  controller_api: {url}\ncredentials:\n  api_token: {{env: TVA_TEST_API_TOKEN}}\n"
    fleet.commit({"devices/solo.yaml": device,
                  "fleet.yaml": FLEET + "  sync: {poll: 1s}\n"}, "the node serves its API")


def healthy(base: str, **kwargs: object) -> bool:
    try:
        return httpx.get(base + "/healthz", timeout=5, **kwargs).status_code == 200  # type: ignore[arg-type]
    except httpx.HTTPError:
        return False


@pytest.fixture
def daemon_process(solo_fleet: SoloFleet) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    with_api(solo_fleet, f"http://127.0.0.1:{port}")
    log = open(solo_fleet.state_dir.parent / "daemon.log", "wb")  # noqa: SIM115 - closed below

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))

    proc = subprocess.Popen(
        [sys.executable, "-m", "controller.cli.main", "run", "--node", "solo",
         "--repo", str(solo_fleet.remote), "--state-dir", str(solo_fleet.state_dir),
         "--status", str(solo_fleet.status_dir)],
        env={**os.environ, "TVA_TEST_API_TOKEN": TOKEN}, stdout=log, stderr=log, preexec_fn=limit,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: healthy(base), what="the API")
        yield proc, base
    finally:
        proc.terminate()
        proc.wait(60)
        log.close()


def published_revision(fleet: SoloFleet) -> str | None:
    try:
        return json.loads((fleet.status_dir / "solo.json").read_text()).get("desired_revision")
    except (OSError, ValueError):
        return None


@pytest.mark.slow  # about a minute: CI runs it, a local run leaves it out (README)
def test_a_flood_of_idle_connections_does_not_stop_the_node(
    solo_fleet: SoloFleet, daemon_process: tuple[subprocess.Popen[bytes], str]
) -> None:
    proc, base = daemon_process
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < FLOOD + 200:
        pytest.skip(f"this test process may open only {hard} files")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, FLOOD + 200), hard))
    port = int(base.rsplit(":", 1)[1])
    idle: list[socket.socket] = []
    try:
        for _ in range(FLOOD):
            s = socket.socket()
            s.settimeout(30)
            try:
                s.connect(("127.0.0.1", port))
            except OSError:  # the listen backlog is full: the flood is as large as it gets
                s.close()
                continue
            idle.append(s)
        new = solo_fleet.commit({"README": "a revision during the flood\n"}, "during the flood")
        wait_for(lambda: published_revision(solo_fleet) == new, timeout=120,
                 what="the node to apply and publish a revision while the flood is held")
        descriptors = len(os.listdir(f"/proc/{proc.pid}/fd"))
        assert descriptors < NOFILE // 2, descriptors
    finally:
        for s in idle:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    wait_for(lambda: healthy(base), what="the API to answer after the flood")
    r = httpx.get(base + "/v1/status", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert r.status_code == 200 and r.json()["desired_revision"] == new
    assert proc.poll() is None


@pytest.fixture
def threaded(solo_fleet: SoloFleet, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Daemon, str]]:
    monkeypatch.setenv("TVA_TEST_API_TOKEN", TOKEN)
    port = free_port()
    with_api(solo_fleet, f"http://127.0.0.1:{port}")
    d = solo_fleet.controller(listen=None, api_limits=ConnectionLimits(max_connections=8, header_timeout=1))
    d.start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: healthy(base), what="the API")
        yield d, base
    finally:
        d.stop()


def closed_by_server(s: socket.socket) -> bool:
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True


def test_connections_over_the_limit_or_silent_are_closed(threaded: tuple[Daemon, str]) -> None:
    _, base = threaded
    port = int(base.rsplit(":", 1)[1])
    idle = []
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", port), timeout=60)
        idle.append(s)
    try:
        # Each is closed: the first 8 when their headers are due, the others at once.
        assert all(closed_by_server(s) for s in idle)
    finally:
        for s in idle:
            s.close()
    assert healthy(base)


def test_a_rotated_token_takes_effect_without_a_restart(
    threaded: tuple[Daemon, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    d, base = threaded
    old = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.get(base + "/v1/plan", headers=old, timeout=10).status_code == 200
    monkeypatch.setenv("TVA_TEST_API_TOKEN", "the-rotated-token")
    passes = d.passes
    d.wakeup.notify("test")
    wait_for(lambda: d.passes > passes, what="one more pass")
    assert httpx.get(base + "/v1/plan", headers=old, timeout=10).status_code == 401
    new = {"Authorization": "Bearer the-rotated-token"}
    assert httpx.get(base + "/v1/plan", headers=new, timeout=10).status_code == 200


def test_an_https_api_is_served_with_tls_or_refused(solo_fleet: SoloFleet, monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    monkeypatch.setenv("TVA_TEST_API_TOKEN", TOKEN)
    port = free_port()
    with_api(solo_fleet, f"https://127.0.0.1:{port}")
    d = solo_fleet.controller(listen=None)
    d.start()
    try:
        wait_for(lambda: d.last is not None, what="first pass")
        refused = [c for c in d.last.status.conditions if c.type == "ApiServed"]
        assert [(c.status.value, c.reason) for c in refused] == [("False", "TlsNotConfigured")]
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=10).close()
    finally:
        d.stop()

    cert, key = tmp_path / "api.crt", tmp_path / "api.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    d = solo_fleet.controller(listen=None, tls_cert=str(cert), tls_key=str(key))
    d.start()
    try:
        base = f"https://127.0.0.1:{port}"
        trust = ssl.create_default_context(cafile=str(cert))
        wait_for(lambda: healthy(base, verify=trust), what="the API over TLS")
        assert not healthy(f"http://127.0.0.1:{port}")
    finally:
        d.stop()


def test_the_unit_raises_the_descriptor_limit() -> None:
    unit = Path(__file__).resolve().parents[2] / "examples" / "systemd" / "tva@.service"
    lines = unit.read_text().splitlines()
    assert [int(x.split("=", 1)[1]) for x in lines if x.startswith("LimitNOFILE=")] == [4096]
    tool = "/usr/bin/systemd-analyze"
    if not os.path.exists(tool):
        pytest.skip("systemd-analyze is not installed")
    proc = subprocess.run([tool, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False)
    problems = [x for x in proc.stderr.splitlines() if x.strip() and "is not executable" not in x]
    assert problems == []  # the only complaint allowed: tva is not installed at /opt/tva here
