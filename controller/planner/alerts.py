"""What the owner should hear about, and which node tells them: pure data from one pass.

Every node computes the same open conditions from the same inputs (desired state, the fleet's
statuses, ``now``), so the fleet needs no leader to agree on them: the custody counts behind the
plan (an item below its floor, a floor no live custodian can meet, a node gone past its grace
with copies), the reaper's verdicts (dead torrents), the VPN kill switch, and the conditions
the nodes publish (a refused revision, with its file:line; the acquirer's failing searches),
and news: an acquired release that reached the fleet. Each condition has a stable key, so
the sender (``controller/daemon/notifier.py``) can tell a new one from one already told, and
send "resolved" when a key disappears.

The one node that sends is the *notifier*: among the fresh devices that run the controller (or
those ``notify.senders`` lists), the first in the rendezvous order of the key ``notifier`` —
the hashing that places copies — so every node names the same sender, and when it goes stale
the next in order takes over without a vote. The same pass also yields the custody and health
figures that ``/metrics`` exports (``FleetFacts``).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from controller.planner.acquire import entry_target, wanted
from controller.planner.context import Context
from controller.planner.core import run_pass
from controller.planner.freshness import Freshness
from controller.planner.hashing import hrw_order
from controller.planner.ledger import Ledger
from controller.planner.prefetch import Entry
from controller.planner.text import age
from schemas.desired import DesiredState, Service
from schemas.journal import JournalEntry
from schemas.notify import Alert, EventKind
from schemas.observed import NodeStatus

__all__ = [
    "NEWS_WINDOW",
    "REFUSED_REASONS",
    "SEARCH_FAILING_AFTER",
    "CustodyFact",
    "FleetFacts",
    "facts_of",
    "fleet_facts",
    "notifier",
]

REFUSED_REASONS = frozenset({"InvalidRevision", "UnsignedRevision", "RollbackRefused"})
"""Reasons of a false ``Synced`` condition that mean a revision was refused."""

SEARCH_FAILING_AFTER = 3
"""Failed searches in a row for one watchlist entry before the owner hears of it (one failure
is an indexer's bad minute; the entry backs off and tries again)."""

NEWS_WINDOW = timedelta(days=2)
"""An acquisition is news while its search is this recent (``acquired.searched_at``): a node
that joins, or a book that was lost, does not tell every acquisition the repo ever had."""

_REVISION = re.compile(r"\brevision ([0-9a-f]{7,64})\b")


@dataclass(frozen=True)
class CustodyFact:
    """One item under one rule: its floor, the copies that count, its size."""

    rule: str
    key: str
    name: str
    min: int
    counted: int
    size: int | None


@dataclass(frozen=True)
class FleetFacts:
    """The open conditions and the figures of one pass, for notifications and metrics."""

    alerts: list[Alert]
    notifier: str | None
    custody: list[CustodyFact] = field(default_factory=list)
    health: dict[str, int] = field(default_factory=dict)
    """Torrents on fresh nodes per health state (healthy, stalled, dead)."""


def notifier(desired: DesiredState, ctx: Context) -> str | None:
    """The one node that sends notifications now, or None when no candidate is fresh."""
    senders = desired.fleet.notify.senders
    candidates = [n for n, dev in desired.devices.items()
                  if Service.controller in dev.services and (not senders or n in senders)]
    live = [n for n in candidates if ctx.nodes[n].fresh]
    order = hrw_order("notifier", live)
    return order[0] if order else None


def fleet_facts(
    desired: DesiredState,
    statuses: Sequence[NodeStatus],
    now: datetime,
    journal: Sequence[JournalEntry] = (),
    *,
    unread: bool = False,
) -> FleetFacts:
    """``unread``: this node could not read the fleet's statuses (as ``plan`` takes it)."""
    ctx, ledger, entries = run_pass(desired, statuses, now, journal, unread=unread)
    return facts_of(ctx, ledger, entries)


def facts_of(ctx: Context, ledger: Ledger, entries: Sequence[Entry] = ()) -> FleetFacts:
    """The facts of a pass already run (``run_pass``, with its watchlist ``entries``): the
    daemon plans and derives them from one pass."""
    desired = ctx.desired
    custody = _custody(ctx)
    alerts: list[Alert] = []
    if not ctx.blind:  # with no statuses read, every copy elsewhere is unknown, not lost
        alerts += _below_floor(ctx, custody)
        alerts += _copies_lost(ctx)
    alerts += _from_warnings(ledger)
    alerts += _refused(ctx)
    alerts += _vpn_down(ctx)
    alerts += _acquired(ctx)
    alerts += _searches_failing(ctx, entries)
    health: Counter[str] = Counter()
    for node, nf in ctx.nodes.items():
        if nf.actionable:
            for t in nf.torrents.values():
                health[ctx.assess(node, t).health.value] += 1
    return FleetFacts(alerts=sorted({a.key: a for a in alerts}.values(), key=lambda a: a.key),
                      notifier=notifier(desired, ctx), custody=custody, health=dict(health))


def _custody(ctx: Context) -> list[CustodyFact]:
    """Counted copies of every item under every rule: one sweep per set of eligible nodes (a
    copy counts when it is complete and error-free on a node whose copies count: fresh, or
    trusted), as the custody step's own tally does."""
    out: list[CustodyFact] = []
    tallies: dict[frozenset[str], Counter[str]] = {}
    for name in sorted(ctx.desired.custody):
        rule = ctx.desired.custody[name]
        elig = frozenset(ctx.eligible[name])
        tally = tallies.get(elig)
        if tally is None:
            tally = tallies[elig] = Counter()
            for n in elig:
                nf = ctx.nodes[n]
                if nf.counts:
                    tally.update(k for k, t in nf.torrents.items()
                                 if t.percent_done >= 1.0 and t.error == 0)
        for key in ctx.rule_items[name]:
            it = ctx.desired.items[key]
            out.append(CustodyFact(rule=name, key=key, name=it.name, min=rule.min,
                                   counted=tally[key], size=it.size))
    return out


def _below_floor(ctx: Context, custody: list[CustodyFact]) -> list[Alert]:
    after = ctx.desired.fleet.notify.below_floor_after
    return [
        Alert(key=f"below-floor/{f.rule}/{f.key}", kind=EventKind.below_floor,
              subject=f.name,
              message=f"{f.name} is down to {f.counted} of {f.min} "
              f"cop{'y' if f.min == 1 else 'ies'} (custody/{f.rule})", after=after)
        for f in custody if f.counted < f.min
    ]


def _copies_lost(ctx: Context) -> list[Alert]:
    out: list[Alert] = []
    for node, nf in sorted(ctx.nodes.items()):
        if nf.freshness is not Freshness.gone or nf.status is None:
            continue
        held = sorted(ctx.desired.items[k].name for k, t in nf.torrents.items()
                      if k in ctx.rules_by_item and t.percent_done >= 1.0)
        if not held:
            continue
        shown = ", ".join(held[:5]) + (f" and {len(held) - 5} more" if len(held) > 5 else "")
        out.append(Alert(
            key=f"copy-lost/{node}", kind=EventKind.copy_lost, subject=node,
            message=f"{node} is gone (no status for {age(nf.age)}, past its grace): its "
            f"cop{'y' if len(held) == 1 else 'ies'} of {shown} no longer count"))
    return out


def _from_warnings(ledger: Ledger) -> list[Alert]:
    out: list[Alert] = []
    for w in ledger.all_warnings():
        if w.code in ("floor-unreachable", "capacity-short"):
            out.append(Alert(key=f"floor-unreachable/{w.subject}",
                             kind=EventKind.floor_unreachable, subject=w.subject or "",
                             message=w.message))
        elif w.code == "dead-torrent":
            out.append(Alert(key=f"dead-torrent/{w.node}/{w.subject}",
                             kind=EventKind.dead_torrent, subject=w.subject or "",
                             message=f"on {w.node}: {w.message}"))
    return out


def _refused(ctx: Context) -> list[Alert]:
    out: list[Alert] = []
    for _, nf in sorted(ctx.nodes.items()):
        if not nf.fresh or nf.status is None:
            continue
        for c in nf.status.conditions:
            if c.type != "Synced" or c.status.value != "False" or c.reason not in REFUSED_REASONS:
                continue
            m = _REVISION.search(c.message)
            rev = m.group(1)[:12] if m else hashlib.sha256(c.message.encode()).hexdigest()[:12]
            out.append(Alert(key=f"refused-revision/{rev}", kind=EventKind.refused_revision,
                             subject=rev, message=f"{c.reason}: {c.message}"))
    return out


def _vpn_down(ctx: Context) -> list[Alert]:
    out: list[Alert] = []
    for node, nf in sorted(ctx.nodes.items()):
        prof = ctx.desired.vpn.get(nf.device.vpn) if nf.device.vpn else None
        if prof is None or not prof.kill_switch or not nf.fresh or nf.status is None:
            continue
        state = next((v for v in nf.status.vpn if v.profile == prof.name), None)
        if state is not None and not state.up:
            detail = f" ({state.detail})" if state.detail else ""
            out.append(Alert(
                key=f"vpn-down/{node}/{prof.name}", kind=EventKind.vpn_down, subject=node,
                message=f"vpn/{prof.name} is down on {node}{detail}: the kill switch holds its "
                "public torrents"))
    return out


def _acquired(ctx: Context) -> list[Alert]:
    """News: each item the acquirer committed whose search is recent, keyed by its info-hash,
    so that it is told once however many passes and nodes see it. The commit is the revision
    the fleet applies when it first appears (the acquisition's own commit, unless more arrived
    at once)."""
    out: list[Alert] = []
    commit = (ctx.desired.revision or "")[:12]
    for coll in ctx.desired.collections.values():
        rec = coll.acquired
        if rec is None or not -NEWS_WINDOW < ctx.now - rec.searched_at < NEWS_WINDOW:
            continue
        for item in coll.items:
            key = item.infohash.lower() if item.infohash else None
            if key is None or key not in ctx.desired.items:
                continue
            out.append(Alert(
                key=f"acquired/{key}", kind=EventKind.acquired, subject=rec.entry,
                message=f"acquired {rec.release} for {rec.entry}"
                + (f" (watchlist/{rec.watchlist})" if rec.watchlist else "")
                + f" from source {rec.source}" + (f", commit {commit}" if commit else "")))
    return out


def _searches_failing(ctx: Context, entries: Sequence[Entry]) -> list[Alert]:
    """Watchlist entries whose searches keep failing, as the acquirer publishes them; only
    while the entry still lacks what was searched (one satisfied by hand, or whose search
    moved on to the next episode, is resolved)."""
    lacking: dict[str, str] = {}
    for e in entries:
        search = wanted(ctx, e)
        if search is not None:
            lacking[entry_target(e.watchlist.name, search)] = search.what
    out: list[Alert] = []
    seen: set[str] = set()
    for node, nf in sorted(ctx.nodes.items()):
        if nf.status is None or not (nf.fresh or nf.stale):
            continue
        for f in nf.status.searches:
            what = lacking.get(f.target)
            if what is None or f.failures < SEARCH_FAILING_AFTER or f.target in seen:
                continue
            seen.add(f.target)
            watchlist = f.target.split("/")[1]
            last = f": {f.error}" if f.error else ""
            out.append(Alert(
                key=f"search-failing/{f.target}", kind=EventKind.search_failing, subject=what,
                message=f"{what} (watchlist/{watchlist}): {f.failures} searches on {node} "
                f"failed in a row; the last{last}"))
    return out
