"""Gates: what may go where, be announced where, and be searched where.

The f2f gate is un-overridable: an ``f2f_only`` item (private provenance, or a source marked
f2f_only) is never placed on the public_swarm_face, never offered by it as a source, never
re-searched publicly, and never given a tracker other than the fleet's own. Public-ness decides
the VPN kill switch: on a node whose VPN is down, a torrent is public when its item is not
declared in the fleet repo (unknown: assumed public, privacy first), when the node is the
public_swarm_face (everything it seeds is public), or when its item's provenance is public and
the copy is not demonstrably kept inside the fleet (``public_because``). A guarded home copy
(``face.guarded``) talks to fleet peers only, so it is not public traffic and keeps running.
"""

from __future__ import annotations

from typing import Any

from controller.announce import base_url, is_fleet
from controller.planner.context import Context, CopyState
from controller.planner.face import guarded
from controller.planner.labels import PUBLIC_SWARM_LABEL
from schemas.desired import Provenance, ResolvedItem
from schemas.observed import TorrentStatus

__all__ = [
    "f2f_blocked",
    "fabric_reach",
    "fleet_tracker",
    "fleet_trackers",
    "is_public",
    "kept_inside",
    "leak_refusal",
    "public_because",
    "search_refusal",
    "sources",
    "vpn_down",
]


def f2f_blocked(ctx: Context, node: str, key: str) -> bool:
    """Is ``node`` the public_swarm_face and ``key`` an f2f_only item?"""
    if node != ctx.face:
        return False
    item = ctx.item(key)
    return item is not None and item.f2f_only


def is_public(ctx: Context, node: str, key: str, torrent: TorrentStatus | None = None) -> bool:
    """Would ``node``'s copy of ``key`` (``torrent``, when it is there) talk to the public swarm?"""
    return public_because(ctx, node, key, torrent) is not None


def public_because(
    ctx: Context, node: str, key: str, torrent: TorrentStatus | None = None
) -> str | None:
    """Why ``node``'s copy of ``key`` is public traffic (the kill switch stops it while the VPN
    is down), in words; None when it is not.

    A guarded copy counts as inside the fleet only while all of it says so: the node's session
    cannot leak it (``leak_refusal``), the torrent announces to fleet trackers only, and it never
    joined the public swarm from this node (``PUBLIC_SWARM_LABEL``: Transmission remembers the
    public peers it met, and dials them again when it runs)."""
    if node == ctx.face:
        return f"{node} is the public_swarm_face"
    item = ctx.item(key)
    if item is None:
        return "not declared in the fleet repo, so treated as public"
    if item.provenance is not Provenance.public:
        return None
    if not guarded(ctx, node, item):
        return "public provenance"
    if leak_refusal(ctx, node, item) is not None:
        return "public provenance, and its session could announce it beyond the fleet"
    if torrent is None:
        return None
    if PUBLIC_SWARM_LABEL in torrent.labels:
        return f"public provenance, and it joined the public swarm from {node}"
    fleet = fleet_trackers(ctx)
    if any(not any(is_fleet(tr.announce, base) for base in fleet) for tr in torrent.trackers):
        return "public provenance, and it carries a tracker outside the fleet"
    return None


def search_refusal(ctx: Context, key: str) -> str | None:
    """Why ``key`` may not be re-searched publicly, or None when it may."""
    item = ctx.item(key)
    if item is None:
        return "it is not declared in the fleet repo"
    if item.f2f_only:
        return "it is f2f_only (never re-searched publicly)"
    if item.source is not None and item.source in ctx.desired.sources:
        src = ctx.desired.sources[item.source]
        if not src.effective_search:
            return f"source {src.name} does not allow search"
        return None
    if item.provenance is not Provenance.public:
        return f"its provenance is {item.provenance.value}"
    return None


def vpn_down(ctx: Context, node: str) -> str | None:
    """The VPN profile ``node`` needs when it is down (or not reported) with a kill switch."""
    nf = ctx.nodes[node]
    prof_name = nf.device.vpn
    if prof_name is None or prof_name not in ctx.desired.vpn:
        return None
    if not ctx.desired.vpn[prof_name].kill_switch:
        return None
    if nf.status is None:
        return None
    for v in nf.status.vpn:
        if v.profile == prof_name and v.up:
            return None
    return prof_name


def fleet_tracker(ctx: Context, node: str) -> str | None:
    """The announce URL of ``node``'s own controller, which answers with the fleet's holders
    (the base URL: the node's actuator adds its token, ``controller.announce``)."""
    api = ctx.nodes[node].device.addresses.controller_api
    return None if api is None else base_url(api)


def fleet_trackers(ctx: Context) -> list[str]:
    """Every node's fleet tracker base URL: a tracker that is none of these is foreign."""
    return sorted({base_url(d.addresses.controller_api) for d in ctx.desired.devices.values()
                   if d.addresses.controller_api is not None})


def leak_refusal(ctx: Context, node: str, item: ResolvedItem) -> str | None:
    """Why ``item`` may not be held on ``node`` because its Transmission session would announce
    it beyond the fleet's trackers (DHT, PEX, LPD); None when it may.

    It applies to a fleet-only item everywhere, and to a public item on a node other than the
    public_swarm_face (``face.guarded``: home nodes take public items from the fleet only).
    A torrent with the private flag (BEP 27) is kept off DHT, PEX and LPD by Transmission
    itself, whatever the session says. Without it, the node's observed session must have all
    three off; a session that is not reported counts as leaking (privacy first)."""
    if item.private_flag:
        return None
    if item.fleet_only:
        what = f"{item.name} is fleet-only without the private flag (BEP 27)"
        fix = "turn them off on that node or commit a private .torrent"
    elif guarded(ctx, node, item):
        what = (f"{item.name} is public and {node} takes it from the fleet only "
                f"({ctx.face or 'the public_swarm_face'} joins the public swarm)")
        fix = "turn them off on that node"
    else:
        return None
    st = ctx.nodes[node].status
    session = st.transmission.session if st is not None else None
    if session is None:
        return f"{node} has not reported its Transmission session (DHT, PEX, LPD), and {what}"
    if session.leaks:
        return (f"{node}'s Transmission has {', '.join(session.leaks)} on, which would announce "
                f"{item.name} beyond the fleet: {what}; {fix}")
    return None


def kept_inside(ctx: Context, node: str, item: ResolvedItem) -> bool:
    """Is ``node``'s copy of ``item`` announced to the fleet's trackers only: a fleet-only item,
    or a public item on a home node while the fleet has a face (``face.guarded``)?"""
    return item.fleet_only or guarded(ctx, node, item)


def sources(ctx: Context, node: str | None, key: str, *, partial: bool = False) -> list[dict[str, Any]]:
    """Fleet holders ``node`` can fetch ``key`` from: fresh, complete (or in progress when
    ``partial``), trusted enough to count, gates applied; in node order."""
    item = ctx.item(key)
    f2f = item is not None and item.f2f_only
    out: list[dict[str, Any]] = []
    for c in ctx.copies(key):
        if c.node == node:
            continue
        if c.state is not CopyState.live and not (partial and c.state is CopyState.pending):
            continue
        if f2f and c.node == ctx.face:
            continue
        dev = ctx.nodes[c.node].device
        out.append({
            "node": c.node,
            "peer": dev.addresses.peer,
            "complete": c.state is CopyState.live,
        })
    reach = fabric_reach(ctx, node)
    if reach is not None:  # holders the node reaches over the fabric now come first
        out.sort(key=lambda s: s["node"] not in reach)
    return out


def fabric_reach(ctx: Context, node: str | None) -> frozenset[str] | None:
    """The members ``node`` reached over the fabric when it last reported; None when it is not
    on a fabric (or its fabric is down): then reachability says nothing."""
    view = ctx.nodes.get(node) if node is not None else None
    st = view.status if view is not None else None
    if st is None or st.fabric is None or not st.fabric.up:
        return None
    return frozenset(st.fabric.reachable)
