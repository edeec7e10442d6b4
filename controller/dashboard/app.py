"""The dashboard's routes, mounted under ``/ui`` on the controller's API (``controller.daemon``).

Read-only, server-rendered (Jinja2, autoescaped), one small stylesheet and one small script from
this package, no build step. Without a session only the login page (and its stylesheet) is
served; everything else redirects there. Each pass of the daemon gives one ``Snapshot``
(``snapshot.py``), built on the first request after the pass and cached: a page is a slice of
it. The transfers and node freshness travel to open pages over one server-sent-events stream
per page, which the server writes only when they changed (the browser never polls).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import math
import secrets
import threading
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import jinja2
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from controller.dashboard.auth import CSRF_COOKIE, SESSION_COOKIE, Sessions, same_origin
from controller.dashboard.snapshot import (
    COPY_STATES,
    Inputs,
    Snapshot,
    build_snapshot,
    transfers_of,
)
from controller.display import safe
from controller.planner.freshness import Freshness, build_fleet_view
from controller.planner.text import age, size

__all__ = ["PAGE_SIZE", "PREFIX", "DashboardSource", "install_dashboard"]

PREFIX = "/ui"
PAGE_SIZE = 50
"""Rows per page of every long table (custody items, plan, journal, reaper)."""
MAX_STREAMS = 8
"""Open event streams at once; more get 503 (each holds a connection of the API's budget)."""
STREAM_SECONDS = 300.0
"""A stream ends after this long and the browser reconnects (EventSource does so by itself)."""
_STATIC = Path(__file__).parent / "static"
_TEMPLATES = Path(__file__).parent / "templates"
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    # Not no-referrer: with it a browser sends "Origin: null" on the login post (Fetch spec).
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}


class DashboardSource(Protocol):
    """What the dashboard needs from the daemon; both methods read cached state."""

    def dashboard_version(self) -> int:
        """Changes whenever a pass finished (the snapshot is rebuilt then)."""
        ...

    def dashboard_inputs(self) -> Inputs | None:
        """The last pass's inputs; None before the first pass."""
        ...

    def dashboard_secrets(self) -> Sequence[str]:
        """Values that must never appear in a page (tokens); scrubbed from every response."""
        ...

    def dashboard_file(self, path: str) -> str | None:
        """A file of the fleet repo at the applied revision (for the source links), or None."""
        ...


@dataclass
class _Cache:
    source: DashboardSource

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._snap: tuple[int, Snapshot] | None = None

    def get(self) -> Snapshot | None:
        version = self.source.dashboard_version()
        with self._lock:
            if self._snap is not None and self._snap[0] == version:
                return self._snap[1]
            inputs = self.source.dashboard_inputs()
            if inputs is None:
                return None
            snap = build_snapshot(inputs)
            self._snap = (version, snap)
            return snap


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_TEMPLATES)), autoescape=True,
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    env.filters["shown"] = lambda v: safe(str(v)) if v is not None else ""
    env.filters["size"] = lambda v: size(v) if v is not None else "–"
    env.filters["pct"] = lambda v: "–" if v is None else f"{v * 100:.0f}%"
    env.filters["short"] = lambda v: (v or "")[:12]
    env.filters["when"] = lambda v: v.strftime("%Y-%m-%d %H:%M:%S") if isinstance(v, datetime) else "–"
    env.filters["query"] = lambda params: urllib.parse.urlencode({k: v for k, v in params.items() if v})
    return env


def _page_of(rows: Sequence[Any], page: int) -> tuple[list[Any], dict[str, int]]:
    pages = max(1, math.ceil(len(rows) / PAGE_SIZE))
    page = min(max(page, 1), pages)
    start = (page - 1) * PAGE_SIZE
    return list(rows[start:start + PAGE_SIZE]), {"page": page, "pages": pages, "total": len(rows)}


def install_dashboard(
    app: FastAPI,
    source: DashboardSource,
    token: Callable[[], str | None],
    *,
    secure: bool = False,
    stopping: Callable[[], bool] = lambda: False,
    sessions: Sessions | None = None,
) -> None:
    """Add the dashboard's routes to ``app``; ``token()`` is the API token of the moment."""
    env = _environment()
    cache = _Cache(source)
    sessions = sessions or Sessions(token)
    streams = [0]
    streams_lock = threading.Lock()

    def scrub(text: str) -> str:
        for secret in [token() or "", *source.dashboard_secrets()]:
            if len(secret) >= 6:
                text = text.replace(secret, "***")
        return text

    def html(body: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(scrub(body), status_code=status, headers=_SECURITY_HEADERS)

    def render(request: Request, name: str, **ctx: Any) -> HTMLResponse:
        snap = cache.get()
        if snap is None:
            return html(env.get_template("waiting.html").render(prefix=PREFIX, nav=None), 503)
        body = env.get_template(name).render(prefix=PREFIX, snap=snap, nav=name, **ctx)
        return html(body)

    def cookie(response: Response, key: str, value: str, max_age: int | None = None) -> None:
        response.set_cookie(key, value, max_age=max_age, path=PREFIX, httponly=True,
                            samesite="strict", secure=secure)

    def authed(request: Request) -> bool:
        return sessions.valid(request.cookies.get(SESSION_COOKIE))

    def to_login() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/login", status_code=303, headers={"Cache-Control": "no-store"})

    def login_page(error: str | None = None, status: int = 200) -> HTMLResponse:
        csrf = _csrf()
        response = html(env.get_template("login.html").render(
            prefix=PREFIX, nav=None, csrf=csrf, error=error, closed=token() is None), status)
        cookie(response, CSRF_COOKIE, csrf, max_age=3600)
        return response

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/", status_code=303)

    @app.get(f"{PREFIX}/login")
    def login_form() -> HTMLResponse:
        return login_page()

    @app.post(f"{PREFIX}/login")
    async def login(request: Request) -> Response:
        scheme = "https" if secure else "http"
        if not same_origin(request.headers.get("origin"), request.headers.get("host"), scheme):
            return login_page("This form was sent from another site; log in from this page.", 403)
        body = await request.body()
        if len(body) > 4096:
            raise HTTPException(413)
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"), max_num_fields=4)
        given_csrf = form.get("csrf", [""])[0]
        expected_csrf = request.cookies.get(CSRF_COOKIE, "")
        if not expected_csrf or not _equal(given_csrf, expected_csrf):
            return login_page("The form expired; please try again.", 403)
        sid = sessions.login(form.get("token", [""])[0])
        if sid is None:
            return login_page("Wrong token." if token() is not None else
                              "This node has no api_token configured: the dashboard is closed.", 401)
        response = RedirectResponse(f"{PREFIX}/", status_code=303)
        cookie(response, SESSION_COOKIE, sid)
        response.delete_cookie(CSRF_COOKIE, path=PREFIX, httponly=True, samesite="strict", secure=secure)
        return response

    @app.post(f"{PREFIX}/logout")
    def logout(request: Request) -> Response:
        scheme = "https" if secure else "http"
        if same_origin(request.headers.get("origin"), request.headers.get("host"), scheme):
            sessions.logout(request.cookies.get(SESSION_COOKIE))
        response = to_login()
        response.delete_cookie(SESSION_COOKIE, path=PREFIX, httponly=True, samesite="strict", secure=secure)
        return response

    @app.get(PREFIX + "/static/{name}")
    def static(name: str) -> Response:
        kinds = {"dashboard.css": "text/css", "dashboard.js": "text/javascript"}
        if name not in kinds:
            raise HTTPException(404)
        return Response((_STATIC / name).read_bytes(), media_type=kinds[name],
                        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"})

    @app.get(f"{PREFIX}/")
    def fleet(request: Request) -> Response:
        if not authed(request):
            return to_login()
        return render(request, "fleet.html")

    @app.get(f"{PREFIX}/custody")
    def custody(request: Request, rule: str = "", state: str = "", page: int = 1) -> Response:
        if not authed(request):
            return to_login()
        snap = cache.get()
        states = [] if snap is None else [
            r for r in snap.custody if (not rule or r.rule == rule) and (not state or r.state == state)]
        states.sort(key=lambda r: (r.state == "ok", r.state != "below-floor", r.rule, r.name))
        shown, pager = _page_of(states, page)
        return render(request, "custody.html", rows=[snap.row(s) for s in shown] if snap else [],
                      pages=pager,
                      params={"rule": rule, "state": state})

    @app.get(PREFIX + "/item/{key}")
    def item(request: Request, key: str) -> Response:
        if not authed(request):
            return to_login()
        snap = cache.get()
        found = snap.item(key.lower()) if snap is not None else None
        if snap is not None and found is None:
            return render(request, "missing.html", what="item")
        return render(request, "item.html", item=found, states=COPY_STATES)

    @app.get(f"{PREFIX}/plan")
    def plan(request: Request, node: str = "", page: int = 1) -> Response:
        if not authed(request):
            return to_login()
        snap = cache.get()
        actions = [] if snap is None else [a for a in snap.plan.actions if not node or a.node == node]
        shown, pager = _page_of(actions, page)
        return render(request, "plan.html", actions=shown, pages=pager, params={"node": node})

    @app.get(f"{PREFIX}/history")
    def history(request: Request, node: str = "", kind: str = "", item: str = "",
                page: int = 1, rpage: int = 1) -> Response:
        if not authed(request):
            return to_login()
        snap = cache.get()
        entries = [] if snap is None else [
            e for e in snap.journal
            if (not node or e.node == node) and (not kind or e.kind.value == kind)
            and (not item or e.target.startswith(item.lower())
                 or item.lower() in snap.names.get(e.target, "").lower())]
        shown, pager = _page_of(entries, page)
        reaper, rpager = _page_of(snap.reaper if snap else [], rpage)
        return render(request, "history.html", entries=shown, pages=pager, reaper=reaper,
                      rpages=rpager, params={"node": node, "kind": kind, "item": item})

    @app.get(f"{PREFIX}/transfers")
    def transfers(request: Request) -> Response:
        if not authed(request):
            return to_login()
        return render(request, "transfers.html")

    @app.get(f"{PREFIX}/source")
    def source_file(request: Request, file: str = "", line: int = 0) -> Response:
        if not authed(request):
            return to_login()
        text = source.dashboard_file(file) if file else None
        if text is None:
            return render(request, "missing.html", what="file")
        return render(request, "source.html", file=file, line=line,
                      lines=text.splitlines()[:20000])

    def live() -> str | None:
        """The transfers and freshness of the moment, as the stream sends them (cheap: no pass)."""
        inputs = source.dashboard_inputs()
        if inputs is None:
            return None
        view = build_fleet_view(inputs.desired, inputs.statuses, inputs.now)
        fresh = {n for n, v in view.nodes.items() if v.freshness is Freshness.fresh}
        latest = [v.status for v in view.nodes.values() if v.status is not None]
        return scrub(json.dumps({
            "transfers": [t.as_json() for t in transfers_of(latest, fresh)],
            "nodes": {n: {"freshness": v.freshness.value, "age": age(v.age)} for n, v in view.nodes.items()},
        }, sort_keys=True))

    @app.get(f"{PREFIX}/events")
    async def events(request: Request) -> Response:
        if not authed(request):
            return Response(status_code=401, headers={"Cache-Control": "no-store"})
        with streams_lock:
            if streams[0] >= MAX_STREAMS:
                raise HTTPException(503, "too many open dashboards", headers={"Retry-After": "10"})
            streams[0] += 1

        async def stream() -> Any:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + STREAM_SECONDS
            version, sent, quiet = -1, None, 0
            try:
                yield "retry: 2000\n\n"
                while not stopping() and loop.time() < deadline and authed(request):
                    if await request.is_disconnected():
                        break
                    now_version = source.dashboard_version()
                    if now_version != version:
                        version = now_version
                        data = await run_in_threadpool(live)
                        # While a page is open, the next page's snapshot is built now, not
                        # on the click (at 50,000 holdings it costs about 1.5 plans).
                        loop.run_in_executor(None, cache.get)
                        if data is not None and data != sent:
                            sent, quiet = data, 0
                            yield f"event: live\ndata: {data}\n\n"
                    if quiet >= 15:
                        quiet = 0
                        yield ": still here\n\n"
                    await asyncio.sleep(1.0)
                    quiet += 1
            finally:
                with streams_lock:
                    streams[0] -= 1

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


def _csrf() -> str:
    return secrets.token_urlsafe(24)


def _equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
