"""The VPN kill switch: a node whose VPN profile is down stops its public torrents.

For a device with ``vpn:`` set whose profile's ``VpnState`` is down or not reported (fresh
status only: a stale status says nothing about now):

- ``vpn-up`` (target: the profile) when the node says it can bring the profile up
  (``VpnState.managed``: its own configuration has the command; the fleet repo never does);
- with ``kill_switch``, ``stop`` every running torrent on it that is public
  (``gates.public_because``; a guarded home copy talks to fleet peers only and keeps running),
  adding the label ``tva:vpn-stopped`` (params ``labels_add``); new pins of public items arrive
  paused with that label (``placement.add_params``).

When the profile is up again, ``start`` exactly the torrents carrying ``tva:vpn-stopped``
(params ``labels_remove``); a torrent someone else stopped stays stopped, and one the privacy
step stopped too (``tva:leak-stopped``) only loses the kill switch's label. A tunnel that is up
while the node's Transmission is not bound to its address (``VpnState.bound`` false) is a
``vpn-unbound`` warning: its peer traffic would leave on the bare link the moment the tunnel
drops, before the stop.
"""

from __future__ import annotations

from controller.planner.context import Context
from controller.planner.gates import public_because
from controller.planner.labels import LEAK_STOPPED_LABEL, VPN_STOPPED_LABEL
from controller.planner.ledger import Ledger
from schemas.observed import TorrentState
from schemas.plan import ActionKind

__all__ = ["plan_vpn"]


def plan_vpn(ctx: Context, ledger: Ledger) -> None:
    for name, nf in ctx.nodes.items():
        prof_name = nf.device.vpn
        if prof_name is None or prof_name not in ctx.desired.vpn:
            continue
        if not nf.fresh or nf.status is None:
            continue
        prof = ctx.desired.vpn[prof_name]
        subject = f"vpn/{prof.name}"
        state = next((v for v in nf.status.vpn if v.profile == prof.name), None)
        if state is not None and state.up:
            if state.bound is False:
                ledger.warn("vpn-unbound", f"{subject} is up on {name} but its Transmission's "
                            f"peer traffic is not bound to the tunnel's address {state.address}: "
                            "set bind-address-ipv4 in its settings.json and reload it (SIGHUP); "
                            "until then only the kill switch's stop keeps public torrents off "
                            "the bare link", node=name, subject=subject)
            if not nf.actionable:
                continue
            for key, t in nf.torrents.items():
                if VPN_STOPPED_LABEL not in t.labels:
                    continue
                if t.state is TorrentState.stopped and LEAK_STOPPED_LABEL not in t.labels:
                    ledger.act(name, ActionKind.start, key,
                               f"{subject} is up again on {name}: restart what the kill switch "
                               "stopped", params={"labels_remove": [VPN_STOPPED_LABEL]},
                               rule=subject)
                else:
                    # Stopped for its leaking session too: the privacy step starts it when
                    # that is safe; the kill switch only lets go of it.
                    labels = sorted(set(t.labels) - {VPN_STOPPED_LABEL})
                    now_ = ("the torrent runs again" if t.state is not TorrentState.stopped else
                            f"{LEAK_STOPPED_LABEL} keeps it stopped until its session is safe")
                    ledger.act(name, ActionKind.set_labels, key,
                               f"{subject} is up on {name}: {now_}, drop {VPN_STOPPED_LABEL}",
                               params={"labels": labels}, rule=subject)
            continue
        detail = " (not reported)" if state is None else (f" ({state.detail})" if state.detail else "")
        if state is None or state.managed:
            ledger.act(name, ActionKind.vpn_up, prof.name,
                       f"{subject} is down on {name}{detail}; bring it up",
                       params={"interface": prof.interface}, rule=subject)
        else:
            ledger.warn("vpn-down", f"{subject} is down on {name}{detail} and the node has no "
                        "up command for it; bring it up by hand, or configure one in its "
                        "node.toml", node=name, subject=subject)
        if not prof.kill_switch or not nf.actionable:
            continue
        for key, t in nf.torrents.items():
            why = public_because(ctx, name, key, t)
            if t.state is TorrentState.stopped or why is None:
                continue
            if name in ledger.removals.get(key, ()):
                continue
            ledger.act(name, ActionKind.stop, key,
                       f"{subject} is down on {name} and the kill switch is on: "
                       f"{t.name} is public ({why})",
                       params={"labels_add": [VPN_STOPPED_LABEL]}, rule=subject)
