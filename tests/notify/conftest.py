"""Fixtures of the notification tests: local Discord and ntfy servers, and a node whose
configuration allows loopback as a notification destination."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from controller.nodeconfig import install
from schemas.node import EgressConfig, NodeConfig
from tests.support.notify import discord_server, ntfy_server

__all__ = ["allow_loopback", "discord_server", "ntfy_server"]

DISCORD_TOKEN = "tokenSEKRIT-4f1c9a7e2b"
NTFY_TOPIC = "topicSEKRIT-91ab"


@pytest.fixture
def allow_loopback() -> Iterator[None]:
    install(NodeConfig(egress=EgressConfig(allow=["127.0.0.1"])))
    yield
    install(NodeConfig())
