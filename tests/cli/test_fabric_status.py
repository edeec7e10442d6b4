"""``tva status --fleet`` on a fleet with a fabric: a column with the members each node reaches
over it, from the published statuses."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from controller.cli.output import out
from controller.status.directory import DirectoryStatusTransport
from schemas.observed import FabricStatus, NodeStatus, TransmissionStatus
from tests.cli.support import tva

TRAVEL = Path(__file__).resolve().parents[2] / "examples" / "travel"


def test_the_fleet_view_shows_what_each_node_reaches(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(out, "width", 200)  # one table row per line
    now = datetime.now(UTC)
    shared = DirectoryStatusTransport(tmp_path / "statuses")
    for node, fabric in (
        ("pi", FabricStatus(interface="tva0", up=True, reachable=["laptop-jo", "laptop-sam"])),
        ("laptop-jo", FabricStatus(interface="tva0", up=False, error="tva0 does not exist")),
        ("laptop-sam", None),
    ):
        shared.publish(NodeStatus(node=node, observed_at=now, controller_version="1",
                                  transmission=TransmissionStatus(reachable=True), fabric=fabric))
    assert tva("status", str(TRAVEL), "--fleet", "--status", str(tmp_path / "statuses")) == 0
    rows = {line.split()[1]: line for line in capsys.readouterr().out.splitlines()
            if line.startswith("│") and line.split()[1] in ("pi", "laptop-jo", "laptop-sam")}
    assert rows["pi"].rstrip(" │").endswith("2/2"), rows
    assert rows["laptop-jo"].rstrip(" │").endswith("down"), rows
    assert rows["laptop-sam"].rstrip(" │").endswith("-"), rows
