"""The apprise client against local servers speaking Discord's and ntfy's protocols: what goes
on the wire, where it may go, and that the URL's secret never shows."""

from __future__ import annotations

import logging

import pytest

from controller.clients.notify import NotifyClient, mask
from controller.egress import EgressRefused
from controller.errors import PermanentError, TemporaryError
from schemas.notify import NotifyTarget
from tests.notify.conftest import DISCORD_TOKEN, NTFY_TOPIC
from tests.support.notify import FakeService


def _target(name: str, env: str) -> NotifyTarget:
    return NotifyTarget(name=name, url={"env": env})


@pytest.fixture
def discord(discord_server: FakeService, monkeypatch: pytest.MonkeyPatch) -> NotifyClient:
    monkeypatch.setenv("TVA_DISCORD_URL", f"discord://1234567890/{DISCORD_TOKEN}")
    return NotifyClient({"discord": discord_server.base + "/api/webhooks"})


def test_discord_gets_a_webhook_post(allow_loopback: None, discord: NotifyClient,
                                     discord_server: FakeService) -> None:
    discord.send(_target("chat", "TVA_DISCORD_URL"), "tva home: 1 new", "- below floor: Alpha")
    [req] = discord_server.delivered()
    assert req.path == f"/api/webhooks/1234567890/{DISCORD_TOKEN}"
    assert req.headers["content-type"].startswith("application/json")
    assert req.body["content"] == "tva home: 1 new\r\n- below floor: Alpha"


def test_ntfy_gets_a_json_publish(allow_loopback: None, ntfy_server: FakeService,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TVA_NTFY_URL", f"ntfy://127.0.0.1:{ntfy_server.port}/{NTFY_TOPIC}")
    NotifyClient().send(_target("phone", "TVA_NTFY_URL"), "tva home: 1 new", "- copy lost: nas")
    [req] = ntfy_server.delivered()
    assert req.path == "/"
    assert req.body == {"topic": NTFY_TOPIC, "title": "tva home: 1 new",
                        "message": "- copy lost: nas"}


@pytest.mark.parametrize("code", [500, 429])
def test_a_refusal_is_temporary_and_keeps_the_token_out(
    code: int, allow_loopback: None, discord: NotifyClient, discord_server: FakeService,
    caplog: pytest.LogCaptureFixture,
) -> None:
    discord_server.fail_next(*([code] * 5))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(TemporaryError) as e:
        discord.send(_target("chat", "TVA_DISCORD_URL"), "t", "b")
    assert f"error={code}" in str(e.value)
    assert DISCORD_TOKEN not in str(e.value)
    assert DISCORD_TOKEN not in caplog.text
    assert discord_server.requests and not discord_server.delivered()


def test_the_destination_must_be_allowed_by_the_operator(
    discord: NotifyClient, discord_server: FakeService,
) -> None:
    with pytest.raises(EgressRefused, match=r"egress\.allow"):
        discord.send(_target("chat", "TVA_DISCORD_URL"), "t", "b")
    assert discord_server.requests == []


def test_a_metadata_address_is_refused(allow_loopback: None,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TVA_HOOK", "json://169.254.169.254/latest")
    with pytest.raises(EgressRefused, match=r"169\.254\.169\.254"):
        NotifyClient().send(_target("hook", "TVA_HOOK"), "t", "b")


def test_a_service_whose_destination_is_unknown_is_refused(
    allow_loopback: None, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TVA_MAIL", "mailtos://user:hunter2pass@example.org?to=me@example.org")
    with pytest.raises(PermanentError, match="cannot tell where") as e:
        NotifyClient().send(_target("mail", "TVA_MAIL"), "t", "b")
    assert "hunter2pass" not in str(e.value)


def test_a_url_apprise_cannot_read_is_permanent_and_not_shown(
    allow_loopback: None, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TVA_BAD", "nosuchservice://secretpart-77/x")
    with pytest.raises(PermanentError) as e:
        NotifyClient().send(_target("bad", "TVA_BAD"), "t", "b")
    assert "secretpart-77" not in str(e.value) and "env:TVA_BAD" in str(e.value)


def test_a_reference_outside_the_prefix_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME_SECRET", "discord://1/2")
    with pytest.raises(PermanentError, match="refused"):
        NotifyClient().send(_target("x", "HOME_SECRET"), "t", "b")


def test_mask_hides_every_secret_part() -> None:
    url = f"discord://1234567890/{DISCORD_TOKEN}/?avatar=no&token=abcdef123"
    text = f"POST https://discord.com/api/webhooks/1234567890/{DISCORD_TOKEN} abcdef123"
    masked = mask(text, url)
    assert DISCORD_TOKEN not in masked and "abcdef123" not in masked
    assert "1234567890" not in masked


def test_a_redirect_is_not_followed(allow_loopback: None, ntfy_server: FakeService,
                                    discord_server: FakeService,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A service that answers 307 cannot send the message past the egress check."""
    ntfy_server.redirect_to = f"{discord_server.base}/api/webhooks/1/stolen"
    monkeypatch.setenv("TVA_NTFY_URL", f"ntfy://127.0.0.1:{ntfy_server.port}/{NTFY_TOPIC}")
    with pytest.raises(TemporaryError):
        NotifyClient().send(_target("phone", "TVA_NTFY_URL"), "t", "b")
    assert len(ntfy_server.requests) == 1
    assert discord_server.requests == []
