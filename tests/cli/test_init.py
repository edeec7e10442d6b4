"""``tva init``: a new fleet repo that validates, with one commit, editor schemas, and no overwrites."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from controller.cli.main import app
from controller.desired import load_fleet
from controller.generate.json_schema import render_all
from controller.scaffold import Machine, render, slug

runner = CliRunner()
MODELINE = re.compile(r"^# yaml-language-server: \$schema=(\S+)$")


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    target = tmp_path / "Our Fleet"
    result = runner.invoke(app, ["init", str(target), "--device", "studio"])
    assert result.exit_code == 0, result.output
    return target


def test_init_then_validate(fleet: Path) -> None:
    result = runner.invoke(app, ["validate", str(fleet)])
    assert result.exit_code == 0, result.output
    desired = load_fleet(str(fleet)).desired
    assert desired.fleet.name == "our-fleet"  # from the directory name
    assert list(desired.devices) == ["studio"]
    assert [r.min for r in desired.custody.values()] == [1]
    assert list(desired.collections) == ["library"]
    assert desired.duties is not None


def test_one_commit_and_a_clean_tree(fleet: Path) -> None:
    log = _git(fleet, "log", "--format=%s").splitlines()
    assert log == ["New fleet repo (tva init)"]
    assert _git(fleet, "status", "--porcelain") == ""
    assert _git(fleet, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"
    tracked = set(_git(fleet, "ls-files").splitlines())
    assert {"fleet.yaml", "duties.yaml", "devices/studio.yaml", "README.md", ".gitignore"} <= tracked
    assert {f".tva/schemas/{name}" for name in render_all()} <= tracked


def test_editor_schemas_work_inside_the_new_repo(fleet: Path) -> None:
    yaml_files = sorted(fleet.rglob("*.yaml"))
    assert len(yaml_files) == 5
    for path in yaml_files:
        m = MODELINE.match(path.read_text().splitlines()[0])
        assert m, path
        schema_path = (path.parent / m.group(1)).resolve()
        assert schema_path.parent == (fleet / ".tva" / "schemas").resolve()
        schema = json.loads(schema_path.read_text())
        doc = yaml.safe_load(path.read_text())
        assert schema_path.name == f"{doc['kind'].lower()}.schema.json"
        errors = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(doc)]
        assert errors == [], (path, errors)
    assert runner.invoke(app, ["schema", "--check", "--out", str(fleet / ".tva" / "schemas")]).exit_code == 0


def test_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    result = runner.invoke(app, ["init", str(tmp_path)])
    assert result.exit_code == 1
    assert "not empty" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_accepts_an_existing_empty_directory_and_a_name(tmp_path: Path) -> None:
    result = runner.invoke(app, ["init", str(tmp_path), "--name", "lab"])
    assert result.exit_code == 0, result.output
    desired = load_fleet(str(tmp_path)).desired
    assert desired.fleet.name == "lab"
    (device,) = desired.devices  # named after this host
    assert device == slug(socket.gethostname().split(".")[0], "this-machine")


def test_templates_quote_awkward_paths(tmp_path: Path) -> None:
    machine = Machine(name="box", device_class="laptop", storage_path="/home/a b/#Media: 1", capacity_gib=3)
    for rel, content in render("x", machine).items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(content)
    device = load_fleet(str(tmp_path)).desired.devices["box"]
    assert device.storage[0].path == "/home/a b/#Media: 1"
    assert device.download_dir == "/home/a b/#Media: 1/torrents"
    assert device.capacity == 3 << 30


def test_refuses_a_bad_name(tmp_path: Path) -> None:
    result = runner.invoke(app, ["init", str(tmp_path / "x"), "--name", "My Fleet"])
    assert result.exit_code == 1
    assert "not a valid name" in result.output
    assert not (tmp_path / "x").exists()


def test_without_a_git_identity_config_is_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / "no-gitconfig"))
    for var in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "EMAIL"):
        monkeypatch.delenv(var, raising=False)
    target = tmp_path / "fleet"
    result = runner.invoke(app, ["init", str(target), "--device", "box"])
    assert result.exit_code == 0, result.output
    assert _git(target, "log", "--format=%an <%ae>").strip() == "tva init <tva@localhost>"
    local = subprocess.run(
        ["git", "-C", str(target), "config", "--local", "--get", "user.name"],
        capture_output=True, text=True, env=os.environ.copy(),
    )
    assert local.returncode == 1  # no identity written into the repo's config
    assert not (home / "no-gitconfig").exists() and not (home / ".gitconfig").exists()
