"""The reaper's recovery ladder for stalled and dead torrents (health: ``health.py``).

Per unhealthy torrent on a node that is fresh with Transmission reachable, each step
rate-limited by when it was last tried (the journal):

1. ``record-strike`` when a strike is due (the daemon journals it; nothing is touched);
2. ``reannounce`` at most every ``reannounce_every`` (skipped for a local data error);
3. ``verify`` once a reannounce was tried in the current run (or at once for a local data
   error), at most every ``verify_every``;
4. mesh-first: when another fleet node holds a complete live copy and the torrent does not yet
   announce to the node's own controller, ``set-trackers`` adds that announce URL (params
   ``add``) so the fleet's holders become peers; after a reannounce was tried in the run;
5. ``research`` on the acquirer, only for a dead incomplete torrent with no fleet holder, once
   no verify is due (tried in the run, or within ``verify_every``), only when the item's source
   allows search, never for f2f_only items; at most every ``research_every``;
6. report: a dead torrent is always a ``dead-torrent`` warning.

``verify`` and ``research`` are the destructive steps: at most ``max_destructive_per_tracker``
of them per tracker (announce host) per pass, in node then info-hash order, so a tracker that
briefly reports everything unregistered cannot trigger a fleet-wide re-check. A tracker outage
gives no strike and no step.
"""

from __future__ import annotations

from collections import Counter
from urllib.parse import urlsplit

from controller.planner.context import Context
from controller.planner.gates import fleet_tracker, search_refusal, sources
from controller.planner.health import Assessment, Health
from controller.planner.ledger import Ledger
from controller.planner.text import age, names, policy
from schemas.observed import TorrentStatus
from schemas.plan import ActionKind, Severity

__all__ = ["plan_reaper", "tracker_host"]


def tracker_host(t: TorrentStatus) -> str:
    for tr in t.trackers:
        host = urlsplit(tr.announce).hostname
        if host:
            return host
    return "(no tracker)"


def plan_reaper(ctx: Context, ledger: Ledger) -> None:
    budget: Counter[str] = Counter()
    for node, nf in ctx.nodes.items():
        if not nf.actionable:
            continue
        # Info-hash order: the per-tracker cap must not depend on the order of the listing.
        for key in sorted(nf.suspects):
            t = nf.torrents[key]
            a = ctx.assess(node, t)
            if a.health is not Health.healthy and not ledger.has(node, ActionKind.stop, key):
                _ladder(ctx, ledger, budget, node, key, t, a)


def _ladder(
    ctx: Context,
    ledger: Ledger,
    budget: Counter[str],
    node: str,
    key: str,
    t: TorrentStatus,
    a: Assessment,
) -> None:
    rp = ctx.desired.fleet.policy.reaper
    now = ctx.now
    tried = ctx.journal.last_tried
    head = f"reaper: {t.name} on {node} is {a.health.value} ({a.detail})"
    if a.cause is None:
        return
    if a.strike_due:
        ledger.act(node, ActionKind.record_strike, key,
                   f"{head}; strike {a.strikes} of {rp.dead_strikes}",
                   params={"progress": a.progress, "cause": a.cause, "strike": a.strikes,
                           "of": rp.dead_strikes},
                   rule="reaper")
    start = a.run_start or now
    host = tracker_host(t)
    cap = rp.max_destructive_per_tracker

    last_re = tried(node, ActionKind.reannounce, key)
    if a.cause != "local-error" and (last_re is None or now - last_re >= rp.reannounce_every):
        when = "never tried" if last_re is None else f"last tried {age(now - last_re)} ago"
        ledger.act(node, ActionKind.reannounce, key,
                   f"{head}; reannounce ({when}, at most every {policy(rp.reannounce_every)})",
                   rule="reaper")
    reannounced = last_re is not None and last_re >= start
    last_v = tried(node, ActionKind.verify, key)
    # Verified: tried in this run of strikes, or recently enough that no verify is due.
    verified = last_v is not None and (last_v >= start or now - last_v < rp.verify_every)

    if reannounced or a.cause == "local-error":
        if last_v is None or now - last_v >= rp.verify_every:
            if budget[host] < cap:
                budget[host] += 1
                ledger.act(node, ActionKind.verify, key,
                           f"{head}; verify the data (reannounce did not help; at most every "
                           f"{policy(rp.verify_every)})", rule="reaper")
            else:
                ledger.tally("reaper-capped", f"reaper: {{n}} destructive step{{s}} for tracker "
                             f"{host} wait for a later pass (max_destructive_per_tracker {cap}): "
                             "{items}", t.name, subject=host, severity=Severity.info)

    holders = [s["node"] for s in sources(ctx, node, key)]
    if holders and reannounced:
        url = fleet_tracker(ctx, node)
        if url is not None and all(tr.announce != url for tr in t.trackers):
            last_m = tried(node, ActionKind.set_trackers, key)
            if last_m is None or now - last_m >= rp.reannounce_every:
                ledger.act(node, ActionKind.set_trackers, key,
                           f"{head}; mesh-first: {names(holders)} "
                           f"{'holds' if len(holders) == 1 else 'hold'} it, announce to the "
                           "fleet tracker", params={"add": [url]}, rule="reaper")

    if a.health is not Health.dead:
        return
    refusal: str | None = None
    if t.percent_done >= 1.0:
        refusal = "the data is complete here"
    elif holders:
        refusal = f"fleet holders exist ({names(holders)})"
    elif not verified:
        # The ladder's order (issue 14): a public re-search only once a verify was tried, so a
        # torrent that a re-check would revive is never replaced.
        refusal = "a verify of its data is still due"
    else:
        refusal = search_refusal(ctx, key)
        acq = ctx.acquirer
        if refusal is None and (acq is None or not ctx.nodes[acq].actionable):
            refusal = "no live acquirer"
        if refusal is None and acq is not None:
            last_r = tried(acq, ActionKind.research, key)
            if last_r is not None and now - last_r < rp.research_every:
                refusal = f"re-searched {age(now - last_r)} ago"
            elif budget[host] >= cap:
                refusal = f"max_destructive_per_tracker {cap} reached for {host}"
            else:
                budget[host] += 1
                item = ctx.item(key)
                ledger.act(acq, ActionKind.research, key,
                           f"{head}; no fleet holder: search a public source again for {node}",
                           params={"query": item.name if item else t.name, "for": node},
                           rule="reaper")
    msg = f"{head}: {a.strikes} strikes with no progress"
    if refusal is not None:
        msg += f"; no public re-search: {refusal}"
    ledger.warn("dead-torrent", msg, node=node, subject=key)
