"""A web seed's answer carries at most ``MAX_RANGE`` bytes (Transmission 3.00 deadlocks when a
fast web seed gets more than about 60 MiB ahead of its event thread: controller/seeder.py)."""

from __future__ import annotations

import pytest

from controller.seeder import (
    MAX_LANES,
    MAX_RANGE,
    WEBSEEDS_PER_ADD,
    capped_range,
    lane_budget,
    lanes_per_holder,
)

LIMIT = 1000


@pytest.mark.parametrize(("asked", "served"), [
    ("bytes=0-16777215", "bytes=0-999"),            # a whole 16 MiB piece: the first LIMIT bytes
    ("bytes=5000-", "bytes=5000-5999"),              # open-ended
    ("bytes=5000-5999", "bytes=5000-5999"),          # exactly the limit: unchanged
    ("bytes=5000-5998", "bytes=5000-5998"),          # shorter: unchanged
    ("bytes=0-0", "bytes=0-0"),
    (" bytes=10-20000 ", "bytes=10-1009"),
], ids=["piece", "open-ended", "at-limit", "below-limit", "one-byte", "spaces"])
def test_a_long_single_range_is_cut_to_the_limit(asked: str, served: str) -> None:
    assert capped_range(asked, LIMIT) == served


@pytest.mark.parametrize("asked", [
    None, "", "bytes=-500", "bytes=0-10,20-30", "bytes=9-3", "items=0-5000", "bytes=a-b",
    "bytes=" + "9" * 30 + "-",
], ids=["none", "empty", "suffix", "several", "backwards", "other-unit", "not-numbers", "huge"])
def test_anything_else_is_left_for_the_file_response(asked: str | None) -> None:
    assert capped_range(asked, LIMIT) == asked


def test_the_default_limit_keeps_an_add_below_a_3_00_pipe() -> None:
    # The pipe holds about 3,855 messages of one 16 KiB block each.
    assert capped_range("bytes=0-", None) == f"bytes=0-{MAX_RANGE - 1}"
    # Four requests in flight per URL, WEBSEEDS_PER_ADD URLs: below the 3.00 pipe, with room.
    assert 4 * MAX_RANGE * WEBSEEDS_PER_ADD <= 0.8 * 3855 * 16384


@pytest.mark.parametrize(("holders", "lanes"), [
    (1, [3]), (2, [2, 1]), (3, [1, 1, 1]), (5, [1, 1, 1, 0, 0]),
])
def test_an_add_carries_at_most_three_web_seeds_shared_by_the_holders(
        holders: int, lanes: list[int]) -> None:
    assert lanes_per_holder(holders) == lanes
    assert sum(lanes_per_holder(holders)) == WEBSEEDS_PER_ADD
    assert lanes_per_holder(0) == []


@pytest.mark.parametrize(("rpc_version", "budget"), [
    (None, WEBSEEDS_PER_ADD), (15, WEBSEEDS_PER_ADD), (16, WEBSEEDS_PER_ADD),  # 3.00 or unknown
    (17, MAX_LANES), (18, MAX_LANES),  # 4.0, 4.1: blocks queued, no pipe to fill
])
def test_only_a_transmission_known_to_queue_its_blocks_gets_more_lanes(
        rpc_version: int | None, budget: int) -> None:
    assert lane_budget(rpc_version) == budget
    assert sum(lanes_per_holder(2, lane_budget(rpc_version))) == budget


def test_the_3_00_budget_stays_below_its_pipe_however_many_lanes_4_x_gets() -> None:
    assert MAX_LANES > WEBSEEDS_PER_ADD
    assert 4 * MAX_RANGE * lane_budget(16) <= 0.8 * 3855 * 16384
