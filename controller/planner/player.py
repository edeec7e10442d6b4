"""Player: desired mpv settings and queue against what the player reports.

- Each desired option whose observed value differs (or is not reported) gives a ``player-set``
  (target: the option name; params: ``value``). Values compare as mpv reads them: ``true`` and
  ``yes`` are the same flag, ``70`` and ``70.0`` the same number.
- A queue names what the device should be playing. Its items are kept on the device (pinned
  like a watchlist buffer, label ``tva:player/<device>``, never removed while queued). When the
  player is idle, the first queued item that is not yet watched and is complete on the device is
  loaded (``player-load``, params: ``path``).

Only devices that hold the player duty, are fresh, and whose player is reachable get actions.
"""

from __future__ import annotations

from controller.planner.context import Context
from controller.planner.face import wait_note
from controller.planner.labels import player_label
from controller.planner.ledger import Ledger
from controller.planner.placement import place, refusal
from schemas.desired import Duty, MpvValue
from schemas.plan import ActionKind

__all__ = ["keep_queues", "plan_player", "queue_keys", "same_value"]

_TRUE = {"yes", "true", "1", "on"}
_FALSE = {"no", "false", "0", "off"}


def _norm(v: MpvValue | None) -> str | float | bool | None:
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, int | float):
        return float(v)
    low = v.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    try:
        return float(low)
    except ValueError:
        return v


def same_value(desired: MpvValue, observed: MpvValue | None) -> bool:
    return _norm(desired) == _norm(observed)


def queue_keys(ctx: Context, device: str) -> list[str]:
    """The device's queue as item keys (names resolved), in order, unknown names skipped."""
    dev = ctx.desired.devices[device]
    if dev.player is None:
        return []
    by_name: dict[str, str] = {}
    for k in sorted(ctx.desired.items):
        by_name.setdefault(ctx.desired.items[k].name, k)
    out: list[str] = []
    for entry in dev.player.queue:
        key: str | None = entry.lower() if entry.lower() in ctx.desired.items else by_name.get(entry)
        if key is not None and key not in out:
            out.append(key)
    return out


def keep_queues(ctx: Context, ledger: Ledger) -> None:
    for device in ctx.duty_holders.get(Duty.player, ()):
        for key in queue_keys(ctx, device):
            ledger.keep.add((device, key))


def plan_player(ctx: Context, ledger: Ledger) -> None:
    for device in ctx.duty_holders.get(Duty.player, ()):
        dev = ctx.desired.devices[device]
        nf = ctx.nodes[device]
        if dev.player is None or not nf.fresh:
            continue
        queue = queue_keys(ctx, device)
        subject = f"player/{device}"
        for key in queue:
            if key in nf.watched or key in nf.torrents or not nf.actionable:
                continue
            name = ctx.desired.items[key].name
            why = refusal(ctx, ledger, device, key)
            if why is None:
                place(ctx, ledger, device, key, f"{subject}: {name} is in the queue of {device}",
                      rule=subject, label=player_label(device))
            elif why[0] == "face-away":
                wait_note(ctx, ledger, device, name, why[1])
        p = nf.player
        if p is None:
            continue
        for option in sorted(dev.player.options):
            want = dev.player.options[option]
            have = p.options.get(option)
            if same_value(want, have):
                continue
            shown = "not reported" if have is None else f"{have!r}"
            ledger.act(device, ActionKind.player_set, option,
                       f"{subject}: {option} is {shown}, desired {want!r}",
                       params={"value": want}, rule=subject)
        if p.path is None and p.idle:
            for key in queue:
                if key in nf.watched:
                    continue
                t = nf.torrents.get(key)
                if t is None or t.percent_done < 1.0:
                    break  # wait for it: the queue's order is the owner's
                path = f"{t.download_dir.rstrip('/')}/{t.name}"
                ledger.act(device, ActionKind.player_load, key,
                           f"{subject}: the player is idle; {t.name} is next in the queue",
                           params={"path": path}, rule=subject)
                break
