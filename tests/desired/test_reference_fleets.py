"""The fleets shipped with tva validate."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.desired import load_fleet
from tests.conftest import REFERENCE_FLEET, REPO_ROOT

EXAMPLES = sorted(p.parent for p in (REPO_ROOT / "examples").glob("*/fleet.yaml"))


@pytest.mark.parametrize("root", [REFERENCE_FLEET, *EXAMPLES], ids=lambda p: p.name)
def test_shipped_fleet_is_valid(root: Path) -> None:
    result = load_fleet(str(root))
    assert result.desired.devices, "a shipped fleet has at least one device"


def test_reference_fleet_shape() -> None:
    d = load_fleet(str(REFERENCE_FLEET)).desired
    assert set(d.devices) == {"nas", "laptop", "tv", "seedbox"}
    assert d.devices["nas"].always_on
    assert sorted(r.min for r in d.custody.values()) == [2, 3]
    assert d.watchlists and d.vpn
