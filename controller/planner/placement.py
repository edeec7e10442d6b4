"""Placing a copy on a node: the checks every pin shares, and the ``add`` action it becomes.

A pin is an ``add`` action on the target node (not a separate ``pin`` kind): the actuator only
needs Transmission's verb, and the custody meaning travels in the action's ``rule`` and in the
torrent's labels (``tva`` plus ``tva:custody/<rule>``, ``tva:watchlist/<name>`` or
``tva:player/<device>``). Its params: ``magnet`` (the item's, or one built from the info-hash),
``torrent`` (the committed .torrent path, preferred when present), ``download_dir``, ``labels``,
``paused``, ``sources`` (fleet holders to fetch from) and ``trackers`` (the node's own controller
announce URL, which answers with the fleet's holders).

A public item placed on a home node while the fleet has a public_swarm_face is kept inside the
fleet like a fleet-only item (``face.py``); when no fleet node has it yet, the face gets an
``add`` of its own (label ``tva:face``) that fetches it from the public swarm, and the home node
waits when the face cannot (``face-away``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from controller.planner.context import Context
from controller.planner.face import face_waits, fallback, guarded
from controller.planner.gates import (
    f2f_blocked,
    fleet_tracker,
    is_public,
    kept_inside,
    leak_refusal,
    sources,
    vpn_down,
)
from controller.planner.labels import (
    FACE_LABEL,
    PUBLIC_SWARM_LABEL,
    TVA_LABEL,
    VPN_STOPPED_LABEL,
)
from controller.planner.ledger import Ledger
from controller.planner.text import size as fmt_size
from schemas.desired import ResolvedItem
from schemas.observed import TorrentState
from schemas.plan import ActionKind

__all__ = ["add_params", "feed_face", "place", "refusal"]


def refusal(ctx: Context, ledger: Ledger, node: str, key: str) -> tuple[str, str] | None:
    """Why ``key`` cannot be placed on ``node`` now, as (code, words); None when it can."""
    nf = ctx.nodes[node]
    if not nf.actionable:
        return "not-live", nf.liveness() or f"{node} is not live"
    refused = next((c for c in nf.status.conditions if c.type == "StorageAllowed"
                    and c.status.value == "False"), None) if nf.status is not None else None
    if refused is not None:
        # The node's own configuration refuses the roots the fleet repo gives it.
        return "storage-refused", f"{node} refuses its storage: {refused.message}"
    if f2f_blocked(ctx, node, key):
        return "f2f-gate", f"{node} is the public_swarm_face and the item is f2f_only"
    item = ctx.item(key)
    if item is not None:
        leak = leak_refusal(ctx, node, item)
        if leak is not None:
            return "leaky-session", leak
        if guarded(ctx, node, item) and not sources(ctx, node, key):
            # No fleet node has it: the face must fetch it first (``face.py``).
            why = _face_refusal(ctx, ledger, node, item)
            if why is not None:
                return why
    need = item.size if item is not None and item.size is not None else 0
    reserve = ctx.desired.fleet.policy.custody.reserve
    room = nf.room(reserve)
    if room is not None:
        left = room - ledger.planned_bytes[node]
        if need > left:
            committed = nf.committed if nf.free is not None else 0
            pending = (f" and the {fmt_size(committed)} still to download"
                       if committed else "")
            return "no-room", (f"{node} has no room: {fmt_size(need)} needed, "
                               f"{fmt_size(max(left, 0))} free beyond the {fmt_size(reserve)} "
                               f"reserve{pending}")
    return None


def _face_refusal(
    ctx: Context, ledger: Ledger, node: str, item: ResolvedItem
) -> tuple[str, str] | None:
    waits = face_waits(ctx, node)
    if waits is not None:
        return "face-away", waits
    face = ctx.face
    assert face is not None
    if item.key in ctx.nodes[face].torrents or ledger.has(face, ActionKind.add, item.key):
        return None
    why = refusal(ctx, ledger, face, item.key)
    if why is None:
        return None
    return "face-away", (f"{face}, the public_swarm_face, cannot fetch it ({why[1]}); home "
                         "nodes never join public swarms")


def add_params(ctx: Context, node: str, key: str, label: str) -> dict[str, Any]:
    item = ctx.item(key)
    assert item is not None
    dev = ctx.nodes[node].device
    labels = {TVA_LABEL, label}
    paused = False
    if vpn_down(ctx, node) is not None and is_public(ctx, node, key):
        paused = True
        labels.add(VPN_STOPPED_LABEL)
    bare = f"magnet:?xt=urn:btih:{key}&dn={quote(item.name)}"
    inside = kept_inside(ctx, node, item)
    if not inside and node != ctx.face:
        # A home copy that joins the public swarm stays public for the kill switch
        # (gates.public_because), even once it is guarded again.
        labels.add(PUBLIC_SWARM_LABEL)
    params: dict[str, Any] = {
        # A copy kept inside the fleet never carries its magnet's trackers or web seeds.
        "magnet": bare if inside else (item.magnet or bare),
        "download_dir": dev.effective_download_dir,
        "labels": sorted(labels),
        "paused": paused,
        "sources": sources(ctx, node, key),
    }
    if item.torrent is not None:
        params["torrent"] = item.torrent
    tracker = fleet_tracker(ctx, node)
    if tracker is not None:
        params["trackers"] = [tracker]
    if inside:
        params["fleet_only"] = True
    return params


def place(
    ctx: Context, ledger: Ledger, node: str, key: str, reason: str, *, rule: str, label: str
) -> None:
    """Plan an ``add`` of ``key`` on ``node`` (checks already done by the caller)."""
    item = ctx.item(key)
    size = item.size if item is not None else None
    face = ctx.face
    via_face = (item is not None and face is not None and guarded(ctx, node, item)
                and not sources(ctx, node, key))
    if via_face:
        reason += (f"; no fleet node has it yet: {face}, the public_swarm_face, fetches it from "
                   f"the public swarm and {node} takes it from the fleet only")
    elif item is not None and not item.fleet_only and not sources(ctx, node, key):
        fell_back = fallback(ctx, node)
        if fell_back is not None:
            reason += f"; no fleet node has it: {node} fetches it from the public swarm ({fell_back})"
    fresh_add = not ledger.has(node, ActionKind.add, key)
    ledger.act(node, ActionKind.add, key, reason, params=add_params(ctx, node, key, label),
               rule=rule, size=size)
    if fresh_add:
        ledger.plan_add(node, key, size)
    if via_face and face is not None and item is not None and key not in ctx.nodes[face].torrents:
        place(ctx, ledger, face, key,
              f"public_swarm_face: {node} needs {item.name} ({rule}) and no fleet node has it: "
              f"{face} fetches it from the public swarm, so that {node} never joins it",
              rule="face", label=FACE_LABEL)


_NOT_FETCHING = frozenset({TorrentState.stopped, TorrentState.check_pending, TorrentState.checking})
"""A copy stopped, or being checked (put in place by hand, after a restart): whether it lacks
anything is not known until the check ends."""


def feed_face(ctx: Context, ledger: Ledger) -> None:
    """Level-triggered: a guarded copy a home node already holds, incomplete, neither stopped nor
    being checked, with no fleet node to fetch it from, gets the face's add whichever pass first
    sees it.

    ``place`` plans the face's add in the pass that places the home copy; but every node plans
    for the whole fleet and applies only its own actions, so when the face's controller first
    looks after the home node has added its copy, that pass places nothing, and without this
    step the home copy would wait for ever.
    """
    face = ctx.face
    if face is None or face not in ctx.nodes:
        return
    for node in sorted(ctx.nodes):
        nf = ctx.nodes[node]
        if node == face or not nf.actionable:
            continue
        for key in sorted(nf.torrents):
            t = nf.torrents[key]
            item = ctx.item(key)
            if (t.percent_done >= 1.0 or t.state in _NOT_FETCHING or item is None
                    or not guarded(ctx, node, item) or sources(ctx, node, key)):
                continue
            if key in ctx.nodes[face].torrents or ledger.has(face, ActionKind.add, key):
                continue
            if refusal(ctx, ledger, face, key) is not None:
                continue
            place(ctx, ledger, face, key,
                  f"public_swarm_face: {node} holds {item.name} incomplete and no fleet node has "
                  f"it: {face} fetches it from the public swarm, so that {node} never joins it",
                  rule="face", label=FACE_LABEL)
