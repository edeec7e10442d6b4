"""``tva review`` on a real git repo: one crafted commit per kind of change (issue 7).

Each case commits an edit of the test fleet on top of BASE and reviews BASE..HEAD against the
same saved statuses, as CI would. It checks the semantic diff lines, the duty moves, the plan
delta, the exact set of risk flags and the exit code.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from controller.cli import review as review_cmd
from tests.review.support import NOW, change, edit, fleet_repo, key, statuses, write_statuses

ATTIC = """apiVersion: tva/v1
kind: Device
name: attic
class: server
always_on: true
labels: [home]
storage:
  - path: /mnt/attic
    capacity: 2TiB
"""
LAPTOP_FILMS = """apiVersion: tva/v1
kind: Watchlist
name: laptop-films
device: laptop
entries:
  - film: Charlie
    collection: films
"""


@dataclass
class Case:
    files: Callable[[], Mapping[str, str | None]]
    changes: list[str]
    risks: set[str]
    exit: int = 2
    pins: list[str] = field(default_factory=list)
    removals: list[str] = field(default_factory=list)
    moves: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)
    details: list[str] = field(default_factory=list)
    """Fragments that must appear in some risk's details."""


CASES: dict[str, Case] = {
    "floor-raised": Case(
        lambda: edit("custody/films.yaml", "min: 1", "min: 2"),
        changes=["custody films: min: 1 -> 2"], risks={"below-floor"},
        pins=[f"seedbox/add/{key('Charlie')}"],
        details=["Charlie (a0000000): custody/films needs 2, holds 1, 2 after the planned copies"],
    ),
    "device-added": Case(
        lambda: {"devices/attic.yaml": ATTIC},
        changes=["device attic added (class server)"], risks=set(),
        moves={"custodian": (["laptop", "nas", "seedbox", "tv"],
                             ["attic", "laptop", "nas", "seedbox", "tv"])},
    ),
    "device-removed": Case(
        lambda: {"devices/tv.yaml": None, "watchlists/tv-shows.yaml": None,
                 "custody/keep-e1.yaml": None},
        changes=["device tv removed", "watchlist tv-shows removed", "custody keep-e1 removed"],
        risks={"below-floor"},
        pins=[f"laptop/add/{key('Holiday')}", f"laptop/add/{key('Wedding')}"],
        moves={"custodian": (["laptop", "nas", "seedbox", "tv"], ["laptop", "nas", "seedbox"]),
               "player": (["laptop", "tv"], ["laptop"])},
        details=["Wedding (b0000000): custody/family needs 2, holds 1, 2 after"],
    ),
    "watchlist-added": Case(
        lambda: {"watchlists/laptop-films.yaml": LAPTOP_FILMS},
        changes=["watchlist laptop-films added (device laptop, 1 entry)"], risks=set(),
        pins=[f"laptop/add/{key('Charlie')}"],
    ),
    "vpn-profile-changed": Case(
        lambda: {**edit("vpn/home-wg.yaml", "kill_switch: true", "kill_switch: false")},
        changes=["vpn home-wg: kill_switch: true -> false"], risks=set(),
    ),
    "policy-changed": Case(
        lambda: edit("fleet.yaml", "stale_after: 10m", "stale_after: 30m"),
        changes=["fleet review-lab: policy.freshness.stale_after: 10m -> 30m"], risks=set(),
    ),
    "suspend-on": Case(
        lambda: edit("fleet.yaml", "suspend: false", "suspend: true"),
        changes=["fleet review-lab: policy.suspend: false -> true"], risks={"suspend-on"},
    ),
    "prune-on": Case(
        lambda: edit("fleet.yaml", "prune: false", "prune: true"),
        changes=["fleet review-lab: policy.custody.prune: false -> true"],
        risks={"prune-on", "data-removal"},
        removals=[f"nas/remove-data/{key('Alpha')}"],
        details=["custody/films: prunes copies above max 2; 1 copy removed by this plan"],
    ),
    "duty-pin-moved": Case(
        lambda: edit("duties.yaml", "acquirer: nas", "acquirer: tv"),
        changes=["duties acquirer: pin: nas -> tv"], risks=set(),
        moves={"acquirer": (["nas"], ["tv"])},
    ),
    "private-item-reachable-by-the-public-face": Case(
        lambda: edit("duties.yaml", "public_swarm_face: seedbox", "public_swarm_face: laptop"),
        changes=["duties public_swarm_face: pin: seedbox -> laptop"],
        risks={"f2f-exposed", "face-at-home"},
        moves={"public_swarm_face": (["seedbox"], ["laptop"])},
        details=["Secret One (c0000000): held on laptop, which becomes the public_swarm_face",
                 "laptop (laptop) fetches every public item the fleet needs from the public "
                 "swarm, behind VPN profile home-wg only"],
    ),
    "capacity-overcommit": Case(
        lambda: edit("devices/nas.yaml", "capacity: 4TiB", "capacity: 10GiB"),
        changes=["device nas: storage[/srv/media].capacity: 4.0 TiB -> 10.0 GiB"],
        risks={"capacity"},
        details=["nas: would hold 20.0 GiB, over its declared capacity of 10.0 GiB"],
    ),
    "removal": Case(
        lambda: {"custody/keep-e1.yaml": None},
        changes=["custody keep-e1 removed"], risks={"data-removal"},
        removals=[f"tv/remove-data/{key('Show E1')}"],
        details=["tv: remove-data Show E1 (d0000000), 500.0 MiB - watchlist/tv-shows"],
    ),
    "comments-only": Case(
        lambda: edit("custody/films.yaml", "min: 1", "min: 1   # one copy is plenty"),
        changes=[], risks=set(), exit=0,
    ),
}


@pytest.fixture(scope="module")
def status_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_statuses(tmp_path_factory.mktemp("status"), statuses())


def review_json(repo: Path, base: str, head: str, status: Path,
                capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    rc = review_cmd.run(base, head, repo=str(repo), status_dir=str(status), as_json=True)
    captured = capsys.readouterr()
    data: dict[str, Any] = json.loads(captured.out) if captured.out.strip() else {}
    return rc, data


@pytest.mark.parametrize("name", list(CASES))
def test_case(name: str, tmp_path: Path, git_env: None, status_dir: Path,
              capsys: pytest.CaptureFixture[str]) -> None:
    case = CASES[name]
    repo, base = fleet_repo(tmp_path / "fleet")
    head = change(repo, case.files(), message=name)
    rc, r = review_json(repo, base, head, status_dir, capsys)
    assert rc == case.exit, r
    assert r["effect"] is (case.exit == 2)
    texts = [c["text"] for c in r["changes"]]
    assert sorted(texts) == sorted(case.changes)
    assert {x["code"] for x in r["risks"]} == case.risks
    assert [a["id"] for a in r["delta"]["pins"]] == case.pins
    assert [a["id"] for a in r["delta"]["removals"]] == case.removals
    moves = {m["duty"]: (m["before"], m["after"]) for m in r["duty_moves"]}
    assert moves == case.moves
    details = [d for x in r["risks"] for d in x["details"]]
    for fragment in case.details:
        assert any(fragment in d for d in details), (fragment, details)
    # The review is planned as of the newest status, so it is the same tomorrow.
    assert r["now"] == NOW.replace(minute=59, hour=19).isoformat().replace("+00:00", "Z")
    assert r["head"]["revision"] == head and r["base"]["compared"] == base


def test_floor_raised_beyond_the_room_left(tmp_path: Path, git_env: None,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Three copies of the family videos where the laptop has room for one more small item:
    the floor cannot be reached (danger) and the planner's capacity-short warning is new."""
    GiB = 1 << 30
    status = write_statuses(tmp_path / "status", statuses(free={"laptop": 15 * GiB}))
    repo, base = fleet_repo(tmp_path / "fleet")
    head = change(repo, edit("custody/family.yaml", "min: 2", "min: 3"))
    rc, r = review_json(repo, base, head, status, capsys)
    assert rc == 2
    risks = {x["code"]: x for x in r["risks"]}
    assert set(risks) == {"below-floor", "capacity"}
    floor = risks["below-floor"]
    assert floor["level"] == "danger" and floor["count"] == 2
    assert "1 gets the missing copies" in floor["summary"]
    assert "1 cannot reach the floor" in floor["summary"]
    assert any("Wedding" in d and "short by 1" in d for d in floor["details"])
    assert any("no eligible custodian has room" in d for d in risks["capacity"]["details"])
    assert [a["id"] for a in r["delta"]["pins"]] == [f"laptop/add/{key('Holiday')}"]
