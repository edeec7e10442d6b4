"""Allow-lists cover values: mpv option values (a real libmpv) and filesystem roots (a real
transmission-daemon, real symlinks, the real planner over published conditions)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from controller.act.transmission import TransmissionActuator
from controller.clients.transmission import TransmissionClient
from controller.daemon.node import NodeRuntime
from controller.errors import PermanentError
from controller.nodeconfig import install
from controller.planner import plan
from controller.player.host import PlayerHost, RefusedOption
from schemas.desired import Device
from schemas.node import NodeConfig, RootsConfig
from schemas.observed import Condition, ConditionStatus, NodeStatus
from schemas.plan import Action, ActionKind, action_id
from tests.cli.test_plan_cli import STATUS
from tests.conftest import REFERENCE_FLEET
from tests.support.transmission import TransmissionDaemon, make_payload_torrent

FILE_WRITERS = {
    "af": "lavfi=[ametadata=mode=print:file=/tmp/tva-pwned]",
    "vf": "lavfi=[metadata=mode=print:file=/tmp/tva-pwned]",
    "lavfi-complex": "[aid1]ametadata=mode=print:file=/tmp/tva-pwned[ao]",
    "ao": "pcm",
    "vo": "image",
    "audio-device": "pcm/tva-pwned",
    "screenshot-format": "png:file=/tmp/tva-pwned",
    "hwdec": "%9%/etc/hosts",
}


@pytest.fixture(autouse=True)
def node_config() -> Iterator[None]:
    yield
    install(NodeConfig())


def test_mpv_values_that_write_files_are_refused_by_the_player(short_dir: Path) -> None:
    for name, value in FILE_WRITERS.items():
        with pytest.raises(RefusedOption):
            PlayerHost(short_dir / "p.sock", {name: value}, headless=True)
    with PlayerHost(short_dir / "p.sock", {"volume": 40, "hwdec": "auto"}, headless=True) as host:
        for name, value in FILE_WRITERS.items():
            with pytest.raises(RefusedOption):
                host.set_option(name, value)
        host.set_option("audio-device", "pulse/alsa_output.pci-0000_00_1f.3.analog-stereo")
        host.set_option("volume", 55)
        assert host.options["volume"] == 55
    assert not Path("/tmp/tva-pwned").exists()


def _add(infohash: str, download_dir: str) -> Action:
    return Action(id=action_id("solo", ActionKind.add, infohash), node="solo",
                  kind=ActionKind.add, target=infohash, reason="test",
                  params={"download_dir": download_dir, "labels": ["tva"], "paused": True})


def test_transmission_is_never_given_a_refused_root(
        transmission_daemon: Callable[..., TransmissionDaemon], tmp_path: Path) -> None:
    daemon = transmission_daemon()
    state = tmp_path / "state"
    actuator = TransmissionActuator(TransmissionClient(daemon.url, timeout=10),
                                    refused_roots=[str(state)])
    torrent, infohash, _ = make_payload_torrent(tmp_path / "payload", 16 * 1024,
                                                name="authorized_keys")
    actuator.metainfo = lambda a: torrent.read_bytes()
    media = tmp_path / "media"
    media.mkdir()
    (media / "escape").symlink_to("/etc")
    for where in ("/root/.ssh", "/etc/cron.d", "/", str(state / "x"), str(media / "escape")):
        with pytest.raises(PermanentError, match="refused"):
            actuator.apply(_add(infohash, where))
    assert daemon.client().get_torrents() == [], "nothing reached Transmission"

    install(NodeConfig(roots=RootsConfig(allow=[str(media)])))
    with pytest.raises(PermanentError, match="outside this node's allowed roots"):
        actuator.apply(_add(infohash, str(tmp_path / "elsewhere")))
    assert actuator.apply(_add(infohash, str(media / "films"))) == "done"
    got = daemon.client().get_torrents([infohash], arguments=["downloadDir"])
    assert got[0].fields["downloadDir"] == str(media / "films")


def test_a_node_that_refuses_its_roots_is_given_nothing(tmp_path: Path) -> None:
    runtime = NodeRuntime("tv", str(tmp_path / "state"))
    from controller.cli.inputs import load_inputs

    inputs = load_inputs(str(REFERENCE_FLEET), status_dir=str(STATUS))
    tv = inputs.desired.devices["tv"]
    root = Device.model_validate({**tv.model_dump(by_alias=True),
                                  "storage": [{"path": "/", "capacity": "1TiB"}],
                                  "download_dir": None})
    cond = runtime.roots_condition(root, inputs.now)
    assert cond.status is ConditionStatus.false and cond.reason == "RootRefused"
    assert runtime.roots_condition(tv, inputs.now).status is ConditionStatus.true

    before = plan(inputs.desired, inputs.statuses, inputs.now)
    assert [a for a in before.actions if a.node == "tv" and a.kind is ActionKind.add]
    statuses = [
        s.model_copy(update={"conditions": [*s.conditions, Condition.model_validate(
            json.loads(cond.model_dump_json()))]}) if s.node == "tv" else s
        for s in inputs.statuses]
    assert all(isinstance(s, NodeStatus) for s in statuses)
    after = plan(inputs.desired, statuses, inputs.now)
    assert not [a for a in after.actions if a.node == "tv" and a.kind is ActionKind.add]
