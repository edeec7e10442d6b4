"""Acquisition: a watchlist entry the fleet lacks becomes one ``research`` action on the
acquirer (docs/acquisition.md).

- A *film* entry lacks its film when no item of that name exists (in its collection, if it
  names one). A *show* entry with a collection lacks its next episode when fewer than
  ``keep_next`` episodes are unwatched: the one after the highest episode number the collection
  holds (episode 1 of an empty collection) is searched, one per entry per pass. A magnet entry
  lacks nothing: the magnet is the item.
- Only sources that allow search (``Source.search``; private and friend sources are closed
  unless they say otherwise, and private ones are never searched) with an indexer, whose
  provenance the watchlist lists in ``search``, are searched.
- At most ``MAX_SEARCHES_PER_PASS`` searches per pass, in watchlist then entry order.
- No duplicate: an entry that is satisfied is not searched; one the acquirer proposed (a
  successful search, committed) is not searched again for ``research_every`` while the commit
  reaches every node; a failed search backs off per entry, ``policy.backoff`` doubling with
  each failure in a row up to ``research_every``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from controller.planner.context import Context
from controller.planner.ledger import Ledger
from controller.planner.prefetch import Entry
from controller.planner.ranking import normalise
from controller.planner.text import age, names
from schemas.desired import Provenance, Source, Watchlist
from schemas.plan import ActionKind, Severity

__all__ = [
    "MAX_SEARCHES_PER_PASS",
    "EntryRow",
    "Search",
    "acquisition_rows",
    "backoff",
    "entry_target",
    "plan_acquisitions",
    "searchable_sources",
    "wanted",
]

_SLUG = re.compile(r"[^a-z0-9]+")


def _slug(text: str) -> str:
    return _SLUG.sub("-", normalise(text)).strip("-")[:80] or "x"


@dataclass(frozen=True)
class Search:
    """What an entry lacks, as a Torznab query."""

    mode: str
    query: str
    season: int | None
    episode: int | None
    what: str


def entry_target(watchlist: str, search: Search) -> str:
    """The stable target of an entry's search: ``watch/<watchlist>/<what>``."""
    return f"watch/{watchlist}/{_slug(search.what)}"


def searchable_sources(ctx: Context, wl: Watchlist) -> list[Source]:
    """The sources a watchlist's searches may query, by the gates (sorted by name)."""
    out = []
    for name in sorted(ctx.desired.sources):
        src = ctx.desired.sources[name]
        if src.indexer is None or not src.effective_search:
            continue
        if src.provenance is Provenance.private or src.provenance not in wl.search:
            continue
        out.append(src)
    return out


def wanted(ctx: Context, e: Entry) -> Search | None:
    """What ``e`` lacks now, or None when it lacks nothing (or cannot say what)."""
    entry = e.entry
    if entry.film is not None:
        if e.members:
            return None
        return Search("movie", entry.query or entry.film, None, None, f"film {entry.film}")
    if entry.show is not None and entry.collection is not None:
        if len(e.buffer) >= entry.keep_next:
            return None
        episodes = [ctx.desired.items[k].episode for k in e.members]
        numbers = [n for n in episodes if n is not None]
        nxt = max(numbers, default=0) + 1
        season = entry.season if entry.season is not None else 1
        return Search("tvsearch", entry.query or entry.show, season, nxt,
                      f"{entry.show} s{season:02d}e{nxt:02d}")
    return None


def backoff(first: timedelta, cap: timedelta, failures: int) -> timedelta:
    """The wait after ``failures`` failed searches in a row (none after a success)."""
    if failures <= 0:
        return cap
    wait: timedelta = first * (2 ** min(failures - 1, 20))
    return min(wait, cap)


MAX_SEARCHES_PER_PASS = 5
"""At most this many watchlist searches per pass (the rest wait for the next): a watchlist of a
hundred films does not send a hundred searches to the indexers at once."""


def plan_acquisitions(ctx: Context, ledger: Ledger, entries: list[Entry]) -> None:
    acq = ctx.acquirer
    every = ctx.desired.fleet.policy.reaper.research_every
    planned = 0
    for e in entries:
        search = wanted(ctx, e)
        if search is None:
            continue
        wl = e.watchlist
        subject = f"watchlist/{wl.name}"
        sources = searchable_sources(ctx, wl)
        if not sources:
            ledger.warn("acquisition-no-source",
                        f"{subject}: {search.what} is not in the fleet, and no source may be "
                        f"searched for it (search: {', '.join(p.value for p in wl.search)}; a "
                        "source needs an indexer and search allowed)", subject=subject,
                        severity=Severity.info)
            continue
        if acq is None or not ctx.nodes[acq].actionable:
            ledger.warn("acquisition-no-acquirer",
                        f"{subject}: {search.what} is not in the fleet; no live acquirer to "
                        "search for it", subject=subject)
            continue
        target = entry_target(wl.name, search)
        last = ctx.journal.last_tried(acq, ActionKind.research, target)
        failures = ctx.journal.failures(acq, ActionKind.research, target)
        if last is not None:
            wait = backoff(wl.policy.backoff, max(every, wl.policy.backoff), failures)
            if ctx.now - last < wait:
                state = (f"{failures} failed search{'es' if failures != 1 else ''} in a row"
                         if failures else "proposed, waiting for the commit to arrive")
                ledger.warn("acquisition-waiting",
                            f"{subject}: {search.what}: searched {age(ctx.now - last)} ago "
                            f"({state}); next search in {age(wait - (ctx.now - last))}",
                            node=acq, subject=subject, severity=Severity.info)
                continue
        if planned >= MAX_SEARCHES_PER_PASS:
            ledger.tally("acquisition-deferred", f"{{n}} watchlist search request{{s}} wait for a later "
                         f"pass (at most {MAX_SEARCHES_PER_PASS} per pass): {{items}}",
                         search.what, node=acq, severity=Severity.info)
            continue
        planned += 1
        src_names = [s.name for s in sources]
        ledger.act(acq, ActionKind.research, target,
                   f"{subject}: {search.what} is not in the fleet; search {names(src_names)} "
                   f"for {e.device}",
                   params={"watchlist": wl.name, "mode": search.mode, "query": search.query,
                           "season": search.season, "episode": search.episode,
                           "what": search.what, "sources": src_names, "for": e.device,
                           "collection": e.entry.collection, "name": e.entry.film},
                   rule=subject)


@dataclass(frozen=True)
class EntryRow:
    """One watchlist entry, as ``tva fleet acquisitions`` shows it."""

    watchlist: str
    entry: str
    device: str
    state: str
    """satisfied, search-planned, waiting, no-source, no-acquirer, or not-searchable."""
    target: str | None
    sources: list[str]
    items: list[str]
    why: str


def acquisition_rows(ctx: Context, ledger: Ledger, entries: list[Entry]) -> list[EntryRow]:
    """Every watchlist entry, what it lacks and what the pass decided for it."""
    rows: list[EntryRow] = []
    for e in entries:
        wl = e.watchlist
        search = wanted(ctx, e)
        names_of = [ctx.desired.items[k].name for k in e.members if k in ctx.desired.items]
        sources = [s.name for s in searchable_sources(ctx, wl)]
        if search is None:
            state = "satisfied" if e.members or e.entry.magnet else "not-searchable"
            why = (f"held by {len(e.members)} item(s)" if e.members
                   else "a show needs a collection to be searched")
            rows.append(EntryRow(wl.name, e.what, e.device, state, None, sources, names_of, why))
            continue
        target = entry_target(wl.name, search)
        action = next((a for a in ledger.actions.values()
                       if a.kind is ActionKind.research and a.target == target), None)
        subject = f"watchlist/{wl.name}"
        notes = [w for w in ledger.warnings.values()
                 if w.subject == subject and search.what in w.message]
        if action is not None:
            state, why = "search-planned", f"{action.node}: {action.reason}"
        elif notes:
            code = notes[0].code.removeprefix("acquisition-")
            state, why = code, notes[0].message
        else:
            state, why = "waiting", "no search this pass"
        rows.append(EntryRow(wl.name, search.what, e.device, state, target, sources, names_of, why))
    return rows
