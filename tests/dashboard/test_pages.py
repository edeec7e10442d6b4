"""The dashboard's pages against a FastAPI TestClient and synthetic statuses: login and
sessions, every page's content, pagination, escaping, the event stream, no secret shown."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from controller.dashboard import PAGE_SIZE, install_dashboard
from tests.dashboard.synthetic import (
    API_TOKEN,
    HOSTILE,
    SECRETS,
    Source,
    fleet_inputs,
    key,
)

PAGES = ["/ui/", "/ui/custody", f"/ui/item/{key(7)}", "/ui/plan", "/ui/history", "/ui/transfers",
         "/ui/source?file=custody/films.yaml&line=1"]


class Setup:
    def __init__(self, tmp_path: Path, *, secure: bool = False) -> None:
        self.root = tmp_path / "fleet"
        self.source = Source(fleet_inputs(self.root), self.root)
        self.token: str | None = API_TOKEN
        self.app = FastAPI()
        install_dashboard(self.app, self.source, lambda: self.token, secure=secure,
                          stopping=lambda: self.source.stop[0])
        self.client = TestClient(self.app, base_url="https://tva.test" if secure else "http://tva.test")

    def login(self, token: str = API_TOKEN) -> int:
        form = self.client.get("/ui/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf is not None
        r = self.client.post("/ui/login", data={"csrf": csrf.group(1), "token": token},
                             follow_redirects=False)
        return r.status_code


@pytest.fixture
def ui(tmp_path: Path) -> Iterator[Setup]:
    s = Setup(tmp_path)
    yield s
    s.client.close()


def test_without_a_session_only_the_login_page_is_served(ui: Setup) -> None:
    for path in [*PAGES, "/ui/item/" + key(1), "/ui/custody?page=2"]:
        r = ui.client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/ui/login", path
        assert "film" not in r.text and "nas" not in r.text
    assert ui.client.get("/ui/events").status_code == 401
    page = ui.client.get("/ui/login")
    assert page.status_code == 200 and 'type="password"' in page.text
    assert "film" not in page.text and "nas" not in page.text
    assert ui.client.get("/ui/static/dashboard.css").status_code == 200
    assert ui.client.get("/ui/static/../app.py").status_code == 404


def test_login_needs_the_token_the_form_and_this_origin(ui: Setup) -> None:
    assert ui.login("wrong-token") == 401
    assert "tva_session" not in ui.client.cookies
    # No CSRF value from the form: refused.
    r = ui.client.post("/ui/login", data={"csrf": "made-up", "token": API_TOKEN}, follow_redirects=False)
    assert r.status_code == 403 and "tva_session" not in r.headers.get("set-cookie", "")
    # A cross-site post (another Origin) is refused even with the right values.
    form = ui.client.get("/ui/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    r = ui.client.post("/ui/login", data={"csrf": csrf, "token": API_TOKEN},
                       headers={"Origin": "https://evil.example"}, follow_redirects=False)
    assert r.status_code == 403 and "tva_session" not in r.headers.get("set-cookie", "")
    assert ui.login() == 303
    assert ui.client.get("/ui/").status_code == 200


def test_the_session_cookie_is_httponly_and_strict(tmp_path: Path) -> None:
    for secure in (False, True):
        s = Setup(tmp_path / str(secure), secure=secure)
        form = s.client.get("/ui/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
        r = s.client.post("/ui/login", data={"csrf": csrf, "token": API_TOKEN}, follow_redirects=False)
        cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("tva_session="))
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
        assert ("Secure" in cookie) is secure
        assert API_TOKEN not in cookie


def test_a_rotated_token_ends_every_session(ui: Setup) -> None:
    assert ui.login() == 303
    assert ui.client.get("/ui/", follow_redirects=False).status_code == 200
    ui.token = "a-new-token-after-rotation"
    assert ui.client.get("/ui/", follow_redirects=False).status_code == 303
    ui.token = None  # revoked: the dashboard is closed
    assert ui.login(API_TOKEN) == 401
    assert "closed" in ui.client.get("/ui/login").text


def test_logout_ends_the_session(ui: Setup) -> None:
    ui.login()
    ui.client.post("/ui/logout")
    assert ui.client.get("/ui/", follow_redirects=False).status_code == 303


def rows(html: str, table: str) -> list[str]:
    body = html.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    return re.findall(r"<tr[ >].*?</tr>", body.split("<tbody>", 1)[1], flags=re.S)


def test_fleet_page_shows_each_node_with_its_freshness(ui: Setup) -> None:
    ui.login()
    html = ui.client.get("/ui/").text
    nodes = rows(html, "nodes")
    assert len(nodes) == 4
    fresh = {re.search(r'data-node="([^"]+)"', r).group(1): re.search(  # type: ignore[union-attr]
        r"freshness\">(\w+)<", r).group(1) for r in nodes}  # type: ignore[union-attr]
    assert fresh == {"nas": "fresh", "desk": "fresh", "laptop": "stale", "seedbox": "gone"}
    assert "2 of 4 nodes fresh" in html
    assert "devices/nas.yaml:1" in html
    assert "fetching 1 item" in html  # desk
    assert "home down" in html  # laptop's VPN
    assert "800.0 GiB free of 2.0 TiB" in html or "free of" in html


def test_custody_lists_rules_and_pages_through_items(ui: Setup) -> None:
    ui.login()
    html = ui.client.get("/ui/custody").text
    assert "custody/films.yaml:1" in html  # the link to the rule's file and line
    items = rows(html, "items")
    assert len(items) == PAGE_SIZE
    assert "page 1 of 2 (60 rows)" in html
    # Items below the floor come first.
    assert "below-floor" in items[0]
    second = ui.client.get("/ui/custody?page=2").text
    assert len(rows(second, "items")) == 60 - PAGE_SIZE
    below = ui.client.get("/ui/custody?state=below-floor").text
    assert all("below-floor" in r for r in rows(below, "items"))


def test_item_page_shows_holders_in_order_and_the_reason(ui: Setup) -> None:
    ui.login()
    snap = ui.source.inputs
    assert snap is not None
    html = ui.client.get(f"/ui/item/{key(7)}").text  # only nas holds film 7
    assert "film 07" in html and "below-floor" in html
    holders = rows(html, "holders")
    assert any("nas" in r and "live" in r for r in holders)
    ranks = [int(m) for r in holders for m in re.findall(r"<td>(\d+)</td>", r)[:1]]
    assert ranks == sorted(ranks) and ranks[0] == 1
    # Its pin waits for the per-node rate limit: the page says so.
    assert "rate-limited" in html and "film 07" in html.split("rate-limited", 1)[1]
    assert "collection films at" in html and "items/films.yaml:1" in html
    # An item with a pending pin: the planner's reason, word for word.
    from controller.dashboard import build_snapshot

    action = build_snapshot(snap).plan.actions[0]
    html = ui.client.get(f"/ui/item/{action.target}").text
    reasons = re.findall(r'class="reason">(.*?)</span>', html)
    assert reasons == [action.reason.replace("'", "&#39;")]
    assert "1 of 2 copies; desk is next in this item&#39;s order" in reasons[0]
    # film 3: on nas (live) and laptop (stale, so away); film 5 on the gone seedbox.
    assert "away" in ui.client.get(f"/ui/item/{key(3)}").text
    assert "gone" in ui.client.get(f"/ui/item/{key(5)}").text
    assert "No such item" in ui.client.get("/ui/item/" + "0" * 40).text


def test_plan_history_and_reaper(ui: Setup) -> None:
    ui.login()
    plan = ui.client.get("/ui/plan").text
    assert rows(plan, "actions") and "Nothing to do" not in plan
    assert all("custody/films.yaml:1" in r for r in rows(plan, "actions"))  # the rule behind each
    only_desk = ui.client.get("/ui/plan?node=desk").text
    assert all("<td>desk</td>" in r for r in rows(only_desk, "actions"))
    history = ui.client.get("/ui/history").text
    assert len(rows(history, "journal")) == PAGE_SIZE and "page 1 of 2 (70 rows)" in history
    verify = ui.client.get("/ui/history?kind=verify").text
    assert all("<code>verify</code>" in r for r in rows(verify, "journal"))
    assert len(rows(verify, "journal")) == 35
    by_item = ui.client.get(f"/ui/history?item={key(4)[:10]}").text
    assert len(rows(by_item, "journal")) == 1
    assert rows(history, "reaper")


def test_transfers_show_progress_and_rate(ui: Setup) -> None:
    ui.login()
    html = ui.client.get("/ui/transfers").text
    [row] = rows(html, "transfers")[:1]
    assert "desk" in row and 'value="43.0"' in row and "2.4 MiB/s" in row


def test_hostile_names_are_escaped(ui: Setup) -> None:
    ui.login()
    for path in ["/ui/custody", "/ui/transfers", f"/ui/item/{key(1)}"]:
        html = ui.client.get(path).text
        assert HOSTILE not in html
        assert "&lt;script&gt;" in html, path


def test_no_secret_in_any_page(ui: Setup) -> None:
    ui.login()
    for path in [*PAGES, "/ui/custody?page=2", "/ui/history?page=2", "/ui/login"]:
        r = ui.client.get(path)
        assert r.status_code == 200, path
        for secret in SECRETS:
            assert secret not in r.text, (path, secret)
        assert r.headers["content-security-policy"].startswith("default-src 'none'")


def test_events_stream_sends_transfers_and_freshness(ui: Setup) -> None:
    ui.login()
    with ui.client.stream("GET", "/ui/events") as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        data = None
        for line in r.iter_lines():
            if line.startswith("data: "):
                data = json.loads(line[6:])
                ui.source.stop[0] = True  # the stream ends at its next check
    assert data is not None
    assert [t["node"] for t in data["transfers"]] == ["desk"]
    assert data["transfers"][0]["percent"] == 43.0
    assert data["nodes"]["seedbox"]["freshness"] == "gone"
    assert not any(s in json.dumps(data) for s in SECRETS)


def test_before_the_first_pass_the_page_says_so(ui: Setup) -> None:
    ui.login()
    ui.source.inputs = None
    ui.source.version = 2
    r = ui.client.get("/ui/")
    assert r.status_code == 503 and "first pass" in r.text


def test_the_stream_writes_only_when_something_changed(ui: Setup) -> None:
    """A new pass with the same transfers sends nothing; a pass that moved them sends one event."""
    from dataclasses import replace

    from tests.dashboard.synthetic import statuses

    ui.login()
    source = ui.source
    before = source.inputs
    assert before is not None
    moved = [st.model_copy(update={"transmission": st.transmission.model_copy(update={
        "torrents": [t.model_copy(update={"percent_done": 0.5}) if t.percent_done < 1 else t
                     for t in st.transmission.torrents]})}) for st in statuses()]
    calls = [0]

    def version() -> int:  # every look is a new pass; the fourth one moved the transfer
        calls[0] += 1
        if calls[0] == 4:
            source.inputs = replace(before, statuses=moved)
        return calls[0]

    source.dashboard_version = version  # type: ignore[method-assign]
    events = []
    with ui.client.stream("GET", "/ui/events") as r:
        for line in r.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
                if len(events) == 2:
                    source.stop[0] = True
    assert [e["transfers"][0]["percent"] for e in events] == [43.0, 50.0]
    assert calls[0] >= 4
