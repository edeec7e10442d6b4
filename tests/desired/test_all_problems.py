"""All problems at once: the cross-file checks run even when some files failed to load.

A resource that failed validation (or a file that is not even valid YAML) still counts as
defined, so the person fixing the repo sees each real problem once and no echo of it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from controller.desired import load_fleet
from controller.errors import Problem, ValidationFailed
from tests.desired.test_bad_fleets import BASE


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    root = tmp_path / "fleet"
    shutil.copytree(BASE, root)
    return root


def edit(root: Path, rel: str, old: str, new: str) -> None:
    path = root / rel
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} not once in {rel}"
    path.write_text(text.replace(old, new))


def problems_of(root: Path) -> list[Problem]:
    with pytest.raises(ValidationFailed) as info:
        load_fleet(str(root))
    return info.value.problems


def where(root: Path, problems: list[Problem]) -> list[tuple[str, int, str]]:
    return [(str(Path(p.file).relative_to(root)), p.line, p.field) for p in problems]


def test_three_defects_in_three_files_are_all_reported(fleet: Path) -> None:
    edit(fleet, "devices/laptop.yaml", "labels: [home]", "labels: [home]\ncolour: grey")
    edit(fleet, "custody/films.yaml", "max: 3", "max: 1")
    edit(fleet, "duties.yaml", "public_swarm_face: seedbox", "public_swarm_face: seedbx")
    found = problems_of(fleet)
    assert where(fleet, found) == [
        ("custody/films.yaml", 7, ""),
        ("devices/laptop.yaml", 6, "colour"),
        ("duties.yaml", 4, "pins.public_swarm_face"),
    ], "\n".join(map(str, found))
    assert "max (1) is below min (2)" in found[0].message
    assert found[1].message == "unknown field"
    assert "unknown device 'seedbx'" in found[2].message
    # laptop is named by duties.yaml, vpn/home-wg.yaml and watchlists/laptop.yaml, and is one of
    # the custodians a floor counts: none of that is reported while its own file is broken.


def test_a_file_that_is_not_yaml_still_defines_its_resource(fleet: Path) -> None:
    edit(fleet, "devices/laptop.yaml", "labels: [home]", "labels: [home")
    edit(fleet, "custody/films.yaml", "collections: [films]", "collections: [film]")
    found = problems_of(fleet)
    assert where(fleet, found) == [
        ("custody/films.yaml", 5, "select.collections[0]"),
        ("devices/laptop.yaml", 6, ""),
    ], "\n".join(map(str, found))
    assert found[1].message.startswith("invalid YAML")


def test_a_broken_fleet_file_is_not_also_a_missing_fleet(fleet: Path) -> None:
    edit(fleet, "fleet.yaml", "grace: 2h", "grace: soon")
    edit(fleet, "watchlists/laptop.yaml", "device: laptop", "device: laptpo")
    found = problems_of(fleet)
    assert where(fleet, found) == [
        ("fleet.yaml", 8, "policy.freshness.grace"),
        ("watchlists/laptop.yaml", 4, "device"),
    ], "\n".join(map(str, found))
    assert not any("no Fleet" in p.message for p in found)


def test_a_missing_fleet_is_still_reported_beside_other_problems(fleet: Path) -> None:
    (fleet / "fleet.yaml").unlink()
    edit(fleet, "devices/nas.yaml", "class: server", "class: fridge")
    found = problems_of(fleet)
    assert where(fleet, found) == [
        ("devices/nas.yaml", 4, "class"),
        ("fleet.yaml", 0, ""),
    ], "\n".join(map(str, found))
    assert found[1].message == "no Fleet resource found"


def test_a_broken_vpn_profile_leaves_vpn_rules_unjudged(fleet: Path) -> None:
    edit(fleet, "vpn/home-wg.yaml", "type: wireguard\n", "")
    # With the profile gone, the laptop would look VPN-less and the pin would break the
    # public_swarm_face invariant; with the profile merely broken there is no verdict.
    edit(fleet, "duties.yaml", "public_swarm_face: seedbox", "public_swarm_face: laptop")
    found = problems_of(fleet)
    assert where(fleet, found) == [("vpn/home-wg.yaml", 1, "type")], "\n".join(map(str, found))


def test_a_broken_device_does_not_make_a_floor_unreachable(fleet: Path) -> None:
    edit(fleet, "duties.yaml", "custodian: [nas, laptop]", "custodian: [nas, laptop, seedbox]")
    edit(fleet, "custody/films.yaml", "min: 2", "min: 3")
    edit(fleet, "devices/seedbox.yaml", "always_on: true", "always_on: sometimes")
    found = problems_of(fleet)
    assert where(fleet, found) == [("devices/seedbox.yaml", 5, "always_on")], "\n".join(map(str, found))


def test_the_same_floor_is_judged_once_the_device_loads(fleet: Path) -> None:
    """The control for the test above: the floor check is skipped, not broken."""
    edit(fleet, "custody/films.yaml", "min: 2", "min: 3")
    found = problems_of(fleet)
    assert where(fleet, found) == [("custody/films.yaml", 6, "min")]


def test_an_unreadable_name_hides_every_reference_of_that_kind(fleet: Path) -> None:
    edit(fleet, "devices/nas.yaml", "name: nas", "name: NAS")
    found = problems_of(fleet)
    assert where(fleet, found) == [("devices/nas.yaml", 3, "name")], "\n".join(map(str, found))


def test_a_misspelt_kind_still_defines_the_name(fleet: Path) -> None:
    edit(fleet, "devices/nas.yaml", "kind: Device", "kind: Devise")
    found = problems_of(fleet)
    assert where(fleet, found) == [("devices/nas.yaml", 2, "kind")], "\n".join(map(str, found))
    assert found[0].hint == "did you mean 'Device'?"


def test_references_to_truly_missing_names_are_still_reported(fleet: Path) -> None:
    """Broken resources widen what counts as known by their own names only."""
    edit(fleet, "devices/nas.yaml", "always_on: true", "always_on: sometimes")
    edit(fleet, "vpn/home-wg.yaml", "devices: [laptop]", "devices: [laptop, tablet]")
    found = problems_of(fleet)
    assert where(fleet, found) == [
        ("devices/nas.yaml", 5, "always_on"),
        ("vpn/home-wg.yaml", 7, "devices[1]"),
    ], "\n".join(map(str, found))
