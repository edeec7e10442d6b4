"""``tva fabric keys NODE``: the private key made once in the node's secrets directory, only the
public key printed; ``--rotate`` makes the next key without touching the current one."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.nodeconfig import current, install
from tests.cli.support import tva

pytestmark = pytest.mark.skipif(shutil.which("wg") is None, reason="wireguard-tools (wg) is missing")

TRAVEL = Path(__file__).resolve().parents[2] / "examples" / "travel"


@pytest.fixture
def node_toml(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    secrets = tmp_path / "secrets"
    toml = tmp_path / "node.toml"
    toml.write_text(f'[secrets]\ndirs = ["{secrets}"]\n')
    saved = current()
    yield str(toml), secrets
    install(saved)


def keys(capsys: pytest.CaptureFixture[str], toml: str, *extra: str) -> dict[str, object]:
    assert tva("fabric", "keys", "pi", "--repo", str(TRAVEL), "--node-config", toml, "--json",
               *extra) == 0
    data: dict[str, object] = json.loads(capsys.readouterr().out)
    return data


def public_of(private: str) -> str:
    return subprocess.run(["wg", "pubkey"], input=private, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_makes_the_key_once_and_prints_only_the_public_key(
        node_toml: tuple[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    toml, secrets = node_toml
    first = keys(capsys, toml)
    key_file = secrets / "tva0.key"
    private = key_file.read_text().strip()
    assert first["made"] is True and first["key_file"] == str(key_file)
    assert first["public_key"] == public_of(private)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert first["matches"] is False  # the example's committed key is not this node's
    second = keys(capsys, toml)
    assert (second["made"], second["public_key"]) == (False, first["public_key"])
    assert tva("fabric", "keys", "pi", "--repo", str(TRAVEL), "--node-config", toml) == 0
    shown = capsys.readouterr()
    assert shown.out.strip() == first["public_key"]
    assert private not in shown.out + shown.err


def test_rotate_makes_the_next_key_and_keeps_the_current(
        node_toml: tuple[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    toml, secrets = node_toml
    current_key = keys(capsys, toml)["public_key"]
    nxt = keys(capsys, toml, "--rotate")
    assert nxt["made"] is True and nxt["public_key"] != current_key
    assert (secrets / "tva0.key.next").exists()
    assert public_of((secrets / "tva0.key").read_text()) == current_key
