"""The public face: public items enter the fleet through the public_swarm_face.

A home address never joins a public swarm while the fleet has a face (a device eligible for
``public_swarm_face``: a seedbox, or a node behind a VPN). So, for a public item (provenance
``public``, ``ResolvedItem.fleet_only`` false) on any node but the face:

- the copy is *guarded*: it is added and kept like a fleet-only copy (only the node's fleet
  tracker, a bare magnet, no DHT, PEX or LPD on the node's session: ``gates.leak_refusal`` and
  ``privacy.py`` apply to it as to a fleet-only item);
- when no fleet node holds a complete live copy, the face fetches it from the public swarm (an
  ``add`` on the face, label ``tva:face``) and the home node takes it from the face;
- when the face is not live (stale, gone, Transmission unreachable, or no face assigned), the
  home node waits and the plan says why (``face-away``), unless the face is away past its grace,
  ``policy.public_face.fallback_behind_vpn`` is on, and the node's VPN profile is up and has
  its kill switch on: then the node may fetch from the public swarm itself (label
  ``tva:public-swarm``), and the kill switch stops those torrents when the tunnel drops
  (``gates.public_because``: they stay public). A guarded copy is not public traffic: the kill
  switch leaves it running.

A fleet with no device eligible for the face has no face: every node fetches public items itself
(there is nobody else who could).
"""

from __future__ import annotations

from controller.planner.context import Context
from controller.planner.freshness import Freshness
from controller.planner.ledger import Ledger
from controller.planner.session import desired_session
from controller.planner.text import names
from schemas.desired import ResolvedItem
from schemas.plan import Severity

__all__ = ["check_face_pex", "face_waits", "fallback", "guarded", "vpn_up", "wait_note"]


def vpn_up(ctx: Context, node: str) -> str | None:
    """The VPN profile ``node`` uses, when its fresh status says it is up; else None."""
    nf = ctx.nodes[node]
    prof = nf.device.vpn
    if prof is None or prof not in ctx.desired.vpn or not nf.fresh or nf.status is None:
        return None
    return prof if any(v.profile == prof and v.up for v in nf.status.vpn) else None


def _past_grace(ctx: Context) -> str | None:
    """Why the face is away past its grace (gone, never reported, none live); else None."""
    face = ctx.face
    if face is None:
        return (f"no public_swarm_face is live (eligible: {names(ctx.face_eligible)}, all "
                "gone or never reported)")
    nf = ctx.nodes[face]
    if nf.freshness in (Freshness.gone, Freshness.unknown):
        return f"{face}, the public_swarm_face, is away past its grace ({nf.liveness()})"
    return None


def fallback(ctx: Context, node: str) -> str | None:
    """Why ``node`` may fetch public items from the public swarm itself although the fleet has a
    face (the face away past grace, the fallback on, its VPN up); None when it may not."""
    if not ctx.desired.fleet.policy.public_face.fallback_behind_vpn:
        return None
    away = _past_grace(ctx)
    if away is None:
        return None
    prof = vpn_up(ctx, node)
    if prof is None or not ctx.desired.vpn[prof].kill_switch:
        # Only behind a kill switch: the moment the tunnel drops, its public torrents stop.
        return None
    return f"fallback: {away}, and {node}'s VPN {prof} is up"


def guarded(ctx: Context, node: str, item: ResolvedItem) -> bool:
    """Is ``node``'s copy of the public ``item`` kept inside the fleet (taken from fleet peers
    only, announced to the fleet's tracker only)? Fleet-only items are guarded anyway."""
    if item.fleet_only or not ctx.face_eligible or node == ctx.face:
        return False
    return fallback(ctx, node) is None


def face_waits(ctx: Context, node: str) -> str | None:
    """Why a guarded copy on ``node`` that no fleet node holds cannot be fetched now (the face
    is not live), in words; None when the face is live and can fetch it."""
    face = ctx.face
    if face is None:
        return f"{_past_grace(ctx)}{_no_fallback(ctx, node)}"
    nf = ctx.nodes[face]
    if nf.actionable:
        return None
    away = _past_grace(ctx)
    if away is None:
        return (f"{face}, the public_swarm_face, is not live ({nf.liveness()}); home nodes never "
                "join public swarms")
    return f"{away}{_no_fallback(ctx, node)}"


def wait_note(ctx: Context, ledger: Ledger, node: str, item: str, cause: str) -> None:
    """Tally a public item that waits for the face on ``node`` (``face-away``): a warning past
    the face's grace, an info note while it may still come back."""
    severity = Severity.warning if _past_grace(ctx) is not None else Severity.info
    ledger.tally("face-away", f"{node}: {{n}} public item{{s}} waiting for the "
                 f"public_swarm_face ({cause}): {{items}}", item, node=node,
                 subject="public_swarm_face", severity=severity)


def _no_fallback(ctx: Context, node: str) -> str:
    if not ctx.desired.fleet.policy.public_face.fallback_behind_vpn:
        return "; policy.public_face.fallback_behind_vpn is off"
    prof = ctx.nodes[node].device.vpn
    if prof is None or prof not in ctx.desired.vpn:
        return f"; {node} has no VPN to fall back behind"
    if not ctx.desired.vpn[prof].kill_switch:
        return f"; {node}'s VPN {prof} has no kill switch to fall back behind"
    return f"; {node}'s VPN {prof} is not up"


def check_face_pex(ctx: Context, ledger: Ledger) -> None:
    """Warn (``face-pex``) when the face's Transmission has PEX on and the fleet does not turn it
    off: PEX would tell the face's public peers the addresses of the home nodes it serves."""
    face = ctx.face
    if face is None:
        return
    nf = ctx.nodes[face]
    session = nf.status.transmission.session if nf.fresh and nf.status is not None else None
    if session is None or not session.pex:
        return
    if desired_session(ctx, nf.device).get("pex-enabled") is False:
        return  # the session step turns it off this pass
    ledger.warn("face-pex", f"{face}, the public_swarm_face, has PEX on: it would tell its public "
                "peers the addresses of the fleet nodes it serves; turn it off (transmission: "
                "{pex: false} on the device, or in policy.transmission)", node=face,
                subject="public_swarm_face")
