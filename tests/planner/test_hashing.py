"""Rendezvous order: pinned values (every controller, every platform must agree) and shape."""

from __future__ import annotations

from collections import Counter

from controller.planner.hashing import hrw_order, score

ALPHA = "58061aa544398a798e33181a443b15b7746fab16"


def test_scores_are_pinned() -> None:
    # A change here changes every fleet's placement: it needs a new plan format, not a fix.
    assert score(ALPHA, "nas") == 13504247879293246681
    assert hrw_order(ALPHA, ["tv", "nas", "laptop"]) == ["nas", "laptop", "tv"]


def test_order_ignores_input_order_and_removal_keeps_relative_order() -> None:
    nodes = [f"n{i}" for i in range(8)]
    order = hrw_order(ALPHA, nodes)
    assert hrw_order(ALPHA, list(reversed(nodes))) == order
    assert hrw_order(ALPHA, [n for n in nodes if n != order[0]]) == order[1:]


def test_first_choices_spread_evenly() -> None:
    nodes = [f"n{i}" for i in range(5)]
    firsts = Counter(hrw_order(f"{i:040x}", nodes)[0] for i in range(5000))
    assert set(firsts) == set(nodes)
    assert max(firsts.values()) < 1.15 * 1000 and min(firsts.values()) > 0.85 * 1000
