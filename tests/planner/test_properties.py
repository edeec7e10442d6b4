"""Properties of the planner over generated fleets and observed states (hypothesis)."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.planner import Freshness, build_fleet_view, plan
from schemas.journal import JournalEntry
from schemas.observed import NodeStatus
from schemas.plan import ActionKind, Plan
from schemas.rules import eligible_custodians
from tests.planner.harness import copies_live, simulate
from tests.planner.strategies import (
    NAMES,
    NOW,
    World,
    desired_state,
    device,
    fleet_resource,
    items_for,
    rule,
    shuffled,
    worlds,
)

PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MAX_PASSES = 12
any_world = st.one_of(worlds(), worlds(crowded=True))

SAFE_SESSION = {"dht": False, "pex": False, "lpd": False}
"""A Transmission session that announces nothing beyond its trackers."""


def plan_of(world: World, journal: list[JournalEntry] | None = None,
            nodes: list[str] | None = None) -> Plan:
    return plan(world.desired, world.statuses, NOW, nodes=nodes, journal=journal or [])


@PROPS
@given(any_world, st.integers(0, 2**32 - 1))
def test_same_plan_whatever_the_order(world: World, seed: int) -> None:
    first = plan_of(world)
    again = plan_of(shuffled(world, random.Random(seed)))
    assert again.model_dump_json() == first.model_dump_json()


@PROPS
@given(any_world, st.data())
def test_planning_for_one_node_is_its_share_of_the_fleet(world: World, data: st.DataObject) -> None:
    node = data.draw(st.sampled_from(sorted(world.desired.devices)))
    whole = plan_of(world)
    mine = plan_of(world, nodes=[node])
    assert all(a.node == node for a in mine.actions)
    assert mine.actions == [a for a in whole.actions if a.node == node]


def _fresh(world: World) -> set[str]:
    view = build_fleet_view(world.desired, world.statuses, NOW)
    return {n for n, v in view.nodes.items() if v.freshness is Freshness.fresh}


def check_floor_safety(world: World, p: Plan) -> None:
    """No removal leaves a rule that counted the copy below its floor of live copies, removes
    what a player has open, or removes a torrent tva did not add."""
    d = world.desired
    statuses = world.by_node()
    removals: dict[str, set[str]] = {}
    for a in p.actions:
        if a.kind in (ActionKind.remove_data, ActionKind.remove_torrent):
            removals.setdefault(a.target, set()).add(a.node)
            st_ = statuses[a.node]
            t = next(t for t in st_.transmission.torrents if t.infohash == a.target)
            assert "tva" in t.labels
            assert st_.player is None or st_.player.infohash != a.target
    fresh = _fresh(world)
    for key, removed in removals.items():
        for name, r in d.custody.items():
            if key not in _selected(world, name):
                continue
            elig = eligible_custodians(r, d.devices, d.vpn, d.duties)
            if not removed & set(elig):
                continue
            before = copies_live(d, statuses, fresh, key, elig)
            after = before - removed
            assert len(after) >= r.min, (
                f"removing {key[:8]} from {sorted(removed)} leaves {sorted(after)} "
                f"for custody/{name} (min {r.min})")


def _selected(world: World, rule_name: str) -> set[str]:
    r = world.desired.custody[rule_name]
    return {k for k, it in world.desired.items.items() if it.collection in r.select.collections}


@settings(PROPS, max_examples=80)
@given(any_world)
def test_applying_the_plan_converges_to_an_empty_plan(world: World) -> None:
    journal: list[JournalEntry] = []
    statuses: dict[str, NodeStatus] = world.by_node()
    history = []
    for _ in range(MAX_PASSES):
        current = World(world.desired, list(statuses.values()))
        p = plan_of(current, journal)
        check_floor_safety(current, p)
        if not p.actions:
            break
        history.append([a.id for a in p.actions])
        statuses, journal = simulate(world.desired, p, statuses, journal, NOW)
    else:
        raise AssertionError(f"no convergence in {MAX_PASSES} passes: {history[-3:]}")


@settings(PROPS, max_examples=150)
@given(worlds(crowded=True))
def test_no_plan_removes_below_the_floor(world: World) -> None:
    check_floor_safety(world, plan_of(world))


# --------------------------------------------------------------------------- stability


def _placement(n_devices: int, n_items: int, minimum: int) -> dict[str, set[str]]:
    """Where a from-scratch plan puts each item's copies on ``n_devices`` equal nodes."""
    devices = [device(f"node{i}", "server", player=False, vpn=False, trust="normal",
                      labels=["home"]) for i in range(n_devices)]
    items = items_for(n_items, ["fleet"], ["c1"])
    desired = desired_state(devices, [rule("all", collections=["c1"], minimum=minimum,
                                           maximum=None, prune=False)], items,
                            fleet=fleet_resource(max_pins=n_items))
    statuses = [NodeStatus(node=d.name, observed_at=NOW, controller_version="t",
                           transmission={"reachable": True, "torrents": [], "session": SAFE_SESSION},
                           storage=[{"path": d.storage[0].path, "free": 1 << 50, "total": 1 << 50}])
                for d in devices]
    p = plan(desired, statuses, NOW)
    out: dict[str, set[str]] = {}
    for a in p.actions:
        assert a.kind is ActionKind.add
        out.setdefault(a.target, set()).add(a.node)
    return out


@settings(max_examples=6, deadline=None)
@given(st.integers(3, 9), st.sampled_from([1, 2]))
def test_adding_a_device_moves_about_one_nth(n: int, minimum: int) -> None:
    items = 300
    before = _placement(n, items, minimum)
    after = _placement(n + 1, items, minimum)
    assert all(len(v) == minimum for v in before.values()) and len(before) == items
    moved = sum(len(after[k] - before[k]) for k in before)
    # Every moved copy lands on the new device, and only about 1/(N+1) of them do.
    assert all(after[k] - before[k] <= {f"node{n}"} for k in before)
    assert moved / (items * minimum) <= 1 / n + 0.05


def test_adding_a_device_to_a_settled_fleet_moves_nothing() -> None:
    """Once the floors are met, a new device receives nothing: no re-pin without a need."""
    n, items = 4, 60
    devices = [device(NAMES[i], "server", player=False, vpn=False, trust="normal",
                      labels=["home"]) for i in range(n + 1)]
    its = items_for(items, ["fleet"], ["c1"])
    rules = [rule("all", collections=["c1"], minimum=2, maximum=None, prune=False)]
    small = desired_state(devices[:n], rules, its, fleet=fleet_resource(max_pins=items))
    statuses = {d.name: NodeStatus(node=d.name, observed_at=NOW, controller_version="t",
                                   transmission={"reachable": True, "torrents": [], "session": SAFE_SESSION},
                                   storage=[{"path": d.storage[0].path, "free": 1 << 50,
                                             "total": 1 << 50}]) for d in devices}
    journal: list[JournalEntry] = []
    live = {k: v for k, v in statuses.items() if k in small.devices}
    for _ in range(3):
        p = plan(small, list(live.values()), NOW, journal=journal)
        if not p.actions:
            break
        live, journal = simulate(small, p, live, journal, NOW)
    assert not p.actions
    big = desired_state(devices, rules, its, fleet=fleet_resource(max_pins=items))
    live[devices[n].name] = statuses[devices[n].name]
    p = plan(big, list(live.values()), NOW, journal=journal)
    assert p.actions == []
