"""Valid but will not work: ``tva validate`` says so with file, line and field, and still
accepts the fleet (exit 0)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from controller.desired import load_fleet
from tests.cli.support import tva
from tests.conftest import REFERENCE_FLEET


@pytest.mark.parametrize(("peer", "why"), [
    ("127.0.0.1:51413", "loopback"),
    ("[::1]:51413", "loopback"),
    ("localhost:51413", "loopback"),
    ("0.0.0.0:51413", "unspecified"),
    ("192.168.1.10:0", "port 0"),
])
def test_a_peer_address_no_tracker_can_hand_out_is_a_warning(
    peer: str, why: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = tmp_path / "fleet"
    shutil.copytree(REFERENCE_FLEET, fleet)
    nas = fleet / "devices" / "nas.yaml"
    text = nas.read_text()
    old = next(line for line in text.splitlines() if line.strip().startswith("peer:"))
    nas.write_text(text.replace(old, old.split("peer:")[0] + f'peer: "{peer}"'))
    line = 1 + nas.read_text().splitlines().index(old.split("peer:")[0] + f'peer: "{peer}"')
    assert tva("validate", str(fleet)) == 0
    err = capsys.readouterr().err
    assert f"warning: {fleet}/devices/nas.yaml:{line}: addresses.peer:" in err and why in err
    assert tva("validate", str(fleet), "--json") == 0
    warnings = json.loads(capsys.readouterr().out)["warnings"]
    assert [(w["line"], w["field"]) for w in warnings] == [(line, "addresses.peer")]


def test_the_reference_fleet_has_no_warning() -> None:
    assert load_fleet(str(REFERENCE_FLEET)).warnings == []
