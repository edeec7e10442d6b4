"""One planning pass, step by step, in a fixed order (docs/planner.md#order).

1. index the inputs (``context``); 2. assign duties; 3. resolve watchlist buffers and player
queues (what must be kept where); 4. custody pins and prunes; 5. prefetch pins and removals;
6. player settings and queue; 7. Transmission session settings; 8. VPN kill switch; 9. privacy
(fleet-only items: foreign trackers, leaking sessions); 10. the reaper's ladder; 10b. acquisition
(watchlist entries the fleet lacks: ``acquire``); 11. labels lost
in a crash set again (``relabel``); 12. the removal budgets (``removals``); 13. assemble. Each
step sees what the earlier ones decided (``ledger``), so, for instance, no two removals can
each count on the other's copy. Everything is computed for the whole fleet and filtered at the
end: a node's own plan is exactly its share of the fleet's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from controller.planner.acquire import plan_acquisitions
from controller.planner.assemble import assemble
from controller.planner.context import Context, build_context
from controller.planner.custody import plan_custody
from controller.planner.duties import assign_duties
from controller.planner.face import check_face_pex
from controller.planner.labels import TVA_LABEL
from controller.planner.ledger import Ledger
from controller.planner.memory import JournalIndex
from controller.planner.placement import feed_face
from controller.planner.player import keep_queues, plan_player, queue_keys
from controller.planner.prefetch import Entry, plan_prefetch, prefetch_entries
from controller.planner.privacy import plan_privacy
from controller.planner.reaper import plan_reaper
from controller.planner.relabel import plan_relabel
from controller.planner.removals import limit_removals
from controller.planner.session import plan_session
from controller.planner.text import age
from controller.planner.vpn import plan_vpn
from controller.planner.webseeds import plan_webseeds
from schemas.desired import DesiredState, Duty
from schemas.journal import JournalEntry
from schemas.observed import KNOWN_RPC_VERSIONS, NodeStatus
from schemas.plan import Plan, Severity

__all__ = ["plan", "plan_of", "run_pass"]


def run_pass(
    desired: DesiredState,
    statuses: Sequence[NodeStatus],
    now: datetime,
    journal: Sequence[JournalEntry] = (),
    *,
    unread: bool = False,
) -> tuple[Context, Ledger, list[Entry]]:
    """Compute the whole fleet's pass; the views reuse it."""
    ctx = build_context(desired, statuses, now, JournalIndex(journal))
    ctx.unread = unread
    duties = assign_duties(ctx)
    ctx.duty_holders = duties.holders
    ctx.face_eligible = duties.eligible.get(Duty.public_swarm_face, ())
    ledger = Ledger()
    _future_statuses(ctx, ledger)
    for w in duties.warnings:
        ledger.warn(w.code, w.message, node=w.node, subject=w.subject, severity=w.severity)
    ctx.duty_assignments = duties.assignments
    entries = prefetch_entries(ctx, ledger)
    keep_queues(ctx, ledger)
    plan_custody(ctx, ledger)
    plan_prefetch(ctx, ledger, entries)
    plan_player(ctx, ledger)
    feed_face(ctx, ledger)
    plan_session(ctx, ledger)
    check_face_pex(ctx, ledger)
    plan_vpn(ctx, ledger)
    plan_privacy(ctx, ledger)
    plan_reaper(ctx, ledger)
    plan_webseeds(ctx, ledger)
    plan_acquisitions(ctx, ledger, entries)
    plan_relabel(ctx, ledger)
    limit_removals(desired.fleet.policy.removals, ledger)
    _unmanaged(ctx, ledger, entries)
    _unknown_versions(ctx, ledger)
    if desired.fleet.policy.suspend:
        ledger.warn("suspended", "policy.suspend is set: controllers observe and plan but apply "
                    "nothing", severity=Severity.info)
    return ctx, ledger, entries


def plan(
    desired: DesiredState,
    statuses: Sequence[NodeStatus],
    now: datetime,
    *,
    nodes: list[str] | None = None,
    journal: Sequence[JournalEntry] = (),
    unread: bool = False,
) -> Plan:
    """What each node (or only ``nodes``) should do at ``now``, and why.

    ``statuses`` are the node statuses as read (any order, several per node allowed: the
    newest counts); freshness is decided here, at ``now`` (``freshness.py``). ``unread``: the
    caller could not read the fleet's statuses this pass, so ``statuses`` are the last ones it
    read (with their real ages) or only its own; with no other node's status at all, custody
    makes no changes (a node must never plan as if it were alone)."""
    ctx, ledger, _ = run_pass(desired, statuses, now, journal, unread=unread)
    return plan_of(ctx, ledger, nodes)


def plan_of(ctx: Context, ledger: Ledger, nodes: list[str] | None = None) -> Plan:
    """The Plan of a pass already run (``run_pass``), for ``nodes`` (default: all)."""
    desired = ctx.desired
    wanted = sorted(desired.devices) if nodes is None else sorted(set(nodes))
    return assemble(
        revision=desired.revision, now=ctx.now, nodes=wanted, actions=ledger.actions.values(),
        warnings=ledger.all_warnings(), duties=ctx.duty_assignments, deferred=ledger.deferred,
        suspended=desired.fleet.policy.suspend,
    )


def _future_statuses(ctx: Context, ledger: Ledger) -> None:
    """A status dated beyond the tolerance ahead of ``now`` is stale (``freshness``): say so."""
    for name, view in ctx.fleet.nodes.items():
        if view.ahead is not None and view.status is not None:
            ledger.warn("status-from-future",
                        f"{name}'s status is dated {view.status.observed_at.isoformat()}, "
                        f"{age(view.ahead)} ahead of now: treated as stale (check its "
                        "clock, or who wrote its status)", node=name)


def _unmanaged(ctx: Context, ledger: Ledger, entries: list[Entry]) -> None:
    """tva-labelled torrents nothing wants any more are left in place, and reported."""
    wanted: set[str] = set(ctx.rules_by_item)
    for e in entries:
        wanted.update(e.members)
    for device in ctx.duty_holders.get(Duty.player, ()):
        wanted.update(queue_keys(ctx, device))
    for node, nf in ctx.nodes.items():
        if not nf.actionable:
            continue
        for key in sorted(nf.torrents.keys() - wanted):
            t = nf.torrents[key]
            if TVA_LABEL in t.labels:
                ledger.tally("unmanaged", f"{node}: {{n}} tva-managed torrent{{s}} no rule, "
                             "watchlist or queue wants any more; left in place: {items}",
                             t.name, node=node, severity=Severity.info)


def _unknown_versions(ctx: Context, ledger: Ledger) -> None:
    """A Transmission whose RPC version tva is not tested against is reported (it is still used:
    the client checks capabilities, and the version may well work)."""
    known = f"RPC {min(KNOWN_RPC_VERSIONS)} to {max(KNOWN_RPC_VERSIONS)}"
    for node, nf in sorted(ctx.nodes.items()):
        tr = nf.status.transmission if nf.status is not None else None
        if tr is None or not tr.reachable or tr.rpc_version is None:
            continue
        if tr.rpc_version not in KNOWN_RPC_VERSIONS:
            ledger.warn(
                "transmission-version-unknown",
                f"{node} runs Transmission {tr.version or '?'} (RPC {tr.rpc_version}), which tva "
                f"does not know ({known}: Transmission 2.80 to 4.1); check docs/operations.md "
                "(Transmission versions) before relying on it",
                node=node, subject=str(tr.rpc_version),
            )
