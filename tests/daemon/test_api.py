"""The controller API over real HTTP: tokens, the announce endpoint's gates, no secret leaks."""

from __future__ import annotations

import logging
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastbencode import bdecode  # type: ignore[attr-defined]

from schemas.observed import (
    NodeStatus,
    SessionStatus,
    TorrentState,
    TorrentStatus,
    TransmissionStatus,
)
from tests.daemon.conftest import SoloFleet, wait_for
from tests.support.transmission import free_port

TOKEN = "s3cret-api-token-for-tests"
RPC_PASSWORD = "rpc-password-for-tests"
PUBLIC = "aa" * 20
PRIVATE = "bb" * 20

SEEDBOX = """\
apiVersion: tva/v1
kind: Device
name: seedbox
class: seedbox
always_on: true
storage: [{path: /srv/seed, capacity: 1TiB}]
addresses:
  transmission_rpc: http://127.0.0.1:1/transmission/rpc
  peer: 10.9.0.2:51413
"""

NAS = """\
apiVersion: tva/v1
kind: Device
name: nas
class: server
always_on: true
storage: [{path: /srv/nas, capacity: 1TiB}]
addresses:
  transmission_rpc: http://127.0.0.1:1/transmission/rpc
  peer: 10.9.0.3:51413
"""

ITEMS = f"""\
apiVersion: tva/v1
kind: Collection
name: mixed
items:
  - {{name: Public film, infohash: {PUBLIC}, provenance: public}}
  - {{name: Private film, infohash: {PRIVATE}, provenance: private}}
"""

DUTIES = """\
apiVersion: tva/v1
kind: Duties
pins: {public_swarm_face: seedbox}
"""


def holding(node: str, *keys: str) -> NodeStatus:
    return NodeStatus(
        node=node, observed_at=datetime.now(UTC), controller_version="test",
        transmission=TransmissionStatus(reachable=True, torrents=[
            TorrentStatus(infohash=k, name=k[:6], size=1000, percent_done=1.0,
                          state=TorrentState.seeding, labels=["tva"])
            for k in keys
        ], session=SessionStatus(dht=False, pex=False, lpd=False)),
    )


@pytest.fixture
def api(solo_fleet: SoloFleet, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture):
    monkeypatch.setenv("TVA_TEST_API_TOKEN", TOKEN)
    monkeypatch.setenv("TVA_TEST_RPC_PASSWORD", RPC_PASSWORD)
    port = free_port()
    device = (Path(solo_fleet.checkout) / "devices/solo.yaml").read_text()
    device += (f"  controller_api: http://127.0.0.1:{port}\n"
               "credentials:\n  api_token: {env: TVA_TEST_API_TOKEN}\n"
               "  transmission_password: {env: TVA_TEST_RPC_PASSWORD}\n")
    solo_fleet.commit({
        "devices/solo.yaml": device, "devices/seedbox.yaml": SEEDBOX, "devices/nas.yaml": NAS,
        "items/mixed.yaml": ITEMS, "duties.yaml": DUTIES,
    }, "a fleet with a public face")
    solo_fleet.status_dir.mkdir(parents=True, exist_ok=True)
    for st in (holding("seedbox", PUBLIC, PRIVATE), holding("nas", PUBLIC, PRIVATE)):
        (solo_fleet.status_dir / f"{st.node}.json").write_text(st.model_dump_json())
    caplog.set_level(logging.DEBUG)
    d = solo_fleet.controller(listen=None)
    d.start()
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: d.last is not None, what="first pass")
    wait_for(lambda: _up(base), what="the API")
    yield d, base
    d.stop()


def _up(base: str) -> bool:
    try:
        return httpx.get(base + "/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def announce(base: str, infohash: str, token: str | None) -> dict[bytes, object]:
    q = urllib.parse.urlencode({"info_hash": bytes.fromhex(infohash), "peer_id": b"-TR3000-000000000000",
                                "port": 51413, "compact": 1})
    path = "/announce" if token is None else f"/announce/{token}"
    r = httpx.get(f"{base}{path}?{q}", timeout=10)
    assert r.status_code == 200
    return bdecode(r.content)


def peers(answer: dict[bytes, object]) -> list[str]:
    raw = answer[b"peers"]
    assert isinstance(raw, bytes)
    return [f"{raw[i]}.{raw[i+1]}.{raw[i+2]}.{raw[i+3]}:{int.from_bytes(raw[i+4:i+6], 'big')}"
            for i in range(0, len(raw), 6)]


def test_token_required_everywhere_but_health_and_announce(api) -> None:
    _, base = api
    for path in ("/v1/status", "/v1/plan", "/metrics", f"/v1/holds/{PUBLIC}"):
        assert httpx.get(base + path, timeout=10).status_code == 401, path
        wrong = httpx.get(base + path, headers={"Authorization": "Bearer nope"}, timeout=10)
        assert wrong.status_code == 401, path
    assert httpx.post(base + "/v1/webhook", timeout=10).status_code == 401
    ok = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.get(base + "/v1/status", headers=ok, timeout=10).json()["node"] == "solo"
    assert "tva_passes_total" in httpx.get(base + "/metrics", headers=ok, timeout=10).text
    assert httpx.post(base + "/v1/webhook", headers=ok, timeout=10).json() == {"status": "queued"}
    assert httpx.get(base + "/healthz", timeout=10).status_code == 200


def test_announce_answers_with_fleet_holders_and_applies_the_gates(api) -> None:
    d, base = api
    token = d.tracker.token
    assert sorted(peers(announce(base, PUBLIC, token))) == ["10.9.0.2:51413", "10.9.0.3:51413"]
    # The private item is f2f_only: the public face is never handed out as a peer for it.
    assert peers(announce(base, PRIVATE, token)) == ["10.9.0.3:51413"]
    unknown = announce(base, "cc" * 20, token)
    assert b"failure reason" not in unknown and peers(unknown) == []


def test_announce_without_the_nodes_token_gets_no_address(api) -> None:
    """Whoever does not hold this node's tracker token (an outsider that learned an info-hash)
    gets a tracker failure and not one fleet address, for any item."""
    d, base = api
    for token in (None, "not-the-token", d.tracker.token[:-1]):
        for item in (PUBLIC, PRIVATE):
            answer = announce(base, item, token)
            assert b"failure reason" in answer, token
            assert not answer.get(b"peers") and not answer.get(b"peers6")


def test_no_secret_in_any_response_or_log(api, caplog: pytest.LogCaptureFixture) -> None:
    _, base = api
    ok = {"Authorization": f"Bearer {TOKEN}"}
    bodies = [httpx.get(base + p, headers=ok, timeout=10).text
              for p in ("/v1/status", "/v1/plan", "/metrics", "/healthz")]
    bodies.append(str(announce(base, PUBLIC, None)))
    for text in [*bodies, caplog.text]:
        assert TOKEN not in text
        assert RPC_PASSWORD not in text
