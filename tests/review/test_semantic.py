"""The semantic diff: what changed in meaning, with readable lines, in a stable order."""

from __future__ import annotations

import shutil
from pathlib import Path

from controller.desired import load_fleet
from controller.review import compare, render_text, semantic_diff
from controller.review.sections import sections
from schemas.desired import DesiredState, Provenance
from tests.review.support import FLEET, NOW, statuses


def _load(root: Path) -> DesiredState:
    return load_fleet(str(root)).desired


def _copy(tmp_path: Path, edits: list[tuple[str, str, str]]) -> DesiredState:
    """The test fleet with each (file, old, new) edit applied in turn."""
    dst = tmp_path / "fleet"
    shutil.copytree(FLEET, dst)
    for rel, old, new in edits:
        text = (dst / rel).read_text()
        assert old in text, (rel, old)
        (dst / rel).write_text(text.replace(old, new))
    return _load(dst)


def test_spelling_comments_and_order_are_not_changes(tmp_path: Path) -> None:
    head = _copy(tmp_path, [
        ("fleet.yaml", "stale_after: 10m", "stale_after: 600s   # ten minutes"),
        ("custody/family.yaml", "min: 2\nplacement:", "placement:"),
        ("custody/family.yaml", "kind: CustodyRule\n", "kind: CustodyRule\nmin: 2\n"),
        ("devices/nas.yaml", "capacity: 4TiB", "capacity: 4096GiB"),
    ])
    assert semantic_diff(_load(FLEET), head) == []


def test_keyed_lists_sizes_and_pins_read_well(tmp_path: Path) -> None:
    head = _copy(tmp_path, [
        ("devices/nas.yaml", "capacity: 4TiB",
         "capacity: 2TiB\n  - path: /srv/more\n    capacity: 1TiB"),
        ("watchlists/tv-shows.yaml", "keep_next: 2",
         "keep_next: 3\n  - film: Alpha\n    collection: films"),
        ("duties.yaml", "acquirer: nas", "acquirer: tv"),
        ("devices/tv.yaml", "volume: 70", "volume: 80"),
    ])
    lines = [str(c) for c in semantic_diff(_load(FLEET), head)]
    assert lines == [
        "duties acquirer: pin: nas -> tv",
        "device nas: storage: /srv/more added",
        "device nas: storage[/srv/media].capacity: 4.0 TiB -> 2.0 TiB",
        "device tv: player.options.volume: 70 -> 80",
        "watchlist tv-shows: entries: film 'Alpha' added",
        "watchlist tv-shows: entries[show 'Show'].keep_next: 2 -> 3",
    ]


def test_item_changes_are_grouped_with_totals() -> None:
    base = _load(FLEET)
    # Every film becomes private (its source changed): one line per item in the data,
    # one grouped line in the report.
    items = {k: (it.model_copy(update={"provenance": Provenance.private, "f2f_only": True})
                 if it.collection == "films" else it) for k, it in base.items.items()}
    head = base.model_copy(update={"items": items})
    changes = semantic_diff(base, head)
    assert len(changes) == 6 and {c.kind for c in changes} == {"item"}
    r = compare(base, head, statuses(), NOW)
    (section,) = [s for s in sections(r, {}) if s.title.startswith("Desired-state changes")]
    text = render_text(r)
    assert section.title == "Desired-state changes (6)"
    assert "3 items: f2f_only: false -> true: Alpha [a0000000], Bravo [a0000000], " \
           "Charlie [a0000000]" in text
    assert "3 items: provenance: public -> private" in text


def test_added_and_removed_resources_say_what_they_are(tmp_path: Path) -> None:
    base = _load(FLEET)
    head = base.model_copy(update={
        "devices": {k: v for k, v in base.devices.items() if k != "seedbox"},
        "sources": {k: v for k, v in base.sources.items() if k != "public"},
    })
    lines = [str(c) for c in semantic_diff(head, base)]
    assert "device seedbox added (class seedbox)" in lines
    assert "source public added (provenance public)" in lines
    lines = [str(c) for c in semantic_diff(base, head)]
    assert lines == ["device seedbox removed", "source public removed"]


def test_a_fabric_added_then_a_key_rotated_and_a_member_added() -> None:
    travel = Path(__file__).resolve().parents[2] / "examples" / "travel"
    with_fabric = _load(travel)
    assert with_fabric.fabric is not None
    without = with_fabric.model_copy(update={"fabric": None})
    assert [str(c) for c in semantic_diff(without, with_fabric)] == [
        "fabric travel added (subnet [10.99.7.0/24, fd42:7661:7::/64], members "
        "[pi, laptop-jo, laptop-sam])"]
    members = list(with_fabric.fabric.members)
    old_key = members[1].public_key
    new_key = "qpeSD2J87XtZhyGCCgcLOAFb3niMLtNw+urffH7SkWM="
    members[1] = members[1].model_copy(update={"public_key": new_key})
    rotated = with_fabric.model_copy(update={"fabric": with_fabric.fabric.model_copy(
        update={"members": members[:2]})})
    assert [str(c) for c in semantic_diff(with_fabric, rotated)] == [
        "fabric travel: members: device 'laptop-sam' removed",
        f"fabric travel: members[device 'laptop-jo'].public_key: {old_key} -> {new_key}",
    ]
def test_an_acquired_item_says_what_it_is_for_and_why(tmp_path: Path) -> None:
    """A pull request of the acquirer (docs/acquisition.md) reads as what it proposes."""
    dst = tmp_path / "fleet"
    shutil.copytree(FLEET, dst)
    base = _load(dst)
    dead = next(k for k, it in base.items.items() if it.source == "public")
    new = "c" * 40
    (dst / "items" / "acquired.yaml").write_text(f"""apiVersion: tva/v1
kind: Collection
name: acquired-cccccccccccccccc
source: public
provenance: public
items:
  - {{name: Night Film, infohash: {new}, size: 1GiB}}
acquired:
  watchlist: tv-shows
  entry: film Night Film
  source: public
  release: Night.Film.2024.1080p-GRP
  searched_at: '2026-11-30T12:00:00Z'
  reason: 'best of 1 acceptable of 3 results: 1080p, 30 seeders'
  supersedes: {dead}
""")
    lines = [str(c) for c in semantic_diff(base, _load(dst))]
    added = next(ln for ln in lines if "Night Film" in ln and "item" in ln)
    assert "acquired for film Night Film from source public: Night.Film.2024.1080p-GRP" in added
    assert "30 seeders" in added and f"supersedes dead item {dead[:12]}" in added
    assert any(ln.startswith("item ") and dead[:8] in ln and "removed" in ln for ln in lines)


def test_a_watchlist_entry_the_fleet_lacks_shows_its_search(tmp_path: Path) -> None:
    """A change that makes the acquirer search: the review shows the search and why."""
    base = _load(FLEET)
    head = _copy(tmp_path, [
        ("sources/public.yaml", "search: true\n",
         'search: true\nindexer: {url: "http://192.168.1.5:9696/1/api"}\n'),
        ("watchlists/tv-shows.yaml", "entries:\n", "search: [public]\nentries:\n  - {film: Night Film}\n"),
    ])
    text = render_text(compare(base, head, statuses(), NOW))
    assert "research" in text
    assert "film Night Film is not in the fleet; search public for tv" in text
