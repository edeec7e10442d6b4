"""The dashboard in a real browser (Debian's Chromium through chromedriver and Selenium) against
a real three-node lab (issue 16).

One story, in order: nothing but the login page without the token; log in; three fresh nodes;
floors raised, copies made; ``nas`` stops and the page shows it stale, then gone; the re-pin
that follows appears on the transfers page with a moving progress bar and finishes (the
fetching node's download speed is limited in the fleet repo so that it takes a while); the item
page gives the planner's reason; no page ever holds a secret. Screenshots of every page are
taken on the way: into docs/screenshots/ with ``TVA_SCREENSHOTS=1`` (they are committed), else
into the test's temporary directory.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from controller.lab import scenario as story_mod
from controller.lab.lab import TOKEN_ENV, wait
from controller.lab.netns import NamespaceRefused, available, run_isolated

WHY = available()
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = [
    pytest.mark.skipif(WHY is not None, reason=f"no private network namespace: {WHY}"),
    pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None,
                       reason="needs Debian's chromium and chromium-driver (scripts/setup installs them)"),
    pytest.mark.slow,
]

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
WRITE_SHOTS = bool(os.environ.get("TVA_SCREENSHOTS"))
"""Read at import: the suite's autouse fixture clears TVA_* variables before each test."""
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,900"]
LIMIT = "256KiB"
"""The fetching node's download limit during the re-pin: 8 MiB then take about 30 s."""


def browser(profile: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not look for a browser to download
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM or ""
    for flag in [*FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER or ""), options=options)


def dashboard_story(root: str, shots: str) -> dict[str, Any]:
    from selenium.webdriver.common.by import By

    s = story_mod.set_up(Path(root), film_sizes=(8 * story_mod.MiB,), private_size=1 * story_mod.MiB)
    lab = s.lab
    film, video = s.films[0], s.private
    assert video is not None
    order = [n for n in s.order(film) if n != "nas"]
    # The browser looks at the node expected to fetch once nas is gone; the page is the fleet's,
    # so it shows whichever node does (under load a node may be skipped for a late status).
    host = lab.nodes[order[1]]
    base = f"http://{host.ip}:{host.api_port}/ui"
    second, viewer = order[0], order[1]  # viewer: the node that fetches once nas is gone
    secrets = [os.environ[TOKEN_ENV], *(n.daemon.runtime.token for n in lab.nodes.values() if n.daemon)]
    out: dict[str, Any] = {"second": second, "viewer": viewer, "leaks": [], "shots": []}
    driver = browser(Path(root) / "chromium")

    def shot(name: str) -> None:
        path = Path(shots) / f"{name}.png"
        driver.save_screenshot(str(path))
        out["shots"].append(name)

    def page() -> str:
        html: str = driver.page_source
        out["leaks"] += [(driver.current_url, s[:6]) for s in secrets if s in html]
        return html

    def find(css: str) -> Any:
        """The element, once the page that has it is loaded (a click navigates asynchronously)."""
        def found() -> Any:
            elements = driver.find_elements(By.CSS_SELECTOR, css)
            return elements[0] if elements else None
        return wait(found, 30, f"{css} on the page")

    def text(css: str) -> str:
        found: str = driver.find_element(By.CSS_SELECTOR, css).text
        return found

    def badge(node: str) -> str:
        found: str = driver.execute_script(
            "const b = document.querySelector(`tr[data-node='${arguments[0]}'] .freshness`);"
            "return b ? b.textContent : null;", node)
        return found

    try:
        # Without the token: every page sends the browser to the login page, and only there.
        for path in ["/", "/custody", f"/item/{film.infohash}", "/plan", "/history", "/transfers"]:
            driver.get(base + path)
            out.setdefault("unauthenticated", []).append(
                (path, driver.current_url.removeprefix(base), "Log in" in page(), film.name in page()))
        shot("login")
        find("#token").send_keys("not-the-token")
        find("form button").click()
        out["wrong_token"] = wait(lambda: "Wrong token" in page(), 30, "the wrong token refused")
        find("#token").send_keys(os.environ[TOKEN_ENV])
        find("form button").click()
        out["after_login"] = wait(lambda: (u := driver.current_url.removeprefix(base)) != "/login" and u,
                                  30, "the login to finish")
        out["cookies"] = [(c["name"], c.get("httpOnly"), c.get("sameSite")) for c in driver.get_cookies()]
        out["token_in_cookies"] = any(os.environ[TOKEN_ENV] in c["value"] for c in driver.get_cookies())

        # The fleet page: three fresh nodes.
        def fresh() -> list[str] | None:
            driver.refresh()
            page()
            rows = driver.find_elements(By.CSS_SELECTOR, "#nodes tbody tr")
            states = [badge(r.get_attribute("data-node")) for r in rows]
            return states if states.count("fresh") == 3 else None
        out["fresh"] = wait(fresh, 60, "three fresh nodes on the fleet page")

        # Floors raised: copies made. Then the viewer (the node without the film, which fetches
        # it once nas is gone) has its downloads limited, so the re-pin is seen moving.
        story_mod.raise_floors(s, films=2, videos=2)
        holders = story_mod.wait_copies(s, film, 2)
        story_mod.wait_copies(s, video, 2)
        second = next(n for n in holders if n != "nas")
        viewer = next(n for n in order if n != second)
        out.update(second=second, viewer=viewer)
        v = lab.nodes[viewer]
        lab.repo.commit({f"devices/{viewer}.yaml": v.device_yaml()
                         + f"transmission: {{speed: {{down: {LIMIT}}}}}\n"},
                        f"{viewer}: downloads limited to {LIMIT}/s")
        wait(lambda: (lambda t: t is not None and t.get("speed-limit-down-enabled"))(
            v.daemon and v.daemon.last and v.daemon.last.status.transmission.session
            and v.daemon.last.status.transmission.session.settings), 60, f"{viewer}'s speed limit")
        driver.get(base + "/custody")
        wait(lambda: (driver.refresh(), page(), not driver.find_elements(
            By.CSS_SELECTOR, "#items .badge.below-floor"))[2], 60, "no item below its floor")
        shot("custody")

        # nas stops: the fleet page (live, no reload) shows it stale, then gone.
        driver.get(base + "/")
        lab.stop("nas")
        seen: list[str] = []

        def nas_is(state: str) -> bool:
            b = badge("nas")
            if b and (not seen or seen[-1] != b):
                seen.append(b)
            return b == state
        wait(lambda: nas_is("stale"), 60, "nas stale on the fleet page")
        wait(lambda: nas_is("gone"), 90, "nas gone on the fleet page")
        out["nas_states"] = seen
        page()
        shot("fleet")

        # The re-pin: the film on its way to the viewer, its bar moving, then done.
        driver.get(base + "/transfers")
        row = f"{viewer}/{film.infohash}"
        values: list[float] = []

        def progress() -> float | None:
            value = driver.execute_script(
                "const r = document.querySelector(`tr[data-id='${arguments[0]}'] progress`);"
                "return r ? r.value : null;", row)
            if value is not None and (not values or values[-1] != value):
                values.append(float(value))
            return value  # type: ignore[no-any-return]

        wait(lambda: progress() is not None, 120, "the re-pin on the transfers page")
        wait(lambda: (progress(), len({x for x in values if 0 < x < 100}) >= 2)[1], 120,
             "the progress bar to move")
        page()
        shot("transfers")
        out["rate_shown"] = driver.execute_script(
            "const r = document.querySelector(`tr[data-id='${arguments[0]}'] .rate`);"
            "return r ? r.textContent : null;", row)
        wait(lambda: (progress(), driver.execute_script(
            "return document.querySelector(`tr[data-id='${arguments[0]}']`) === null;", row))[1],
             180, "the re-pin to finish (its row gone)")
        out["progress"] = values
        out["holders_after"] = lab.holders(film.infohash)

        # The item page of the private video: one copy left, and why it stays below its floor.
        driver.get(f"{base}/item/{video.infohash}")
        html = page()
        out["video_item"] = {
            "state": "below-floor" in html,
            "warnings": [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".warnings li")],
            "holders": [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#holders tbody tr")],
        }
        shot("item")
        for name, path in [("plan", "/plan"), ("history", "/history")]:
            driver.get(base + path)
            page()
            shot(name)
        out["history_adds"] = text("#journal tbody").count("add")
        # Phone-sized and dark: the fleet page as a phone in dark mode shows it.
        driver.set_window_size(390, 844)
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {
            "features": [{"name": "prefers-color-scheme", "value": "dark"}]})
        driver.get(base + "/")
        page()
        out["dark_background"] = driver.execute_script(
            "return getComputedStyle(document.body).backgroundColor;")
        shot("fleet-phone-dark")
        # Logged out: nothing but the login page again.
        find(".logout button").click()
        wait(lambda: driver.current_url.endswith("/login"), 30, "the logout")
        driver.get(base + "/custody")
        out["after_logout"] = driver.current_url.removeprefix(base)
    except Exception as e:  # say what the browser was looking at
        seen = driver.find_element(By.TAG_NAME, "body").text[:3000]
        raise RuntimeError(f"{e}\nat {driver.current_url}:\n{seen}\n{lab.describe()}") from e
    finally:
        driver.quit()
        lab.stop()
    return out


def test_dashboard_in_a_browser(tmp_path: Path) -> None:
    shots = SHOTS if WRITE_SHOTS else tmp_path / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    try:
        r = run_isolated(dashboard_story, story_mod.Lab.addresses(3), str(tmp_path), str(shots),
                         timeout=900)
    except NamespaceRefused as e:  # pragma: no cover - depends on the kernel
        pytest.skip(str(e))
    # Without the token, every page is the login page, and shows nothing of the fleet.
    assert all(url == "/login" and login and not leaked for _, url, login, leaked in r["unauthenticated"])
    assert r["wrong_token"]
    assert r["after_login"] == "/"
    assert ("tva_session", True, "Strict") in r["cookies"] and not r["token_in_cookies"]
    assert r["fresh"] == ["fresh", "fresh", "fresh"]
    # nas went stale, then gone, on a page that was not reloaded.
    assert r["nas_states"][-2:] == ["stale", "gone"]
    # The re-pin appeared, its bar moved through at least two values, and it finished.
    inside = [x for x in r["progress"] if 0 < x < 100]
    assert len(set(inside)) >= 2 and inside == sorted(inside), r["progress"]
    assert r["rate_shown"] and r["rate_shown"].endswith("/s")
    assert r["viewer"] in r["holders_after"] and r["second"] in r["holders_after"]
    # The item page says why the private video stays below its floor.
    item = r["video_item"]
    assert item["state"] and any(h.startswith("1 ") or "live" in h for h in item["holders"])
    assert item["warnings"], "the reason the floor cannot be met is shown"
    assert r["history_adds"] >= 1
    assert r["dark_background"] != "rgb(251, 251, 250)"
    assert r["after_logout"] == "/login"
    assert r["leaks"] == [], "no page held the API token or a tracker token"
    assert sorted(r["shots"]) == sorted(["login", "custody", "fleet", "transfers", "item", "plan",
                                         "history", "fleet-phone-dark"])
    print(f"nas on the page: {r['nas_states']}; progress seen: {r['progress']}")
    for name in r["shots"]:
        assert (shots / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
