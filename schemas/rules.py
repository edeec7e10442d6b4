"""Pure rules about the desired state: duty eligibility (the invariants) and placement.

Shared by the loader (a pin that breaks an invariant, or a floor no set of devices can meet,
is a validation error) and the planner (assignment only ever picks eligible devices).
"""

from __future__ import annotations

from schemas.desired import (
    CustodyRule,
    Device,
    DeviceClass,
    Duty,
    DutyPins,
    Service,
    TrustLevel,
    VpnProfile,
)

__all__ = [
    "SINGLETON_DUTIES",
    "eligible_custodians",
    "ineligibility",
    "placement_allows",
]


def ineligibility(duty: Duty, device: Device, vpn: dict[str, VpnProfile]) -> str | None:
    """Why ``device`` may not hold ``duty``, or None when it may."""
    if duty is Duty.custodian:
        if device.device_class is DeviceClass.phone:
            return "a phone is never a custodian"
        if Service.transmission not in device.services:
            return "it does not run transmission"
        if not device.storage:
            return "it has no storage roots"
    elif duty is Duty.public_swarm_face:
        if Service.transmission not in device.services:
            return "it does not run transmission"
        has_vpn = device.vpn is not None and device.vpn in vpn
        if not has_vpn and device.device_class is not DeviceClass.seedbox:
            return "a public_swarm_face without a VPN must be a seedbox"
        if device.device_class is DeviceClass.phone:
            return "a phone is never the public_swarm_face"
    elif duty is Duty.acquirer:
        if Service.transmission not in device.services:
            return "it does not run transmission"
        if Service.controller not in device.services:
            return "it does not run the controller"
    elif duty is Duty.player:
        if Service.player not in device.services:
            return "it does not run the player"
    return None


SINGLETON_DUTIES = frozenset({Duty.public_swarm_face, Duty.acquirer})
"""Duties held by at most one device at a time."""


def placement_allows(rule: CustodyRule, dev: Device) -> bool:
    """Does ``rule``'s placement admit ``dev``? Empty constraint lists admit every device."""
    p = rule.placement
    if p.classes and dev.device_class not in p.classes:
        return False
    if p.labels and not set(p.labels) <= set(dev.labels):
        return False
    if p.devices and dev.name not in p.devices:
        return False
    return dev.name not in p.exclude_devices


def eligible_custodians(
    rule: CustodyRule,
    devices: dict[str, Device],
    vpn: dict[str, VpnProfile],
    duties: DutyPins | None,
) -> list[str]:
    """Devices whose copies can count toward ``rule``'s floor, sorted by name."""
    pinned = duties.pins.get(Duty.custodian) if duties is not None else None
    out = []
    for name, dev in devices.items():
        if ineligibility(Duty.custodian, dev, vpn) is not None:
            continue
        if dev.trust is TrustLevel.untrusted:
            continue
        if pinned is not None and name not in pinned:
            continue
        if not placement_allows(rule, dev):
            continue
        out.append(name)
    return sorted(out)
