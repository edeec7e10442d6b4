"""Each node's Transmission session is desired state: what the fleet says, tva keeps.

The fleet's ``policy.transmission`` with a device's ``transmission`` over it names the session
settings tva owns on that node (``TransmissionSession.rpc``: DHT, PEX, LPD, uTP, encryption,
peer port, speed limits, the alternative-speed schedule, queues, seeding limits). Every pass
compares them with the settings the node observed; a difference is drift, corrected with one
``set-session`` action naming each setting (``policy.session_drift: correct``, the default) or
reported as a ``session-drift`` warning (``warn``). Settings tva does not own are never read as
drift and never changed. A device with a bandwidth policy (``controller.planner.bandwidth``)
owns its speed limits through it: they follow the time of day, the player and the power.
"""

from __future__ import annotations

from controller.planner.bandwidth import speed_settings
from controller.planner.context import Context
from controller.planner.ledger import Ledger
from schemas.desired import Device, DriftMode, SessionValue, TransmissionSession
from schemas.plan import ActionKind

__all__ = ["SESSION_TARGET", "desired_session", "drift", "plan_session"]

SESSION_TARGET = "session"
"""The target of ``set-session`` actions (a node has one session)."""


def desired_session(ctx: Context, device: Device) -> dict[str, SessionValue]:
    """The session-set arguments the fleet wants on ``device``."""
    fleet = ctx.desired.fleet.policy.transmission
    own = device.transmission or TransmissionSession()
    return own.over(fleet).rpc()


def _same(have: SessionValue | None, want: SessionValue) -> bool:
    if isinstance(want, bool) or isinstance(have, bool):
        return have is want
    if isinstance(want, int | float) and isinstance(have, int | float):
        return abs(float(have) - float(want)) < 1e-9
    return have == want


def drift(want: dict[str, SessionValue], have: dict[str, SessionValue]) -> dict[str, SessionValue]:
    """The settings of ``want`` that ``have`` does not match (a missing one counts)."""
    return {k: v for k, v in sorted(want.items()) if not _same(have.get(k), v)}


def _shown(value: SessionValue | None) -> str:
    if value is None:
        return "unreported"
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def plan_session(ctx: Context, ledger: Ledger) -> None:
    mode = ctx.desired.fleet.policy.session_drift
    for name, nf in ctx.nodes.items():
        if not nf.actionable or nf.status is None or nf.status.transmission.session is None:
            continue
        want = desired_session(ctx, nf.device)
        fleet = ctx.desired.fleet.policy
        session = (nf.device.transmission or TransmissionSession()).over(fleet.transmission)
        speed = speed_settings(nf.device.bandwidth or fleet.bandwidth, session.speed, ctx.now,
                               nf.status)
        if speed is not None:  # the rule owns the limits: an unlimited direction has no value
            want = {k: v for k, v in want.items() if not k.startswith("speed-limit-")}
            want.update(speed[0])
        have = nf.status.transmission.session.settings
        changes = drift(want, have)
        if not changes:
            continue
        words = "; ".join(f"{k} is {_shown(have.get(k))}, the fleet wants {_shown(v)}"
                          for k, v in changes.items())
        if speed is not None and any(k in speed[0] for k in changes):
            words += f" (bandwidth: {speed[1]})"
        if mode is DriftMode.correct:
            ledger.act(name, ActionKind.set_session, SESSION_TARGET,
                       f"{name}'s Transmission session drifted: {words}", params=changes,
                       rule="session")
        else:
            ledger.warn("session-drift", f"{name}'s Transmission session drifted: {words} "
                        "(policy.session_drift is warn: left as it is)", node=name,
                        subject="session")
