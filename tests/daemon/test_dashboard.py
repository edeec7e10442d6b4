"""The dashboard served by a real daemon (its API, its pass, its fleet repo): the hook between
``controller.daemon`` and ``controller.dashboard`` (the pages themselves: tests/dashboard)."""

from __future__ import annotations

import re

import httpx

from tests.daemon.test_api import PRIVATE, RPC_PASSWORD, TOKEN, api

__all__ = ["api"]


def login(base: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=10)
    form = client.get("/ui/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf is not None
    r = client.post("/ui/login", data={"csrf": csrf.group(1), "token": TOKEN})
    assert r.status_code == 303 and r.headers["location"] == "/ui/"
    return client


def test_the_daemon_serves_the_dashboard_behind_its_token(api) -> None:  # type: ignore[no-untyped-def]
    daemon, base = api
    r = httpx.get(base + "/ui/", timeout=10)
    assert r.status_code == 303 and r.headers["location"] == "/ui/login"
    client = login(base)
    try:
        fleet = client.get("/ui/").text
        assert all(f'data-node="{n}"' in fleet for n in ("solo", "nas", "seedbox"))
        assert daemon.last.status.desired_revision[:12] in fleet
        # The item page and the file and line that declare what it shows, at the applied revision.
        item = client.get(f"/ui/item/{PRIVATE}").text
        assert "Private film" in item
        # Where it is declared, as the loader found it when the daemon validated the revision.
        assert "collection mixed at" in item and "items/mixed.yaml:1" in item
        assert "devices/seedbox.yaml:1" in fleet
        source = client.get("/ui/source", params={"file": "items/mixed.yaml", "line": 3}).text
        assert 'id="L3" class="hit"' in source and "Private film" in source
        assert "No such file" in client.get("/ui/source", params={"file": "../etc/passwd"}).text
        pages = [fleet, item, source] + [client.get(p).text for p in
                                         ("/ui/custody", "/ui/plan", "/ui/history", "/ui/transfers")]
    finally:
        client.close()
    for page in pages:
        for secret in (TOKEN, RPC_PASSWORD, daemon.runtime.token):
            assert secret not in page
