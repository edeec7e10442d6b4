"""Custody: keep every selected item at its floor (``min``) and, where allowed, its ceiling.

Per rule and item, copies on the rule's eligible custodians are sorted by state
(``context.CopyState``): *counted* (live, or trusted), *held* (also pending, away within grace,
and nodes whose Transmission is unreachable), *missing*. Below the floor after counting held
copies, pins go to the next eligible nodes in the item's rendezvous order that are live, allowed
by the gates, and have room; at most ``max_new_pins_per_node`` new pins per node per pass, the
rest deferred (never spilled to a node further down the order, which would move the item twice).
Items with the fewest counted copies are placed first.

Above the ceiling, copies are removed (``remove-data``) only when the rule (or the fleet default)
prunes, only tva-managed copies (label ``tva``), lowest in the item's order first, never what a
player has open or a watchlist keeps, never within ``settle`` of a copy being made, and never if
any rule selecting the item would be left with fewer than its floor of copies confirmed live on
fresh nodes. Each removal lists the holders it relies on (``relies_on``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from controller.planner.context import Context, CopyState
from controller.planner.face import wait_note
from controller.planner.freshness import grace_of
from controller.planner.hashing import hrw_order
from controller.planner.labels import TVA_LABEL, custody_label
from controller.planner.ledger import Ledger
from controller.planner.placement import place, refusal
from controller.planner.text import age, names, policy
from schemas.desired import CustodyRule
from schemas.plan import ActionKind, Severity

__all__ = ["Count", "count", "custody_tally", "floor_without", "plan_custody"]


@dataclass(slots=True)
class Count:
    rule: CustodyRule
    key: str
    live: list[str] = field(default_factory=list)
    trusted: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    away: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)
    maybe: list[str] = field(default_factory=list)

    @property
    def good(self) -> int:
        return len(self.live) + len(self.trusted)

    @property
    def held(self) -> int:
        return self.good + len(self.pending) + len(self.away) + len(self.maybe)

    @property
    def short(self) -> int:
        return self.rule.min - self.held


_BUCKET = {
    CopyState.live: "live", CopyState.trusted: "trusted", CopyState.pending: "pending",
    CopyState.away: "away", CopyState.gone: "gone", CopyState.broken: "broken",
}


def count(ctx: Context, rule: CustodyRule, key: str, eligible: frozenset[str],
          maybe: list[str]) -> Count:
    c = Count(rule, key, maybe=list(maybe))
    for cp in ctx.copies(key):
        if cp.node in eligible:
            bucket = _BUCKET.get(cp.state)
            if bucket is not None:
                getattr(c, bucket).append(cp.node)
    return c


_HELD = (CopyState.live, CopyState.trusted, CopyState.pending, CopyState.away)
_GOOD_SHIFT = 10
_HELD_MASK = (1 << _GOOD_SHIFT) - 1
_GOOD_AND_HELD = (1 << _GOOD_SHIFT) | 1


def _tally(ctx: Context, nodes: list[str]) -> dict[str, int]:
    """Per info-hash, counted copies (high bits) and held copies (low bits) on ``nodes``.

    One sequential sweep over each node's torrents: at fleet scale this is several times
    cheaper than looking every item up on every node (memory order beats hash order).
    """
    state = ctx.state
    tally: dict[str, int] = {}
    get = tally.get
    for n in nodes:
        nf = ctx.nodes[n]
        counts = nf.counts
        for key, t in nf.torrents.items():
            if counts and t.percent_done >= 1.0 and t.error == 0:
                tally[key] = get(key, 0) + _GOOD_AND_HELD
            elif state(nf, t) in _HELD:
                tally[key] = get(key, 0) + 1
    return tally


def custody_tally(ctx: Context, nodes: list[str]) -> dict[str, tuple[int, int]]:
    """Per info-hash, (counted, held) copies on ``nodes`` from one sweep (``_tally``): counted
    is a lower bound of the good copies, held an upper bound of them (for the fleet views)."""
    return {k: (v >> _GOOD_SHIFT, v & _HELD_MASK) for k, v in _tally(ctx, nodes).items()}


def plan_custody(ctx: Context, ledger: Ledger) -> None:
    if ctx.unread:
        kept = sum(1 for nf in ctx.nodes.values() if nf.status is not None) - 1
        if ctx.blind:
            ledger.warn("statuses-unread", "the fleet's statuses could not be read and none were "
                        "read before: custody makes no changes this pass (a node never plans "
                        "as if it were alone)")
            return
        ledger.warn("statuses-unread", "the fleet's statuses could not be read: planning with "
                    f"the {kept} read last, at their real ages", severity=Severity.info)
    needs: list[tuple[int, str, str, Count]] = []
    overs: list[Count] = []
    tallies: dict[frozenset[str], dict[str, int]] = {}
    for name in sorted(ctx.desired.custody):
        rule = ctx.desired.custody[name]
        elig = ctx.eligible[name]
        eligible = frozenset(elig)
        maybe = [n for n in elig if ctx.nodes[n].maybe_holder]
        _gate_warning(ctx, ledger, rule, elig)
        ceiling = rule.max if rule.max is not None else 1 << 30
        floor = rule.min - len(maybe)
        tally = tallies.get(eligible)
        if tally is None:
            tally = tallies[eligible] = _tally(ctx, elig)
        for key in ctx.rule_items[name]:
            # Fast path (most items are fine): the counts alone, no lists.
            v = tally.get(key, 0)
            if (v & _HELD_MASK) >= floor and (v >> _GOOD_SHIFT) <= ceiling:
                continue
            c = count(ctx, rule, key, eligible, maybe)
            if c.short > 0:
                needs.append((c.good, key, name, c))
            elif rule.max is not None and c.good > rule.max:
                overs.append(c)
    needs.sort(key=lambda n: n[:3])
    for _, _, _, c in needs:
        _pin(ctx, ledger, c)
    for c in overs:
        _prune(ctx, ledger, c)


def _gate_warning(ctx: Context, ledger: Ledger, rule: CustodyRule, elig: list[str]) -> None:
    face = ctx.face
    if face is None or face not in elig:
        return
    if len(elig) - 1 >= rule.min:
        return
    private = [k for k in ctx.rule_items[rule.name] if (it := ctx.item(k)) is not None and it.f2f_only]
    if private:
        ledger.warn(
            "f2f-gate",
            f"custody/{rule.name}: its floor of {rule.min} would need the public_swarm_face "
            f"{face}, which never holds f2f_only items ({len(private)} selected); widen the "
            "placement or lower min",
            subject=f"custody/{rule.name}",
        )


def _notes(ctx: Context, c: Count) -> list[str]:
    notes: list[str] = []
    for n in c.gone:
        grace = grace_of(ctx.desired, ctx.nodes[n].device)
        notes.append(f"{n} is gone: no status for {age(ctx.nodes[n].age)} > grace {policy(grace)}")
    for n in c.away:
        grace = grace_of(ctx.desired, ctx.nodes[n].device)
        notes.append(f"{n} is stale for {age(ctx.nodes[n].age)} (< grace {policy(grace)}): "
                     "waiting for it")
    for n in c.maybe:
        notes.append(f"{n}'s Transmission is unreachable: its copy is unknown")
    for n in c.broken:
        notes.append(f"{n}'s copy is broken")
    for n in c.pending:
        notes.append(f"{n}'s copy is in progress")
    for n in c.trusted:
        notes.append(f"{n} is trusted: its copy counts while it is away")
    return notes


def _pin(ctx: Context, ledger: Ledger, c: Count) -> None:
    rule, key = c.rule, c.key
    elig = ctx.eligible[rule.name]
    planned = ledger.adds.get(key, set())
    need = c.short - len(planned.intersection(elig))
    if need <= 0:
        return
    item = ctx.item(key)
    label = item.name if item is not None else key
    subject = f"custody/{rule.name}"
    limit = ctx.desired.fleet.policy.custody.max_new_pins_per_node
    notes = _notes(ctx, c)
    head = f"{subject}: {c.good} of {rule.min} copies"
    if notes:
        head += f" ({'; '.join(notes)})"
    skipped: list[str] = []
    codes: set[str] = set()
    waiting: list[tuple[str, str]] = []
    chosen: list[str] = []
    for node in hrw_order(key, elig):
        if need <= 0:
            break
        nf = ctx.nodes[node]
        if key in nf.torrents or node in planned or nf.maybe_holder:
            continue
        why = refusal(ctx, ledger, node, key)
        if why is not None:
            codes.add(why[0])
            if why[0] == "face-away":
                waiting.append((node, why[1]))
            skipped.append(why[1])
            continue
        if ledger.pins[node] >= limit:
            ledger.deferred[node] += 1
            ledger.tally(
                "rate-limited",
                f"{node}: {{n}} new pin{{s}} deferred to later passes "
                f"(max_new_pins_per_node {limit}): {{items}}",
                label, node=node, severity=Severity.info,
            )
            return
        pos = "next" if not chosen else f"next after {names(chosen)}"
        reason = f"{head}; {node} is {pos} in this item's order"
        if skipped:
            reason += f" (skipped: {'; '.join(skipped)})"
        place(ctx, ledger, node, key, reason, rule=subject, label=custody_label(rule.name))
        ledger.pins[node] += 1
        chosen.append(node)
        need -= 1
    if need > 0:
        if waiting:
            # The home nodes next in the item's order wait for the face to fetch it.
            for node, cause in waiting[:need]:
                wait_note(ctx, ledger, node, label, cause)
        elif "no-room" in codes:
            ledger.tally("capacity-short",
                         f"{subject}: {{n}} item{{s}} below the floor of {rule.min}, and no "
                         "eligible custodian has room: {items}",
                         label, subject=subject)
        else:
            ledger.tally("floor-unreachable",
                         f"{subject}: {{n}} item{{s}} below the floor of {rule.min}, and no "
                         "other eligible custodian is live: {items}",
                         label, subject=subject)


def floor_without(ctx: Context, ledger: Ledger, key: str, node: str) -> tuple[bool, list[str], str]:
    """Would every rule selecting ``key`` keep its floor of live copies without ``node``'s copy
    (and without removals already planned)? Returns (ok, holders relied on, why not)."""
    removed = ledger.removals.get(key, set())
    live = [cp.node for cp in ctx.copies(key)
            if cp.state is CopyState.live and cp.node != node and cp.node not in removed]
    relies: set[str] = set()
    for rname in ctx.rules_by_item.get(key, ()):
        elig = ctx.eligible[rname]
        if node not in elig:
            continue
        rule = ctx.desired.custody[rname]
        kept = [n for n in live if n in elig]
        if len(kept) < rule.min:
            return False, [], (f"custody/{rname} keeps a copy there: only {len(kept)} other "
                               f"confirmed live cop{'y' if len(kept) == 1 else 'ies'} for a floor "
                               f"of {rule.min}")
        relies.update(kept)
    return True, sorted(relies), ""


def settling(ctx: Context, key: str) -> bool:
    """Was a copy of ``key`` made, or did a node holding one come back, within ``settle``?
    Then nothing of it is pruned yet.

    The returning node's own freshness decides: its status says since when it has been present
    without a gap (``present_since``), so a laptop that wakes for a minute after three days
    away causes no prune. Settle is also measured from the newest copy (its ``done_date``, or a
    journalled ``add`` of the item), which bounds how often one item can move: every copy made
    stays at least ``settle`` before any copy of the item is pruned.
    """
    settle = ctx.desired.fleet.policy.custody.settle
    for cp in ctx.copies(key):
        done = cp.torrent.done_date
        if done is not None and ctx.now - done < settle:
            return True
        if cp.state is CopyState.live:
            since = ctx.nodes[cp.node].present_since
            if since is not None and ctx.now - since < settle:
                return True
    added = ctx.journal.last_added(key)
    return added is not None and ctx.now - added < settle


def _prune(ctx: Context, ledger: Ledger, c: Count) -> None:
    rule, key = c.rule, c.key
    assert rule.max is not None
    subject = f"custody/{rule.name}"
    item = ctx.item(key)
    label = item.name if item is not None else key
    prune = rule.prune if rule.prune is not None else ctx.desired.fleet.policy.custody.prune
    if not prune:
        ledger.tally("over-ceiling", f"{subject}: {{n}} item{{s}} above max {rule.max}; the rule "
                     "does not prune: {items}", label, subject=subject, severity=Severity.info)
        return
    if key in ledger.adds:
        return
    if settling(ctx, key):
        ledger.tally("settling", f"{subject}: pruning waits "
                     f"{policy(ctx.desired.fleet.policy.custody.settle)} after the newest copy "
                     f"of {{n}} item{{s}} above max {rule.max}: {{items}}", label,
                     subject=subject, severity=Severity.info)
        return
    excess = c.good - rule.max
    live = set(c.live)
    # Copies on intermittent nodes (not always_on) go first, lowest in the item's order first
    # within each group: the always-on copy stays, so the next absence moves nothing.
    order = sorted(reversed(hrw_order(key, ctx.eligible[rule.name])),
                   key=lambda n: ctx.nodes[n].device.always_on)
    steady = [n for n in c.live if ctx.nodes[n].device.always_on]
    for node in order:
        if excess <= 0:
            break
        if node not in live:
            continue
        nf = ctx.nodes[node]
        t = nf.torrents[key]
        if not nf.actionable or TVA_LABEL not in t.labels:
            continue
        if key in nf.open_keys or (node, key) in ledger.keep:
            continue
        if node in ledger.removals.get(key, ()):
            continue
        ok, relies, _ = floor_without(ctx, ledger, key, node)
        if not ok:
            continue
        why = (f"{node} comes and goes (not always_on) while {names(steady)} "
               f"{'is' if len(steady) == 1 else 'are'} always on"
               if steady and not nf.device.always_on else f"{node} is last in this item's order")
        reason = (f"{subject}: {c.good} copies > max {rule.max} and the rule prunes; {why}; "
                  f"the floor of {rule.min} stays on {names(relies)} (confirmed live)")
        ledger.act(node, ActionKind.remove_data, key, reason, rule=subject, size=t.size,
                   relies_on=relies)
        ledger.plan_removal(node, key)
        excess -= 1
