"""Properties of the review over random fleets and random changes (hypothesis).

The main one is the issue's acceptance criterion: the pins a review lists are exactly
``plan`` on HEAD minus ``plan`` on BASE over the same statuses (and likewise for the copies no
longer made and the removals), read back from the review's JSON, as a tool would.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings

from controller.planner import plan
from controller.review import compare, render_markdown
from controller.review.markdown import MAX_COMMENT
from schemas.desired import DesiredState
from schemas.observed import NodeStatus
from schemas.plan import ActionKind, Plan
from tests.review.strategies import NOW, World, worlds

PROPS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PIN = {ActionKind.add.value, ActionKind.pin.value}
REMOVE = {ActionKind.remove_data.value, ActionKind.remove_torrent.value, ActionKind.unpin.value}


def _plan(desired: DesiredState, statuses: list[NodeStatus]) -> Plan:
    return plan(desired, statuses, NOW)


def _ids(p: Plan, kinds: set[str]) -> set[str]:
    return {a.id for a in p.actions if a.kind.value in kinds}


@PROPS
@given(worlds())
def test_the_pins_listed_are_plan_on_head_minus_plan_on_base(w: World) -> None:
    review = json.loads(compare(w.base, w.head, w.statuses, NOW).model_dump_json())
    base, head = _plan(w.base, w.statuses), _plan(w.head, w.statuses)
    listed = {(a["node"], a["target"]) for a in review["delta"]["pins"]}
    expected = {(a.node, a.target) for a in head.actions if a.kind.value in PIN} - \
        {(a.node, a.target) for a in base.actions if a.kind.value in PIN}
    assert listed == expected, w.change
    assert {a["id"] for a in review["delta"]["unpins"]} == _ids(base, PIN) - _ids(head, PIN)
    assert {a["id"] for a in review["delta"]["removals"]} == _ids(head, REMOVE) - _ids(base, REMOVE)
    # Totals are the lists' totals; with nothing deferred the projection is the next pass.
    nodes = review["nodes"]
    assert sum(n["pins"] for n in nodes) == len(listed)
    assert sum(n["pin_bytes"] for n in nodes) == sum(a["bytes"] or 0 for a in
                                                     review["delta"]["pins"])
    if not head.summary.deferred and not base.summary.deferred:
        assert review["delta"]["projected_pins"] == len(listed)
    assert review["delta"]["deferred_head"] == head.summary.deferred
    codes = {r["code"] for r in review["risks"]}
    assert ("data-removal" in codes) == bool(review["delta"]["removals"])
    assert ("suspend-on" in codes) == (w.head.fleet.policy.suspend and
                                       not w.base.fleet.policy.suspend)


@PROPS
@given(worlds())
def test_a_revision_compared_with_itself_has_no_effect(w: World) -> None:
    r = compare(w.head, w.head, w.statuses, NOW)
    assert not r.effect and r.exit_code == 0
    assert r.delta.empty and not r.risks and not r.changes and not r.duty_moves


@PROPS
@given(worlds())
def test_effect_follows_the_meaning_and_the_comment_always_fits(w: World) -> None:
    r = compare(w.base, w.head, w.statuses, NOW)
    semantic_same = w.base.model_dump() == w.head.model_dump()
    assert r.effect is (not semantic_same)
    assert len(render_markdown(r)) <= MAX_COMMENT
    # Deterministic: the same inputs give byte-identical reviews.
    assert compare(w.base, w.head, w.statuses, NOW).model_dump_json() == r.model_dump_json()
