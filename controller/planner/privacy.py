"""Fleet-only items stay inside the fleet: no foreign tracker, no leaking session.

The same holds for a public item on a home node while the fleet has a public_swarm_face
(``face.guarded``): the face joins the public swarm, the home node's copy stays inside the fleet.

A fleet-only item (provenance not public, ``ResolvedItem.fleet_only``) is placed only where it
cannot leak (``gates.leak_refusal``, checked by every placement) and added with the fleet's
tracker only (``placement.add_params``). This step repairs what is already there:

- a torrent of a fleet-only item that carries a tracker outside the fleet (added by hand, or
  committed with one before this rule) gets ``set-trackers`` with ``only_fleet``: every other
  tracker is removed;
- a tva torrent that announces to its node's own tracker without the node's token (added
  before the tracker took tokens) gets ``set-trackers`` adding the tracker again, which the
  actuator writes with the token, replacing the stale URL (the tracker refuses it);
- a torrent of a fleet-only item without the private flag on a node whose Transmission has DHT,
  PEX or LPD on is stopped (label ``tva:leak-stopped``, so only those are started again) and
  the plan says why; when the session is safe again it is started. Its data stays: a stopped
  complete copy still counts toward floors.
"""

from __future__ import annotations

from controller.announce import is_fleet
from controller.planner.context import Context
from controller.planner.gates import fleet_tracker, fleet_trackers, kept_inside, leak_refusal
from controller.planner.labels import LEAK_STOPPED_LABEL, TVA_LABEL
from controller.planner.ledger import Ledger
from schemas.observed import TorrentState
from schemas.plan import ActionKind

__all__ = ["plan_privacy"]


def plan_privacy(ctx: Context, ledger: Ledger) -> None:
    fleet = fleet_trackers(ctx)
    # Is this announce URL foreign? A fleet has a handful of distinct URLs (each node's own,
    # tokened) over tens of thousands of torrents: decide each once per pass.
    known: dict[str, bool] = {}

    def foreign_url(url: str) -> bool:
        if url not in known:
            known[url] = not any(is_fleet(url, base) for base in fleet)
        return known[url]

    for name, nf in ctx.nodes.items():
        if not nf.actionable:
            continue
        own = fleet_tracker(ctx, name)
        session = nf.status.transmission.session if nf.status is not None else None
        safe = session is not None and not session.leaks  # then nothing can leak here
        for key, t in nf.torrents.items():
            if own is not None and TVA_LABEL in t.labels and any(
                    tr.announce == own for tr in t.trackers):
                ledger.act(name, ActionKind.set_trackers, key,
                           f"{t.name} announces to {name}'s tracker without its token (an "
                           "older URL the tracker refuses): set it again with the token",
                           params={"add": [own]}, rule="tracker")
            item = ctx.item(key)
            if item is None or not kept_inside(ctx, name, item):
                continue
            subject = "privacy"
            foreign = sorted({tr.announce for tr in t.trackers if foreign_url(tr.announce)})
            if foreign:
                face = ctx.face or "the public_swarm_face"
                what = ("is fleet-only" if item.fleet_only else f"is public and {name} takes "
                        f"it from the fleet only ({face} joins the public swarm)")
                ledger.act(name, ActionKind.set_trackers, key,
                           f"{item.name} {what}: remove the tracker"
                           f"{'s' if len(foreign) > 1 else ''} outside the fleet "
                           f"({', '.join(foreign)})",
                           params={"only_fleet": True}, rule=subject)
            leak = None if safe else leak_refusal(ctx, name, item)
            stopped_here = LEAK_STOPPED_LABEL in t.labels
            if leak is not None and t.state is not TorrentState.stopped:
                if name in ledger.removals.get(key, ()):
                    continue
                ledger.act(name, ActionKind.stop, key, f"stop it: {leak}",
                           params={"labels_add": [LEAK_STOPPED_LABEL]}, rule=subject)
            elif leak is not None and not stopped_here:
                ledger.warn("leaky-session", leak, node=name, subject=key)
            elif leak is None and stopped_here:
                if t.state is TorrentState.stopped:
                    ledger.act(name, ActionKind.start, key,
                               f"{name}'s Transmission no longer leaks {item.name} (DHT, PEX and "
                               "LPD are off): start it again",
                               params={"labels_remove": [LEAK_STOPPED_LABEL]}, rule=subject)
                else:
                    labels = sorted(set(t.labels) - {LEAK_STOPPED_LABEL})
                    ledger.act(name, ActionKind.set_labels, key,
                               f"{item.name} runs again on {name}: drop {LEAK_STOPPED_LABEL}",
                               params={"labels": labels}, rule=subject)
