"""Which devices may hold which duty: the invariants, as pure predicates.

Shared by the loader (a pin that breaks an invariant is a validation error) and the planner
(assignment only ever picks eligible devices).
"""

from __future__ import annotations

from schemas.desired import Device, DeviceClass, Duty, Service, VpnProfile


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
