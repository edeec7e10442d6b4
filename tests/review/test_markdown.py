"""The PR comment: it fits one GitHub comment, summarises long lists with correct totals, and
escapes what people wrote."""

from __future__ import annotations

import hashlib
import re

import pytest

from controller.desired import load_fleet
from controller.review import MARKER, MAX_COMMENT, Review, compare, render_markdown, render_text
from controller.review.markdown import escape, invalid_head_markdown
from schemas.desired import Collection, CustodyRule, DesiredState, Provenance, ResolvedItem
from schemas.observed import NodeStatus, TorrentState, TorrentStatus
from schemas.types import format_size
from tests.review.support import FLEET, FREE, NOW, GiB, MiB, statuses

N = 10_000
SIZE = 64 * MiB


def _rule(minimum: int) -> CustodyRule:
    return CustodyRule.model_validate({
        "apiVersion": "tva/v1", "kind": "CustodyRule", "name": "archive",
        "select": {"collections": ["archive"]}, "min": minimum,
    })


def archive_change(max_pins: int | None = None) -> tuple[DesiredState, DesiredState,
                                                          list[NodeStatus]]:
    """BASE keeps one copy of 10,000 archive items (all on the nas); HEAD raises it to two."""
    base = load_fleet(str(FLEET)).desired
    keys = [hashlib.sha1(f"archive-{i}".encode()).hexdigest() for i in range(N)]
    names = [f"Archive {i:05d}" for i in range(N)]
    items = {k: ResolvedItem(key=k, name=n, collection="archive", size=SIZE, labels=(),
                             provenance=Provenance.fleet, source=None, f2f_only=False,
                             magnet=None, torrent=None, episode=None)
             for k, n in zip(keys, names, strict=True)}
    collection = Collection.model_validate({
        "apiVersion": "tva/v1", "kind": "Collection", "name": "archive",
        "items": [{"name": n, "infohash": k, "size": SIZE} for k, n in zip(keys, names, strict=True)],
    })
    fleet = base.fleet
    if max_pins is not None:
        policy = fleet.policy
        fleet = fleet.model_copy(update={"policy": policy.model_copy(update={
            "custody": policy.custody.model_copy(update={"max_new_pins_per_node": max_pins})})})
    b = base.model_copy(update={
        "fleet": fleet, "collections": {**base.collections, "archive": collection},
        "items": {**base.items, **items}, "custody": {**base.custody, "archive": _rule(1)},
    })
    h = b.model_copy(update={"custody": {**b.custody, "archive": _rule(2)}})
    observed = []
    for s in statuses(free=dict.fromkeys(FREE, 2048 * GiB)):
        if s.node == "nas":
            extra = [TorrentStatus(infohash=k, name=n, size=SIZE, percent_done=1.0,
                                   state=TorrentState.seeding, labels=["tva"],
                                   download_dir="/srv/media", done_date=NOW)
                     for k, n in zip(keys, names, strict=True)]
            s = s.model_copy(update={"transmission": s.transmission.model_copy(
                update={"torrents": [*s.transmission.torrents, *extra]})})
        observed.append(s)
    return b, h, observed


def _names(r: DesiredState) -> dict[str, str]:
    return {k: it.name for k, it in r.items.items()}


def _balanced(md: str) -> bool:
    return md.count("<details>") == md.count("</details>")


@pytest.fixture(scope="module", params=[None, 1_000_000], ids=["rate-limited", "one-pass"])
def archive_review(request: pytest.FixtureRequest) -> tuple[int | None, Review, dict[str, str]]:
    base, head, observed = archive_change(request.param)
    return request.param, compare(base, head, observed, NOW), _names(head)


def test_a_floor_raised_on_10000_items_fits_one_comment_with_correct_totals(
        archive_review: tuple[int | None, Review, dict[str, str]]) -> None:
    max_pins, r, names = archive_review
    md = render_markdown(r, names)
    assert len(md) <= MAX_COMMENT
    assert md.startswith(MARKER + "\n") and _balanced(md)
    # Totals come from the full data, whatever the lists show.
    assert r.delta.projected_pins == N
    assert r.delta.projected_pin_bytes == N * SIZE
    assert sum(n.projected_pins for n in r.nodes) == N
    assert f"- Plan: 10,000 new copies ({format_size(N * SIZE)} to move) on 3 nodes" in md
    assert f"| **all** | **10,000** | **{format_size(N * SIZE)}** |" in md
    assert "<summary>Below floor (10,000)</summary>" in md
    assert "10,000 items fall below a custody floor" in md
    floor = next(x for x in r.risks if x.code == "below-floor")
    assert floor.count == N == len(floor.details) == len(r.floors)
    shown = [line for line in md.splitlines() if line.startswith("- Archive ")]
    more = re.search(r"- \.\.\. and ([\d,]+) more\n\n</details>\n\n<details>\n<summary>Capacity",
                     md)
    assert more is not None and len(shown) + int(more.group(1).replace(",", "")) == N
    if max_pins is None:
        # The next pass: 5 pins on each of the three custodians with room; the rest deferred.
        assert len(r.delta.pins) == 15 and r.delta.deferred_head == N - 15
        assert "the next pass makes 15 new copies of 10,000; HEAD defers 9,985 pins" in md
    else:
        assert len(r.delta.pins) == N and r.delta.deferred_head == 0
        listed = sum(1 for line in md.splitlines() if line.startswith("- pin Archive "))
        assert 0 < listed < N
        assert "more actions" in md


def test_the_hard_cap_cuts_at_a_line_and_closes_what_is_open(
        archive_review: tuple[int | None, Review, dict[str, str]]) -> None:
    _, r, names = archive_review
    md = render_markdown(r, names, max_chars=900)
    assert len(md) <= 900
    assert _balanced(md)
    assert "cut to fit one comment" in md
    assert "**Risk flags (1)**" in md, "the summary comes first and survives the cut"


def _review_with(name: str) -> Review:
    base = load_fleet(str(FLEET)).desired
    key = "a000000000000000000000000000000000000003"
    item = base.items[key].model_copy(update={"name": name})
    head = base.model_copy(update={"items": {**base.items, key: item}})
    return compare(base, head, statuses(), NOW)


def test_user_text_cannot_break_the_comment() -> None:
    hostile = "</details><img src=x> | @everyone [click](http://x)\nnext"
    r = _review_with(hostile)
    md = render_markdown(r)
    assert "</details><img" not in md and "<img" not in md
    assert "@everyone" not in md
    assert _balanced(md)
    assert escape("a|b") == "a\\|b"
    text = render_text(r)
    assert hostile.split("\n")[0] in text, "the terminal shows it as written"


def test_no_effect_renders_a_short_comment() -> None:
    base = load_fleet(str(FLEET)).desired
    r = compare(base, base, statuses(), NOW)
    assert not r.effect and r.exit_code == 0
    md = render_markdown(r)
    assert "No effect" in md and "Risk flags" not in md


def test_invalid_head_comment_lists_problems_and_fits() -> None:
    problems = [f"custody/r{i}.yaml:3: min: must be at most 64" for i in range(5000)]
    md = invalid_head_markdown("pr-head", "0123456789abcdef", problems)
    assert len(md) <= MAX_COMMENT
    assert md.startswith(MARKER) and "5,000 problems" in md
    assert "custody/r0.yaml:3: min: must be at most 64" in md
    assert "more problems" in md
