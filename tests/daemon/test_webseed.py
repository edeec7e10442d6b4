"""A holder serves its complete copies as web seeds (issue 18): the URL comes from its API with
the API token; the file is served with ranges to whoever has the URL's capability, and to nobody
else; only the files of a complete copy of a declared item, inside the download directory."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from controller import seeder
from controller.clients.transmission import Capabilities
from schemas.plan import Action, ActionKind
from tests.daemon.conftest import SoloFleet, wait_for
from tests.support.transmission import free_port

TOKEN = "s3cret-api-token-for-webseeds"


@pytest.fixture
def holder(solo_fleet: SoloFleet, monkeypatch: pytest.MonkeyPatch,
           caplog: pytest.LogCaptureFixture):
    monkeypatch.setenv("TVA_TEST_API_TOKEN", TOKEN)
    port = free_port()
    device = (Path(solo_fleet.checkout) / "devices/solo.yaml").read_text()
    device += (f"  controller_api: http://127.0.0.1:{port}\n"
               "credentials:\n  api_token: {env: TVA_TEST_API_TOKEN}\n")
    solo_fleet.commit({"devices/solo.yaml": device}, "an API")
    client = solo_fleet.daemon.client()
    torrent = (Path(solo_fleet.checkout) / solo_fleet.torrent_rel).read_bytes()
    client.add_torrent(torrent, download_dir=str(solo_fleet.daemon.download_dir))
    wait_for(lambda: client.get_torrents([solo_fleet.infohash], arguments=["hashString", "percentDone"])[0]
             .fields["percentDone"] == 1, what="the copy verified")
    caplog.set_level(logging.DEBUG)
    d = solo_fleet.controller(listen=None)
    d.start()
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: d.last is not None, what="first pass")
    yield d, base
    d.stop()


def test_a_complete_copy_is_served_with_ranges_to_the_capability_only(
        holder, solo_fleet: SoloFleet) -> None:
    _, base = holder
    ih = solo_fleet.infohash
    assert httpx.get(f"{base}/v1/webseed/{ih}", timeout=10).status_code == 401
    r = httpx.get(f"{base}/v1/webseed/{ih}", headers={"Authorization": f"Bearer {TOKEN}"},
                  timeout=10)
    assert r.status_code == 200
    url = r.json()["url"]
    assert url.startswith(f"{base}/v1/seed/{ih}/") and url.endswith("/")
    data = (solo_fleet.daemon.download_dir / "film.bin").read_bytes()
    part = httpx.get(url + "film.bin", headers={"Range": "bytes=1000-4999"}, timeout=10)
    assert part.status_code == 206 and part.content == data[1000:5000]
    whole = httpx.get(url + "film.bin", timeout=10)
    assert whole.status_code == 200 and whole.content == data
    cap = url.rstrip("/").rsplit("/", 1)[1]
    wrong = url.replace(cap, "0" * len(cap))
    for bad in (wrong + "film.bin", url + "../film.bin", url + "..%2F..%2Fetc%2Fpasswd",
                url + "other.bin", f"{base}/v1/seed/{'ab' * 20}/{cap}/film.bin"):
        refused = httpx.get(bad, timeout=10, follow_redirects=True)
        assert refused.status_code == 404 and data not in refused.content, bad


def test_no_web_seed_for_an_item_not_held_complete(holder, solo_fleet: SoloFleet) -> None:
    _, base = holder
    solo_fleet.daemon.client().stop_torrent(solo_fleet.infohash)
    (solo_fleet.daemon.download_dir / "film.bin").write_bytes(b"\0" * 10)
    solo_fleet.daemon.client().verify_torrent(solo_fleet.infohash)
    wait_for(lambda: httpx.get(f"{base}/v1/webseed/{solo_fleet.infohash}", timeout=10,
                               headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404,
             what="no web seed once the copy is broken")


def test_one_answer_carries_at_most_max_range_and_head_works(
        holder, solo_fleet: SoloFleet, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(seeder, "MAX_RANGE", 64 * 1024)
    _, base = holder
    ih = solo_fleet.infohash
    url = httpx.get(f"{base}/v1/webseed/{ih}", headers={"Authorization": f"Bearer {TOKEN}"},
                    timeout=10).json()["url"]
    data = (solo_fleet.daemon.download_dir / "film.bin").read_bytes()
    size = len(data)
    assert size > 2 * 64 * 1024
    # Transmission 3.00 asks for a whole piece; it gets the first 64 KiB, and says so.
    for asked, start in ((f"bytes=0-{size - 1}", 0), ("bytes=1000-", 1000)):
        part = httpx.get(url + "film.bin", headers={"Range": asked}, timeout=10)
        assert part.status_code == 206, asked
        assert part.headers["content-range"] == f"bytes {start}-{start + 65535}/{size}"
        assert part.content == data[start:start + 65536]
    small = httpx.get(url + "film.bin", headers={"Range": "bytes=10-19"}, timeout=10)
    assert small.status_code == 206 and small.content == data[10:20]
    head = httpx.head(url + "film.bin", timeout=10)
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == size
    assert httpx.head(url.replace(ih, "ab" * 20) + "film.bin", timeout=10).status_code == 404
    cap = url.rstrip("/").rsplit("/", 1)[1]
    assert httpx.head(url.replace(cap, "f" * len(cap)) + "film.bin", timeout=10).status_code == 404


def test_a_copy_is_looked_up_once_per_pass_not_per_request(
        holder, solo_fleet: SoloFleet, monkeypatch: pytest.MonkeyPatch) -> None:
    d, _ = holder
    ih = solo_fleet.infohash
    lookups: list[str] = []
    real = seeder.Seeder._lookup

    def counting(client: Any, infohash: str) -> Any:
        lookups.append(infohash)
        return real(client, infohash)

    monkeypatch.setattr(seeder.Seeder, "_lookup", staticmethod(counting))
    now = [1000.0]
    s = seeder.Seeder("a-secret-of-this-node", clock=lambda: now[0])
    s.refresh(d.runtime.client, frozenset({ih}))
    token = seeder.capability("a-secret-of-this-node", ih)
    for _ in range(5):
        assert s.open(ih, token, "film.bin") is not None
    assert lookups == [ih]
    assert s.open(ih, "0" * 40, "film.bin") is None and lookups == [ih]  # no capability: no RPC
    now[0] += seeder.LOOKUP_SECONDS
    assert s.open(ih, token, "film.bin") is not None and len(lookups) == 2  # too old: again
    s.refresh(d.runtime.client, frozenset({ih}))
    assert s.open(ih, token, "film.bin") is not None and len(lookups) == 3  # a new pass
    assert s.urls("http://x:1", ih) is not None and len(lookups) == 4  # a URL: asked now
    s.refresh(d.runtime.client, frozenset())
    assert s.open(ih, token, "film.bin") is None and len(lookups) == 4  # not declared: no RPC


def test_a_holder_hands_out_up_to_max_lanes_each_with_its_own_capability(
        holder, solo_fleet: SoloFleet, monkeypatch: pytest.MonkeyPatch) -> None:
    d, base = holder
    ih = solo_fleet.infohash
    auth = {"Authorization": f"Bearer {TOKEN}"}
    one = httpx.get(f"{base}/v1/webseed/{ih}", headers=auth, timeout=10).json()
    assert one["urls"] == [one["url"]]
    # A 256 KiB item is smaller than a lane's worth: one URL, however many are asked for.
    small = httpx.get(f"{base}/v1/webseed/{ih}?lanes=3", headers=auth, timeout=10).json()
    assert small["urls"] == [one["url"]]
    monkeypatch.setattr(seeder, "LANE_BYTES", 32 * 1024)
    many = httpx.get(f"{base}/v1/webseed/{ih}?lanes=10", headers=auth, timeout=10).json()
    assert len(many["urls"]) == seeder.MAX_LANES == len(set(many["urls"]))
    assert many["urls"][0] == one["url"]
    data = (solo_fleet.daemon.download_dir / "film.bin").read_bytes()
    for url in many["urls"]:
        part = httpx.get(url + "film.bin", headers={"Range": "bytes=7-99"}, timeout=10)
        assert part.status_code == 206 and part.content == data[7:100], url
    beyond = seeder.capability(d.seeder.secret, ih, seeder.MAX_LANES)
    assert httpx.get(f"{base}/v1/seed/{ih}/{beyond}/film.bin", timeout=10).status_code == 404
    # A lane's capability is for its item only.
    other = "cd" * 20
    lane1 = many["urls"][1].rstrip("/").rsplit("/", 1)[1]
    assert httpx.get(f"{base}/v1/seed/{other}/{lane1}/film.bin", timeout=10).status_code == 404


def test_a_fetcher_asks_for_the_lanes_its_own_transmission_is_safe_with(
        holder, monkeypatch: pytest.MonkeyPatch) -> None:
    d, _ = holder
    runtime = d.runtime
    asked: list[int] = []

    def webseed(device: Any, infohash: str, *, lanes: int = 1) -> list[str]:
        asked.append(lanes)
        return []

    monkeypatch.setattr(runtime.peers, "webseed", webseed)
    add = Action(id="solo/add/x", node="solo", kind=ActionKind.add, target="ab" * 20, reason="test",
                 params={"sources": [{"node": "solo", "complete": True}]})
    # The fixture's daemon is Transmission 3.00 (RPC 16): blocks go through a pipe.
    assert runtime._client is not None and runtime._client.capabilities().rpc_version == 16
    runtime._webseeds(add)
    assert asked == [seeder.WEBSEEDS_PER_ADD]
    # A daemon that queues its blocks (4.x, RPC 17 and up) gets the larger budget.
    monkeypatch.setattr(runtime._client, "_capabilities", Capabilities(18))
    runtime._webseeds(add)
    assert asked == [seeder.WEBSEEDS_PER_ADD, seeder.MAX_LANES]
