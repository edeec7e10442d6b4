"""The fleet tracker: only its own node's Transmission gets addresses; IPv4, IPv6 and host-name
holders are all served; the gates apply. (Over real HTTP: tests/daemon/test_api.py; against an
outside BitTorrent client: tests/lab/test_privacy.py.)"""

from __future__ import annotations

import ipaddress
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastbencode import bdecode  # type: ignore[attr-defined]

from controller.desired import load_fleet
from controller.tracker import Tracker, parse_announce
from schemas.desired import DesiredState
from tests.planner.harness import node_status

FLEET = Path(__file__).parent / "planner" / "cases" / "_fleet"
NOW = datetime(2025, 6, 1, 20, 0, tzinfo=UTC)
TOKEN = "t" * 43


def fleet(**peers: str) -> DesiredState:
    """The planner cases' fleet, with some devices' peer addresses replaced."""
    desired = load_fleet(str(FLEET)).desired
    devices = dict(desired.devices)
    for name, peer in peers.items():
        dev = devices[name]
        devices[name] = dev.model_copy(update={
            "addresses": dev.addresses.model_copy(update={"peer": peer})})
    return desired.model_copy(update={"devices": devices})


def tracker(desired: DesiredState, node: str = "tv", **holdings: list[str]) -> Tracker:
    t = Tracker(node, TOKEN)
    statuses = [node_status(desired, n, {"torrents": [{"item": i} for i in items]}, NOW)
                for n, items in holdings.items()]
    t.update(desired, statuses, NOW)
    return t


def query(desired: DesiredState, item: str) -> bytes:
    key = next(k for k, it in desired.items.items() if it.name == item)
    return urllib.parse.urlencode({"info_hash": bytes.fromhex(key), "left": 0}).encode()


def decode(answer: bytes) -> dict[bytes, Any]:
    data: dict[bytes, Any] = bdecode(answer)
    return data


def v4(raw: bytes) -> list[str]:
    return [f"{ipaddress.IPv4Address(raw[i:i + 4])}:{int.from_bytes(raw[i + 4:i + 6], 'big')}"
            for i in range(0, len(raw), 6)]


def v6(raw: bytes) -> list[str]:
    return [f"[{ipaddress.IPv6Address(raw[i:i + 16])}]:{int.from_bytes(raw[i + 16:i + 18], 'big')}"
            for i in range(0, len(raw), 18)]


def test_own_transmission_gets_the_holders() -> None:
    desired = fleet()
    t = tracker(desired, nas=["Alpha"], laptop=["Alpha"])
    answer = decode(t.announce(query(desired, "Alpha"), "127.0.0.1", TOKEN))
    assert sorted(v4(answer[b"peers"])) == ["192.168.1.10:51413", "192.168.1.20:51413"]
    # The tv's own peer address is one of its addresses: its Transmission may announce from it.
    assert b"peers" in decode(t.announce(query(desired, "Alpha"), "192.168.1.30", TOKEN))


@pytest.mark.parametrize(("asking", "token"), [
    ("127.0.0.1", None), ("127.0.0.1", "wrong"), ("127.0.0.1", TOKEN[:-1]),
    ("192.168.1.99", TOKEN), ("10.0.0.1", TOKEN), ("::ffff:192.168.1.99", TOKEN), ("", TOKEN),
])
def test_anyone_else_gets_a_failure_and_no_address(asking: str, token: str | None) -> None:
    desired = fleet()
    t = tracker(desired, nas=["Alpha", "Secret One"], laptop=["Secret One"])
    for item in ("Alpha", "Secret One"):
        answer = decode(t.announce(query(desired, item), asking, token))
        assert b"failure reason" in answer
        assert b"peers" not in answer and b"peers6" not in answer


def test_ipv6_and_host_name_holders_are_served() -> None:
    desired = fleet(nas="[2001:db8::10]:51413", laptop="localhost:6881")
    t = tracker(desired, nas=["Alpha"], laptop=["Alpha"], seedbox=["Alpha"])
    answer = decode(t.announce(query(desired, "Alpha"), "::1", TOKEN))
    served = v4(answer[b"peers"]) + v6(answer.get(b"peers6", b""))
    assert "[2001:db8::10]:51413" in served
    assert "127.0.0.1:6881" in served or "[::1]:6881" in served  # localhost, resolved


def test_a_malformed_announce_is_a_failure() -> None:
    assert isinstance(parse_announce(b"info_hash=short"), str)
    desired = fleet()
    t = tracker(desired)
    assert b"failure reason" in t.announce(b"info_hash=short", "127.0.0.1", TOKEN)


def test_a_tracker_needs_a_token() -> None:
    with pytest.raises(ValueError):
        Tracker("tv", "")
