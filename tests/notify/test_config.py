"""``notify:`` in fleet.yaml: a mistake is a validation error naming file, line and field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from controller.desired import load_fleet
from controller.errors import ValidationFailed
from tests.notify.test_alerts import CASES

TARGET = """\
notify:
  senders: [{sender}]
  quiet_hours: {{begin: "23:00", end: "07:00", timezone: {zone}}}
  targets:
    - name: phone
      url: {url}
"""


def _problems(tmp_path: Path, sender: str = "nas", zone: str = "Europe/Paris",
              url: str = "{env: TVA_NTFY_URL}", extra: str = "") -> list[str]:
    fleet = tmp_path / "fleet"
    shutil.copytree(CASES, fleet)
    with (fleet / "fleet.yaml").open("a") as f:
        f.write(TARGET.format(sender=sender, zone=zone, url=url) + extra)
    try:
        load_fleet(str(fleet))
    except ValidationFailed as e:
        return [str(p) for p in e.problems]
    return []


def test_a_valid_notify_section_loads(tmp_path: Path) -> None:
    assert _problems(tmp_path) == []


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({"sender": "nass"}, "fleet.yaml:10: notify.senders[0]: unknown device 'nass'"),
    ({"url": '"discord://1/token"'}, "fleet.yaml:14: notify.targets[0].url: inline secrets are refused"),
    ({"zone": "Mars/Olympus"}, "fleet.yaml:11: notify.quiet_hours.timezone"),
    ({"extra": "    - name: phone\n      url: {env: TVA_OTHER}\n"}, "declared twice"),
], ids=["unknown-sender", "inline-url", "unknown-zone", "duplicate-target"])
def test_mistakes_are_named(tmp_path: Path, kwargs: dict[str, str], expected: str) -> None:
    problems = _problems(tmp_path, **kwargs)
    assert any(expected in p for p in problems), problems
