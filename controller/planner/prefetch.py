"""Prefetch: keep the next unwatched items of each watchlist ready on its device.

- A *show* entry's episodes are its collection's items ordered by ``episode`` (then name). The
  first ``keep_next`` episodes not in the device's watch progress (``PlayerStatus.watched``) are
  the buffer: each is pinned on the device (an ``add`` sourced from fleet holders).
- A *film* entry (the collection's item of that name) and a *magnet* entry are kept on the
  device until watched.
- Watched items of an entry leave the device (``remove-data``) unless custody keeps a copy there
  (removing it would leave a rule below its floor of confirmed live copies), something else keeps
  it (another entry's buffer, the player's queue), the player has it open, or tva did not add it
  (no ``tva`` label). Unwatched items beyond the buffer are left alone.

The buffers are computed before custody runs (``keep``), so that custody never prunes a copy a
watchlist wants; removals run after custody, so that they see custody's own removals.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.planner.context import Context
from controller.planner.custody import floor_without
from controller.planner.face import fallback, guarded, wait_note
from controller.planner.gates import sources
from controller.planner.labels import TVA_LABEL, watchlist_label
from controller.planner.ledger import Ledger
from controller.planner.placement import place, refusal
from controller.planner.text import names
from schemas.desired import ResolvedItem, WatchEntry, Watchlist, infohash_from_magnet
from schemas.plan import ActionKind

__all__ = ["Entry", "plan_prefetch", "prefetch_entries"]


@dataclass(frozen=True)
class Entry:
    watchlist: Watchlist
    entry: WatchEntry
    members: tuple[str, ...]
    """Every item the entry covers, in watching order."""
    buffer: tuple[str, ...]
    """The ones to keep ready on the device now."""
    what: str

    @property
    def device(self) -> str:
        return self.watchlist.device


def _episode_key(ctx: Context, key: str) -> tuple[bool, int, str, str]:
    it = ctx.desired.items[key]
    return (it.episode is None, it.episode or 0, it.name, key)


def prefetch_entries(ctx: Context, ledger: Ledger) -> list[Entry]:
    """Resolve every watchlist entry and mark its buffer as kept on its device."""
    out: list[Entry] = []
    by_collection: dict[str, list[str]] = {}
    for key, it in ctx.desired.items.items():
        if it.collection is not None:
            by_collection.setdefault(it.collection, []).append(key)
    for name in sorted(ctx.desired.watchlists):
        wl = ctx.desired.watchlists[name]
        nf = ctx.nodes.get(wl.device)
        if nf is None:
            continue
        watched = nf.watched
        for entry in wl.entries:
            members: list[str] = []
            if entry.show is not None:
                what = f"show {entry.show}"
                if entry.collection is not None:
                    members = sorted(by_collection.get(entry.collection, ()),
                                     key=lambda k: _episode_key(ctx, k))
                unwatched = [k for k in members if k not in watched]
                buffer = unwatched[: entry.keep_next]
            else:
                if entry.film is not None:
                    what = f"film {entry.film}"
                    pool = by_collection.get(entry.collection, ()) if entry.collection else ctx.desired.items
                    want = entry.film.casefold()
                    members = sorted(k for k in pool if ctx.desired.items[k].name.casefold() == want)
                    if not members:
                        ledger.warn("watchlist-unresolved",
                                    f"watchlist/{name}: no item named {entry.film!r}"
                                    + (f" in collection {entry.collection}" if entry.collection else ""),
                                    subject=f"watchlist/{name}")
                else:
                    assert entry.magnet is not None
                    mkey = infohash_from_magnet(entry.magnet)
                    what = f"magnet {mkey[:8] if mkey else '?'}"
                    members = [mkey] if mkey is not None and mkey in ctx.desired.items else []
                buffer = [k for k in members if k not in watched]
            for k in buffer:
                ledger.keep.add((wl.device, k))
            out.append(Entry(wl, entry, tuple(members), tuple(buffer), what))
    return out


def plan_prefetch(ctx: Context, ledger: Ledger, entries: list[Entry]) -> None:
    for e in entries:
        _pins(ctx, ledger, e)
    for e in entries:
        _removals(ctx, ledger, e)


def _pins(ctx: Context, ledger: Ledger, e: Entry) -> None:
    dev = e.device
    nf = ctx.nodes[dev]
    subject = f"watchlist/{e.watchlist.name}"
    for i, key in enumerate(e.buffer):
        if key in nf.torrents or nf.maybe_holder:
            continue
        item = ctx.desired.items[key]
        why = refusal(ctx, ledger, dev, key)
        if why is not None:
            if why[0] == "no-room":
                ledger.tally("capacity-short", f"{subject}: {{n}} item{{s}} cannot be kept ready "
                             f"on {dev}: {why[1]}: {{items}}", item.name, node=dev, subject=subject)
            elif why[0] == "f2f-gate":
                ledger.warn("f2f-gate", f"{subject}: {item.name} is f2f_only and {dev} is the "
                            "public_swarm_face; it is not placed there", node=dev, subject=subject)
            elif why[0] == "face-away":
                wait_note(ctx, ledger, dev, item.name, why[1])
            continue
        if e.entry.show is not None:
            ep = f"episode {item.episode}" if item.episode is not None else item.name
            reason = (f"{subject}: {ep} of {e.entry.show} is #{i + 1} of the next "
                      f"{e.entry.keep_next} unwatched on {dev}")
        else:
            reason = f"{subject}: {e.what} is kept on {dev} until watched"
        holders = [s["node"] for s in sources(ctx, dev, key)]
        if holders:
            reason += f"; fetch from {names(holders)}"
        else:
            reason += _no_holder(ctx, dev, item)
        place(ctx, ledger, dev, key, reason, rule=subject, label=watchlist_label(e.watchlist.name))


def _no_holder(ctx: Context, dev: str, item: ResolvedItem) -> str:
    """Where a copy no fleet node holds comes from, in words (``placement.place`` says it when
    the face fetches it, or the node falls back to the public swarm)."""
    if item.fleet_only:
        return "; no fleet holder yet"
    if guarded(ctx, dev, item) or fallback(ctx, dev) is not None:
        return ""
    if dev == ctx.face:
        return f"; no fleet holder: {dev}, the public_swarm_face, fetches it from the public swarm"
    return "; no fleet holder: from the public swarm (the fleet has no public_swarm_face)"


def _removals(ctx: Context, ledger: Ledger, e: Entry) -> None:
    dev = e.device
    nf = ctx.nodes[dev]
    if not nf.actionable:
        return
    subject = f"watchlist/{e.watchlist.name}"
    for key in e.members:
        t = nf.torrents.get(key)
        if t is None or key not in nf.watched or key in e.buffer:
            continue
        if TVA_LABEL not in t.labels or key in nf.open_keys or (dev, key) in ledger.keep:
            continue
        if dev in ledger.removals.get(key, ()):
            continue
        ok, relies, _ = floor_without(ctx, ledger, key, dev)
        if not ok:
            continue
        item = ctx.desired.items[key]
        buffer = f"the next-{e.entry.keep_next} buffer" if e.entry.show is not None else "the watchlist"
        reason = f"{subject}: {item.name} was watched on {dev} and is outside {buffer}"
        reason += (f"; custody floors stay on {names(relies)} (confirmed live)" if relies
                   else "; no custody rule needs this copy")
        ledger.act(dev, ActionKind.remove_data, key, reason, rule=subject, size=t.size,
                   relies_on=relies)
        ledger.plan_removal(dev, key)
