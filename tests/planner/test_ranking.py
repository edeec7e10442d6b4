"""Ranking releases by a watchlist's policy (pure: controller/planner/ranking.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from controller.planner.ranking import Wanted, group_of, judge, resolution_of
from schemas.acquisition import AcquisitionPolicy, Release

NOW = datetime(2026, 11, 30, tzinfo=UTC)
GiB = 1 << 30


def rel(title: str, *, seeders: int = 10, size: int = 4 * GiB, days: int = 3,
        infohash: str | None = None, link: str | None = "http://ix/dl/1.torrent") -> Release:
    return Release(source="public", title=title, seeders=seeders, size=size,
                   published=NOW - timedelta(days=days), link=link,
                   infohash=infohash or f"{abs(hash(title)) % (1 << 160):040x}")


def test_title_parts() -> None:
    assert resolution_of("Night.Film.2024.1080p.WEB-GRP") == "1080p"
    assert resolution_of("Night Film 2160P") == "2160p"
    assert resolution_of("Night Film x264") is None
    assert group_of("Night.Film.2024.1080p.WEB-GRP.mkv") == "GRP"


def test_policy_order_resolution_then_group_then_seeders_then_age() -> None:
    policy = AcquisitionPolicy(resolutions=["1080p", "720p"], preferred_groups=["GOOD"])
    got = judge([
        rel("Night.Film.720p-GOOD", seeders=500),
        rel("Night.Film.1080p-OTHER", seeders=50),
        rel("Night.Film.1080p-GOOD", seeders=5),
        rel("Night.Film.1080p-ANY", seeders=50, days=1),
    ], Wanted("night film"), policy, NOW)
    assert [j.release.title for j in got] == [
        "Night.Film.1080p-GOOD", "Night.Film.1080p-ANY", "Night.Film.1080p-OTHER",
        "Night.Film.720p-GOOD"]
    assert all(j.accepted for j in got)
    assert "preferred group GOOD" in got[0].why(policy) and "1080p (#1" in got[0].why(policy)


def test_refusals_name_the_rule() -> None:
    policy = AcquisitionPolicy(resolutions=["1080p"], min_size=GiB, max_size=10 * GiB,
                               min_seeders=3, blocked_words=["CAM", "hdts"],
                               max_age=timedelta(days=30))
    got = {j.release.title: j.refused for j in judge([
        rel("Night.Film.1080p.CAM-X"),
        rel("Night.Film.1080p.tiny", size=GiB // 2),
        rel("Night.Film.1080p.huge", size=20 * GiB),
        rel("Night.Film.1080p.lonely", seeders=1),
        rel("Night.Film.1080p.old", days=90),
        rel("Night.Film.480p"),
        rel("Day.Film.1080p"),
        rel("Night.Film.1080p.nolink", link=None),
        rel("Night.Film.1080p.fine"),
    ], Wanted("night film"), policy, NOW)}
    assert got["Night.Film.1080p.fine"] is None
    assert got["Night.Film.1080p.CAM-X"] == "blocked word 'CAM'"
    assert got["Night.Film.1080p.tiny"].startswith("smaller than min_size")
    assert got["Night.Film.1080p.huge"].startswith("larger than max_size")
    assert "fewer than min_seeders 3" in got["Night.Film.1080p.lonely"]
    assert got["Night.Film.1080p.old"] == "older than max_age"
    assert got["Night.Film.480p"].startswith("resolution 480p is not one of 1080p")
    assert got["Day.Film.1080p"] == "does not match: the title lacks 'night'"
    assert got["Night.Film.1080p.nolink"] == "no .torrent link and no magnet"


def test_episode_and_size_matching() -> None:
    ep = Wanted("the show", season=2, episode=5)
    got = judge([rel("The.Show.S02E05.720p"), rel("The.Show.S02E04.720p"),
                 rel("The.Show.S02.Complete")], ep, AcquisitionPolicy(), NOW)
    assert next((j.release.title, j.accepted) for j in got) == ("The.Show.S02E05.720p", True)
    assert sum(j.accepted for j in got) == 1
    dead = Wanted("night film", size=4 * GiB)
    got = judge([rel("Night Film", size=4 * GiB + 1000), rel("Night Film repack", size=3 * GiB)],
                dead, AcquisitionPolicy(), NOW)
    assert [j.accepted for j in got] == [True, False]
    assert "not the dead item's" in (got[1].refused or "")


def test_duplicates_and_determinism() -> None:
    a = rel("Night Film 1080p", infohash="1" * 40)
    b = rel("Night Film 1080p again", infohash="1" * 40)
    c = rel("Night Film 1080p other", infohash="2" * 40)
    one = judge([a, b, c], Wanted("night film"), AcquisitionPolicy(), NOW)
    two = judge([c, a, b], Wanted("night film"), AcquisitionPolicy(), NOW)
    assert [j.release.title for j in one if j.accepted] == [j.release.title for j in two if j.accepted]
    assert sum(1 for j in one if j.refused == "a duplicate of another result") == 1
