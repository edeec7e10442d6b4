"""A holder serves its complete copies as web seeds (issue 18): the URL comes from its API with
the API token; the file is served with ranges to whoever has the URL's capability, and to nobody
else; only the files of a complete copy of a declared item, inside the download directory."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

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
