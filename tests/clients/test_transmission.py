"""The Transmission client against a real daemon: one refusal class per direction, credentials
never in messages, a URL that is not one refused up front."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from controller.clients.transmission import (
    Capabilities,
    ReadRefused,
    RequestRefused,
    RpcMethod,
    TransmissionClient,
    WriteRefused,
    runs_transmission,
)
from controller.errors import PermanentError, TemporaryError, UnreachableError
from schemas.desired import Device
from tests.support.transmission import TransmissionDaemon, free_port

pytestmark = pytest.mark.transmission_versions  # each daemon test runs on 3.00 and 4.1


@pytest.fixture
def daemon(transmission_daemon: Callable[..., TransmissionDaemon]) -> TransmissionDaemon:
    return transmission_daemon()


def test_a_refused_read_is_temporary_and_a_refused_write_permanent(daemon: TransmissionDaemon) -> None:
    client = TransmissionClient(daemon.url, timeout=10)
    with pytest.raises(ReadRefused) as read:
        client.request(RpcMethod.FreeSpace, {"path": "not/absolute"})
    with pytest.raises(WriteRefused) as write:
        client.write(lambda c: c.add_torrent(b"not a torrent"))
    assert isinstance(read.value, TemporaryError) and isinstance(read.value, RequestRefused)
    assert isinstance(write.value, PermanentError) and isinstance(write.value, RequestRefused)


def test_unreachable_names_the_url_without_credentials() -> None:
    url = f"http://tva:s3cret-pw@127.0.0.1:{free_port()}/transmission/rpc"
    client = TransmissionClient(url, timeout=2)
    with pytest.raises(UnreachableError) as lost:
        client.read(lambda c: c.get_session())
    assert "s3cret-pw" not in str(lost.value) and "s3cret-pw" not in client.url
    assert "127.0.0.1" in str(lost.value)


def test_a_url_that_is_not_http_is_refused_before_any_request() -> None:
    with pytest.raises(PermanentError, match="not an http"):
        TransmissionClient("file:///etc/passwd")


def test_one_rule_decides_whether_a_device_runs_transmission() -> None:
    base = {"apiVersion": "tva/v1", "kind": "Device", "name": "box", "class": "server"}
    runs = Device.model_validate({**base, "addresses": {"transmission_rpc": "http://127.0.0.1:9091/transmission/rpc"}})
    player_only = Device.model_validate({**base, "services": ["player"],
                                         "addresses": {"transmission_rpc": "http://127.0.0.1:9091/transmission/rpc"}})
    no_url = Device.model_validate(base)
    assert runs_transmission(runs)
    assert not runs_transmission(player_only) and TransmissionClient.for_device(player_only) is None
    assert not runs_transmission(no_url)


def test_capabilities_follow_the_rpc_version_alone() -> None:
    old, new = Capabilities(16), Capabilities(18)
    assert old.table_format and not old.labels_on_add and not old.tracker_list
    assert new.table_format and new.labels_on_add and new.tracker_list
    assert not Capabilities(14).table_format
    assert old.known and new.known and Capabilities(17).known
    assert not Capabilities(19).known and not Capabilities(14).known


def test_capabilities_are_learned_from_the_daemon(daemon: TransmissionDaemon) -> None:
    client = TransmissionClient(daemon.url, timeout=10)
    session = client.session()
    caps = client.capabilities()
    assert caps.rpc_version == session.rpc_version == daemon.client().get_session().rpc_version
    assert caps.rpc_version == (16 if daemon.version == "3.00" else 18)
    assert caps.known
    client.reset()
    assert client.capabilities() == caps  # asked again after a reconnect
