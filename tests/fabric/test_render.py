"""The pure half of the fabric: one node's WireGuard configuration from the fleet's fabric, the
collision probe's verdict, and the parse of ``wg show dump``."""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from controller.clients.wireguard import parse_dump
from schemas.fabric import (
    FAILOVER_AFTER,
    SESSION,
    EndpointChoice,
    Fabric,
    collisions,
    direct,
    failover,
    render,
)

KEYS = {
    "nas": "WrgcIHEZKmAY1rdPPloXJMIjF04CWFLy1q/3IkgORwA=",
    "seedbox": "4j58JGIKUdWsDXCfS5IsxgtpFDa6Vm2iB1xKYsbY3UU=",
    "laptop": "z5uuK2O641pTJUygWxGDhlx4Ym1D6pUocit3/mgSq3w=",
    "tv": "r2d9bIk3JtIyaDQvS3rUgPqOa1Ezgq+0F6EsyEGmymU=",
}


def fabric(**extra: object) -> Fabric:
    return Fabric.model_validate({
        "apiVersion": "tva/v1", "kind": "Fabric", "name": "home",
        "subnet": ["10.99.0.0/24", "fd42:7661::/64"],
        "members": [
            {"device": "nas", "addresses": ["10.99.0.1", "fd42:7661::1"], "public_key": KEYS["nas"],
             "endpoints": ["192.168.1.10:51820"], "keepalive": "25s"},
            {"device": "seedbox", "addresses": "10.99.0.2", "public_key": KEYS["seedbox"],
             "endpoints": ["seedbox.example.net:51820"], "relay": True},
            {"device": "laptop", "addresses": "10.99.0.3", "public_key": KEYS["laptop"],
             "keepalive": "15s"},
            {"device": "tv", "addresses": "10.99.0.4", "public_key": KEYS["tv"]},
        ],
        **extra,
    })


def peers(node: str) -> dict[str, tuple[str, ...]]:
    config = render(fabric(), node)
    assert config is not None
    return {p.device: p.allowed_ips for p in config.peers}


def test_fixed_node_reaches_roaming_members_through_the_relay() -> None:
    assert peers("nas") == {"seedbox": ("10.99.0.2/32", "10.99.0.3/32", "10.99.0.4/32")}


def test_relay_peers_with_everyone_directly_and_forwards() -> None:
    config = render(fabric(), "seedbox")
    assert config is not None and config.forwarding
    assert {p.device: p.allowed_ips for p in config.peers} == {
        "laptop": ("10.99.0.3/32",), "nas": ("10.99.0.1/32", "fd42:7661::1/128"),
        "tv": ("10.99.0.4/32",)}
    # Roaming members have no endpoint: the relay learns theirs from their packets.
    assert {p.device: p.endpoint for p in config.peers} == {
        "laptop": None, "nas": "192.168.1.10:51820", "tv": None}


def test_roaming_node_dials_the_relay_for_everyone_with_its_keepalive() -> None:
    config = render(fabric(), "laptop")
    assert config is not None and not config.forwarding
    assert [(p.device, p.endpoint, p.keepalive) for p in config.peers] == [
        ("seedbox", "seedbox.example.net:51820", 15)]
    assert config.peers[0].allowed_ips == (
        "10.99.0.2/32", "10.99.0.1/32", "fd42:7661::1/128", "10.99.0.4/32")
    assert config.addresses == ("10.99.0.3/24",)


def test_allowed_ips_never_leave_the_fabric() -> None:
    f = fabric()
    nets = f.networks()
    for m in f.members:
        config = render(f, m.device)
        assert config is not None
        for p in config.peers:
            for a in p.allowed_ips:
                assert a.endswith(("/32", "/128")), a
                net = ipaddress.ip_network(a)
                assert any(n.version == net.version and net.subnet_of(n)  # type: ignore[arg-type]
                           for n in nets)


def test_direct_is_symmetric() -> None:
    f = fabric()
    for a in f.members:
        for b in f.members:
            assert direct(f, a, b) == direct(f, b, a)


def test_without_a_relay_roaming_members_are_direct_peers_without_endpoint() -> None:
    data = fabric().model_dump(by_alias=True)
    data["members"][1]["relay"] = False
    config = render(Fabric.model_validate(data), "nas")
    assert config is not None
    assert {p.device: p.endpoint for p in config.peers} == {
        "seedbox": "seedbox.example.net:51820", "laptop": None, "tv": None}


def test_text_carries_the_key_only_when_asked() -> None:
    config = render(fabric(), "nas")
    assert config is not None
    text = config.text("PRIVATE")
    assert "PrivateKey = PRIVATE" in text and "ListenPort = 51820" in text
    assert "Endpoint = seedbox.example.net:51820" in text and "PersistentKeepalive = 25" in text
    assert "PRIVATE" not in repr(config)


def test_not_a_member() -> None:
    assert render(fabric(), "phone") is None


@pytest.mark.parametrize(("addresses", "routes", "expect"), [
    ([("10.99.0.7/24", "eth1")], [], ("10.99.0.0/24", "10.99.0.7/24", "eth1")),
    ([("10.0.0.5/8", "eth0")], [], ("10.99.0.0/24", "10.0.0.5/8", "eth0")),
    ([], [("10.99.0.0/16", "wg0")], ("10.99.0.0/24", "10.99.0.0/16", "wg0")),
    ([("fd42:7661::9/64", "eth0")], [], ("fd42:7661::/64", "fd42:7661::9/64", "eth0")),
])
def test_collision_names_the_subnet_and_what_collides(
        addresses: list[tuple[str, str]], routes: list[tuple[str, str]],
        expect: tuple[str, str, str]) -> None:
    found = collisions(fabric().subnet, addresses, routes, "tva0")
    assert [(c.subnet, c.colliding, c.where) for c in found] == [expect]
    assert expect[0] in found[0].message() and expect[1] in found[0].message()


def test_no_collision_from_own_interface_default_route_or_elsewhere() -> None:
    assert collisions(fabric().subnet,
                      [("10.99.0.1/24", "tva0"), ("192.168.1.10/24", "eth0"), ("fe80::1/64", "eth0")],
                      [("default", "eth0"), ("192.168.1.0/24", "eth0"), ("10.99.0.0/24", "tva0")],
                      "tva0") == []


def test_parse_dump_drops_the_private_key() -> None:
    text = ("PRIV\tPUB\t51820\toff\n"
            f"{KEYS['seedbox']}\t(none)\t203.0.113.5:51820\t10.99.0.2/32,10.99.0.3/32\t1700000000\t"
            "1234\t5678\t25\n"
            f"{KEYS['tv']}\t(none)\t(none)\t10.99.0.4/32\t0\t0\t0\toff\n")
    dump = parse_dump(text)
    assert dump.public_key == "PUB" and dump.listen_port == 51820
    seed, tv = dump.peers
    assert (seed.endpoint, seed.allowed_ips, seed.rx, seed.tx, seed.keepalive) == (
        "203.0.113.5:51820", ("10.99.0.2/32", "10.99.0.3/32"), 1234, 5678, 25)
    assert seed.latest_handshake is not None and seed.latest_handshake.timestamp() == 1700000000
    assert (tv.endpoint, tv.latest_handshake, tv.keepalive) == (None, None, None)
    assert "PRIV" not in repr(dump)


def test_no_value_can_add_a_line_to_the_wg_file() -> None:
    config = render(fabric(), "nas")
    assert config is not None
    hostile = replace(config, peers=(replace(config.peers[0], endpoint="x:1\nPostUp = sh"),))
    with pytest.raises(ValueError, match="line break"):
        hostile.text("PRIVATE")
    with pytest.raises(ValueError, match="line break"):
        config.text("PRIVATE\n[Peer]")


def two_endpoints() -> Fabric:
    data = fabric().model_dump(by_alias=True)
    data["members"][1]["endpoints"] = ["198.51.100.9:51820", "seedbox.example.net:51820"]
    return Fabric.model_validate(data)


def endpoint_of(f: Fabric, node: str, choice: EndpointChoice, device: str) -> str | None:
    config = render(f, node, choice.index)
    assert config is not None
    return next(p.endpoint for p in config.peers if p.device == device)


def test_a_silent_endpoint_fails_over_to_the_next_and_round() -> None:
    f = two_endpoints()
    t0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    c = failover(f, "nas", {}, EndpointChoice(index={}, since={}), t0)
    assert endpoint_of(f, "nas", c, "seedbox") == "198.51.100.9:51820"
    # Not yet: the first endpoint gets FAILOVER_AFTER to give a handshake.
    c = failover(f, "nas", {"seedbox": None}, c, t0 + FAILOVER_AFTER - timedelta(seconds=1))
    assert endpoint_of(f, "nas", c, "seedbox") == "198.51.100.9:51820"
    t1 = t0 + FAILOVER_AFTER
    c = failover(f, "nas", {"seedbox": None}, c, t1)
    assert endpoint_of(f, "nas", c, "seedbox") == "seedbox.example.net:51820"
    # A handshake keeps it there for as long as the session lives.
    c = failover(f, "nas", {"seedbox": t1 + timedelta(seconds=5)}, c, t1 + timedelta(minutes=2))
    assert endpoint_of(f, "nas", c, "seedbox") == "seedbox.example.net:51820"
    # Silent again past the session's lifetime: round the list to the first.
    late = t1 + SESSION + timedelta(minutes=1)
    c = failover(f, "nas", {"seedbox": t1 + timedelta(seconds=5)}, c, late)
    assert endpoint_of(f, "nas", c, "seedbox") == "198.51.100.9:51820"


def test_members_with_one_endpoint_or_behind_the_relay_never_move() -> None:
    f = two_endpoints()
    t0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    c = failover(f, "seedbox", {}, EndpointChoice(index={}, since={}), t0)
    c = failover(f, "seedbox", {"nas": None}, c, t0 + timedelta(hours=1))
    assert c.index == {}
    assert endpoint_of(f, "seedbox", c, "nas") == "192.168.1.10:51820"
