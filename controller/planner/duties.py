"""Duty assignment: who is custodian, public_swarm_face, acquirer and player.

A pure function of the registry (devices, duty pins), liveness (the fleet view) and the
invariants in ``schemas/rules.py``, so every controller computes the same answer with no leader.

Tie-breaks, in order (documented in docs/planner.md):

- *custodian* and *player* are held by every eligible device (restricted to the pinned ones
  when pins exist); liveness does not remove the duty, it only stops new pins on a node.
- *public_swarm_face* (at most one): a pin wins if the pinned device is eligible. Otherwise,
  among eligible devices that are not gone or unknown: a seedbox first, then a device with a
  VPN profile, then an always-on device, then by name.
- *acquirer* (at most one): a pin wins if eligible. Otherwise, among live eligible devices:
  always-on first, then fresh before stale, then by class (server, desktop, seedbox, laptop,
  tv, phone), then by name.

A pin to a device that is gone is kept (the owner said so) and reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from controller.planner.context import Context
from controller.planner.freshness import Freshness
from controller.planner.text import age, names
from schemas.desired import DeviceClass, Duty, TrustLevel
from schemas.plan import DutyAssignment, PlanWarning, Severity
from schemas.rules import SINGLETON_DUTIES, ineligibility

__all__ = ["DutyOutcome", "assign_duties"]

_CLASS_RANK = {
    DeviceClass.server: 0, DeviceClass.desktop: 1, DeviceClass.seedbox: 2,
    DeviceClass.laptop: 3, DeviceClass.tv: 4, DeviceClass.phone: 5,
}
_LIVE = (Freshness.fresh, Freshness.stale)


@dataclass
class DutyOutcome:
    holders: dict[Duty, tuple[str, ...]] = field(default_factory=dict)
    eligible: dict[Duty, tuple[str, ...]] = field(default_factory=dict)
    assignments: list[DutyAssignment] = field(default_factory=list)
    warnings: list[PlanWarning] = field(default_factory=list)


def assign_duties(ctx: Context) -> DutyOutcome:
    d = ctx.desired
    out = DutyOutcome()
    pins = d.duties.pins if d.duties is not None else {}
    for duty in Duty:
        pinned = sorted(set(pins.get(duty, [])))
        eligible: list[str] = []
        excluded: list[str] = []
        for name in sorted(d.devices):
            why = ineligibility(duty, d.devices[name], d.vpn)
            if why is None and duty is Duty.custodian and d.devices[name].trust is TrustLevel.untrusted:
                why = "it is untrusted"
            if why is None:
                eligible.append(name)
            else:
                excluded.append(f"{name} ({why})")
        for name in pinned:
            if name not in d.devices:
                out.warnings.append(_broken(duty, f"{duty.value} is pinned to unknown device {name!r}"))
            elif name not in eligible:
                why = ineligibility(duty, d.devices[name], d.vpn) or "it is untrusted"
                out.warnings.append(_broken(
                    duty, f"{duty.value} is pinned to {name}, which breaks a duty invariant: {why}; "
                    "the pin is ignored"))
        out.eligible[duty] = tuple(eligible)
        valid_pins = [n for n in pinned if n in eligible]
        if duty in SINGLETON_DUTIES:
            holder, reason = _singleton(ctx, duty, eligible, valid_pins, out)
            holders: tuple[str, ...] = (holder,) if holder else ()
        else:
            holders = tuple(valid_pins) if valid_pins else tuple(eligible)
            if valid_pins:
                reason = f"pinned in duties.yaml ({names(valid_pins)})"
            else:
                reason = f"every eligible device ({names(eligible)})"
            if excluded:
                reason += f"; not eligible: {'; '.join(excluded)}"
            away = [n for n in holders if ctx.nodes[n].freshness not in _LIVE]
            if away:
                reason += f"; away (no new work): {names(away)}"
        out.holders[duty] = holders
        out.assignments.append(DutyAssignment(duty=duty.value, nodes=list(holders), reason=reason))
    _check_claims(ctx, out)
    return out


def _singleton(
    ctx: Context, duty: Duty, eligible: list[str], pins: list[str], out: DutyOutcome
) -> tuple[str | None, str]:
    if pins:
        name = pins[0]
        nf = ctx.nodes[name]
        if nf.freshness not in _LIVE:
            out.warnings.append(PlanWarning(
                code="duty-holder-away", node=name, subject=duty.value,
                message=f"{duty.value} is pinned to {name}, which is {nf.freshness.value} "
                f"(no status for {age(nf.age)}); its work waits for it",
            ))
        return name, "pinned in duties.yaml"
    live = [n for n in eligible if ctx.nodes[n].freshness in _LIVE]
    if not live:
        if eligible:
            out.warnings.append(PlanWarning(
                code="duty-unassigned", subject=duty.value,
                message=f"no live device may hold {duty.value}: eligible {names(eligible)} "
                "are all gone or unknown",
            ))
            return None, f"unassigned: eligible {names(eligible)} are all gone or unknown"
        return None, "unassigned: no device is eligible"
    devices = ctx.desired.devices
    if duty is Duty.public_swarm_face:
        def face_key(n: str) -> tuple[bool, bool, bool, str]:
            dev = devices[n]
            return (dev.device_class is not DeviceClass.seedbox, dev.vpn is None,
                    not dev.always_on, n)
        chosen = min(live, key=face_key)
        dev = devices[chosen]
        if dev.device_class is DeviceClass.seedbox:
            why = "a seedbox (preferred: the home address stays out of public swarms)"
        elif dev.vpn is not None:
            why = f"no live seedbox; it uses VPN profile {dev.vpn}"
        else:
            why = "the first eligible device"
    else:
        def acq_key(n: str) -> tuple[bool, bool, int, str]:
            dev = devices[n]
            return (not dev.always_on, ctx.nodes[n].freshness is not Freshness.fresh,
                    _CLASS_RANK[dev.device_class], n)
        chosen = min(live, key=acq_key)
        dev = devices[chosen]
        why = "always on" if dev.always_on else "no always-on device is live"
        why += f", class {dev.device_class.value}"
    others = [n for n in eligible if n != chosen]
    reason = f"{chosen}: {why}"
    if others:
        reason += f"; also eligible: {names(others)}"
    return chosen, reason


def _check_claims(ctx: Context, out: DutyOutcome) -> None:
    """Fresh nodes that report running a singleton duty: more than one is an incident."""
    for duty in sorted(SINGLETON_DUTIES):
        claims = [
            n for n, nf in ctx.nodes.items()
            if nf.fresh and nf.status is not None and duty.value in nf.status.duties
        ]
        if len(claims) > 1:
            out.warnings.append(_broken(
                duty, f"{len(claims)} nodes report running {duty.value} ({names(claims)}); "
                f"it is assigned to {names(out.holders.get(duty, ()))}",
                severity=Severity.error))


def _broken(duty: Duty, message: str, severity: Severity = Severity.warning) -> PlanWarning:
    return PlanWarning(code="invariant-broken", subject=duty.value, message=message,
                       severity=severity)
