"""``tva notify test [TARGET]`` against a local ntfy server, and the open conditions in
``tva status --fleet``."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from controller.desired import load_fleet
from controller.nodeconfig import install
from controller.status.directory import DirectoryStatusTransport
from schemas.node import NodeConfig
from tests.cli.support import tva
from tests.notify.conftest import NTFY_TOPIC
from tests.notify.test_alerts import CASES, NOW, _fleet
from tests.support.notify import FakeService

NOTIFY = """\
notify:
  targets:
    - name: phone
      url: {env: TVA_NTFY_URL}
    - name: chat
      url: {env: TVA_CHAT_URL}
"""


@pytest.fixture(autouse=True)
def _reset_node_config() -> None:
    yield
    install(NodeConfig())


@pytest.fixture
def fleet(tmp_path: Path, ntfy_server: FakeService, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "fleet"
    shutil.copytree(CASES, root)
    with (root / "fleet.yaml").open("a") as f:
        f.write(NOTIFY)
    monkeypatch.setenv("TVA_NTFY_URL", f"ntfy://127.0.0.1:{ntfy_server.port}/{NTFY_TOPIC}")
    return root


@pytest.fixture
def node_toml(tmp_path: Path) -> Path:
    path = tmp_path / "node.toml"
    path.write_text('[egress]\nallow = ["127.0.0.1"]\n')
    return path


def test_a_test_message_reaches_the_target(fleet: Path, node_toml: Path, ntfy_server: FakeService,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert tva("notify", "test", "phone", "--repo", str(fleet), "--node-config", str(node_toml)) == 0
    [req] = ntfy_server.delivered()
    assert req.body["topic"] == NTFY_TOPIC and req.body["title"] == "tva cases: test"
    assert "sent a test message to phone" in capsys.readouterr().out


def test_every_target_is_tried_and_a_failure_is_exit_1(
    fleet: Path, node_toml: Path, ntfy_server: FakeService, capsys: pytest.CaptureFixture[str],
) -> None:
    assert tva("notify", "test", "--repo", str(fleet), "--node-config", str(node_toml)) == 1
    assert len(ntfy_server.delivered()) == 1
    error = capsys.readouterr().err
    assert "chat: secret env:TVA_CHAT_URL is not set" in error


def test_a_destination_the_node_does_not_allow_is_named_not_shown(
    fleet: Path, ntfy_server: FakeService, capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    assert tva("notify", "test", "phone", "--repo", str(fleet), "--node-config", str(empty)) == 1
    captured = capsys.readouterr()
    assert "egress.allow" in captured.err and NTFY_TOPIC not in captured.err + captured.out
    assert ntfy_server.requests == []


def test_an_unknown_target_is_an_error(fleet: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert tva("notify", "test", "pager", "--repo", str(fleet)) == 1
    assert "unknown notification target 'pager'; targets: phone, chat" in capsys.readouterr().err


def test_status_fleet_shows_open_conditions_and_the_notifier(
    fleet: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    desired = load_fleet(str(fleet)).desired
    shared = tmp_path / "statuses"
    transport = DirectoryStatusTransport(shared)
    for status in _fleet(desired, laptop_age="3h"):
        transport.publish(status)
    assert tva("status", str(fleet), "--fleet", "--status", str(shared), "--json") == 0
    data = json.loads(capsys.readouterr().out)
    keys = [c["key"] for c in data["conditions"]]
    assert "copy-lost/laptop" in keys and any(k.startswith("below-floor/films/") for k in keys)
    assert data["notifier"] in {"nas", "tv", "seedbox"}  # fresh (the laptop is gone)
    assert tva("status", str(fleet), "--fleet", "--status", str(shared)) == 0
    text = capsys.readouterr().out
    assert "Open conditions" in text and "copy-lost" in text
    assert f"notifier: {data['notifier']} (2 targets)" in text
    assert data["now"] == (NOW - timedelta(minutes=1)).isoformat()  # the newest status's time


def test_a_review_shows_the_reference_never_the_url(
    tmp_path: Path, git_env: None, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.support.gitrepo import commit_files, git

    repo = tmp_path / "repo"
    shutil.copytree(CASES, repo)
    git(repo, "init", "--quiet", "-b", "main")
    git(repo, "config", "user.name", "owner")
    git(repo, "config", "user.email", "owner@example.invalid")
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", "base")
    fleet_yaml = (repo / "fleet.yaml").read_text() + NOTIFY
    commit_files(repo, {"fleet.yaml": fleet_yaml}, "tell the owner", push=False)
    monkeypatch.setenv("TVA_CHAT_URL", "discord://1234567890/reviewSEKRIT-token")
    assert tva("review", "HEAD~1", "HEAD", "--repo", str(repo), "--markdown") == 2  # an effect
    text = capsys.readouterr().out
    assert "notify.targets" in text and "TVA_CHAT_URL" in text
    assert "reviewSEKRIT" not in text and NTFY_TOPIC not in text
