"""``tva fleet duties|custody|reaper|peers ITEM|acquisitions``: the planner's reasoning, one view
at a time.

Each view comes from the same pass that produces the plan, so it never disagrees with
``tva plan``. Inputs and ``now`` are chosen exactly as for ``tva plan`` (``controller.cli.inputs``).
Exit 0, or 1 on error. Every view has ``--json``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from rich.table import Table

from controller.cli.inputs import Inputs, StatusSource, load_inputs
from controller.cli.output import emit_json, err, esc, out, styled
from controller.errors import PermanentError
from schemas.journal import JournalEntry

__all__ = ["VIEWS", "run"]

VIEWS = ("duties", "custody", "reaper", "peers", "acquisitions")


def run(
    view: str,
    path: str = ".",
    *,
    item: str | None = None,
    node: str | None = None,
    status_dir: str | None = None,
    as_json: bool = False,
    now: str | None = None,
    fleet_ref: bool = False,
    transport: StatusSource | None = None,
    journal: Sequence[JournalEntry] = (),
    state_dir: str | None = None,
) -> int:
    """``item``: custody (optional filter) and peers (required). ``node``: peers only, the node
    asking (gates that depend on the asker apply). ``state_dir``: acquisitions only, the
    acquirer's state dir (its journal and the last result of each search), when here."""
    if view not in VIEWS:
        raise PermanentError(f"unknown view {view!r}; choose one of {', '.join(VIEWS)}")
    if view == "peers" and item is None:
        raise PermanentError("tva fleet peers needs an ITEM (info-hash or name)")
    inputs = load_inputs(path, status_dir=status_dir, transport=transport,
                         fleet_ref=fleet_ref, now=now)
    if node is not None and node not in inputs.desired.devices:
        raise PermanentError(f"{node!r} is not a device of the fleet")
    results: dict[str, Any] = {}
    if view == "acquisitions" and state_dir is not None:
        journal, results = _acquirer_state(inputs, state_dir, journal)
    data = _VIEW[view](inputs, item, node, journal)
    if view == "acquisitions":
        data["last_results"] = results
    for note in inputs.notes:
        err.print(f"note: {note}", markup=False, style="dim")
    if as_json:
        emit_json(data)
    else:
        _RENDER[view](data)
    return 0


def _duties(inputs: Inputs, item: str | None, node: str | None,
            journal: Sequence[JournalEntry]) -> dict[str, Any]:
    from controller.planner import build_fleet_view, duty_view

    duties, warnings = duty_view(inputs.desired, inputs.statuses, inputs.now)
    view = build_fleet_view(inputs.desired, inputs.statuses, inputs.now)
    return {
        "now": inputs.now.isoformat(),
        "duties": [d.model_dump(mode="json") for d in duties],
        "warnings": [w.model_dump(mode="json") for w in warnings],
        "nodes": {n: v.freshness.value for n, v in view.nodes.items()},
    }


def _custody(inputs: Inputs, item: str | None, node: str | None,
             journal: Sequence[JournalEntry]) -> dict[str, Any]:
    from controller.planner import custody_view

    rows = custody_view(inputs.desired, inputs.statuses, inputs.now, journal, item=item)
    return {"now": inputs.now.isoformat(), "rows": [asdict(r) for r in rows]}


def _reaper(inputs: Inputs, item: str | None, node: str | None,
            journal: Sequence[JournalEntry]) -> dict[str, Any]:
    from controller.planner import reaper_view

    rows = reaper_view(inputs.desired, inputs.statuses, inputs.now, journal)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.health] = counts.get(r.health, 0) + 1
    return {"now": inputs.now.isoformat(), "counts": counts, "rows": [asdict(r) for r in rows]}


def _peers(inputs: Inputs, item: str | None, node: str | None,
           journal: Sequence[JournalEntry]) -> dict[str, Any]:
    from controller.planner import peers_view

    assert item is not None
    it, rows, gates = peers_view(inputs.desired, inputs.statuses, inputs.now, item, requester=node)
    return {
        "now": inputs.now.isoformat(),
        "item": {"key": it.key, "name": it.name, "provenance": it.provenance.value,
                 "source": it.source, "f2f_only": it.f2f_only},
        "for": node,
        "gates": gates,
        "peers": [asdict(r) for r in rows],
    }


def _acquirer_state(inputs: Inputs, state_dir: str, journal: Sequence[JournalEntry]) -> tuple[
        Sequence[JournalEntry], dict[str, Any]]:
    """The journals and search results kept in ``state_dir`` (the acquirer's, when this is it)."""
    from controller.act.acquire import read_results
    from controller.journal import Journal

    entries = list(journal)
    results: dict[str, Any] = {}
    for name in sorted(inputs.desired.devices):
        jpath = os.path.join(state_dir, f"{name}.journal.jsonl")
        if not journal and os.path.exists(jpath):
            entries += Journal(jpath).entries()
        results.update(read_results(os.path.join(state_dir, f"{name}.acquisitions.json")))
    return entries, results


def _acquisitions(inputs: Inputs, item: str | None, node: str | None,
                  journal: Sequence[JournalEntry]) -> dict[str, Any]:
    from controller.planner.acquire import acquisition_rows
    from controller.planner.core import run_pass

    ctx, ledger, entries = run_pass(inputs.desired, inputs.statuses, inputs.now, journal)
    rows = acquisition_rows(ctx, ledger, entries)
    proposed = []
    for name in sorted(inputs.desired.collections):
        coll = inputs.desired.collections[name]
        if coll.acquired is None:
            continue
        rec = coll.acquired
        for it in coll.items:
            proposed.append({
                "collection": name, "item": it.name, "infohash": it.key,
                "part_of": coll.part_of, "release": rec.release, "source": rec.source,
                "watchlist": rec.watchlist, "entry": rec.entry, "reason": rec.reason,
                "supersedes": rec.supersedes, "searched_at": rec.searched_at.isoformat(),
            })
    return {"now": inputs.now.isoformat(), "acquirer": ctx.acquirer,
            "entries": [asdict(r) for r in rows], "proposed": proposed}


_VIEW = {"duties": _duties, "custody": _custody, "reaper": _reaper, "peers": _peers,
         "acquisitions": _acquisitions}


def _show_duties(data: dict[str, Any]) -> None:
    t = Table(title="Duties", title_justify="left")
    for col in ("duty", "nodes", "why"):
        t.add_column(col)
    for d in data["duties"]:
        t.add_row(d["duty"], ", ".join(d["nodes"]) or "-", d["reason"])
    out.print(t)
    out.print("Nodes: " + ", ".join(f"{n} ({f})" for n, f in data["nodes"].items()))
    for w in data["warnings"]:
        out.print(f"[yellow]{esc(w['code'])}[/yellow]: ", end="", markup=True)
        out.print(w["message"], markup=False)


def _show_custody(data: dict[str, Any]) -> None:
    t = Table(title="Custody", title_justify="left")
    for col in ("rule", "item", "copies", "state", "counted", "held, not counted", "order", "next"):
        t.add_column(col)
    style = {"ok": "green", "waiting": "yellow", "below-floor": "red", "over-ceiling": "magenta"}
    for r in data["rows"]:
        held = [f"{n} (pending)" for n in r["pending"]] + [f"{n} (stale)" for n in r["away"]] + [
            f"{n} (unknown)" for n in r["unknown"]] + [f"{n} (gone)" for n in r["gone"]] + [
            f"{n} (broken)" for n in r["broken"]]
        bounds = f"{len(r['counted'])}/{r['min']}" + (f"..{r['max']}" if r["max"] else "")
        st = style.get(r["state"], "white")
        t.add_row(r["rule"], r["name"], bounds, styled(r["state"], st),
                  ", ".join(r["counted"]) or "-", ", ".join(held) or "-",
                  " > ".join(r["order"]), "\n".join(r["actions"]) or "-")
    out.print(t)


def _show_reaper(data: dict[str, Any]) -> None:
    rows = [r for r in data["rows"] if r["health"] != "healthy"]
    counts = ", ".join(f"{n} {h}" for h, n in sorted(data["counts"].items())) or "no torrents"
    out.print(f"Torrents on live nodes: {counts}")
    if not rows:
        return
    t = Table(title="Unhealthy torrents", title_justify="left")
    for col in ("node", "torrent", "health", "strikes", "why", "next"):
        t.add_column(col)
    for r in rows:
        t.add_row(r["node"], r["name"], r["health"], str(r["strikes"]), r["detail"],
                  "\n".join(r["actions"]) or "-")
    out.print(t)


def _show_peers(data: dict[str, Any]) -> None:
    it = data["item"]
    out.print(f"[bold]{esc(it['name'])}[/bold] ({esc(it['key'])}): provenance {it['provenance']}"
              + (", f2f_only" if it["f2f_only"] else ""), markup=True)
    for g in data["gates"]:
        out.print(f"  gate: {g}", markup=False)
    if not data["peers"]:
        out.print("No fleet holder can serve it" + (f" to {data['for']}" if data["for"] else "") + ".")
        return
    t = Table(title="Fleet holders", title_justify="left")
    for col in ("node", "peer address", "state", "done", "status"):
        t.add_column(col)
    for p in data["peers"]:
        t.add_row(p["node"], p["peer"] or "-", p["state"], f"{p['percent_done']:.0%}",
                  p["freshness"])
    out.print(t)


def _show_acquisitions(data: dict[str, Any]) -> None:
    out.print(f"Acquirer: {data['acquirer'] or '(none)'}", markup=False)
    t = Table(title="Watchlist entries", title_justify="left")
    for col in ("watchlist", "entry", "device", "state", "why"):
        t.add_column(col)
    style = {"satisfied": "green", "search-planned": "cyan", "waiting": "yellow",
             "no-source": "magenta", "no-acquirer": "red"}
    for r in data["entries"]:
        t.add_row(r["watchlist"], r["entry"], r["device"],
                  styled(r["state"], style.get(r["state"], "white")), r["why"])
    out.print(t)
    if data["proposed"]:
        p = Table(title="Acquired items (committed by the acquirer)", title_justify="left")
        for col in ("item", "release", "for", "why chosen"):
            p.add_column(col)
        for r in data["proposed"]:
            what = r["entry"] + (f" (supersedes {r['supersedes'][:12]})" if r["supersedes"] else "")
            p.add_row(r["item"], r["release"], what, r["reason"])
        out.print(p)
    results = data.get("last_results") or {}
    if results:
        s = Table(title="Last search per entry (this node's state dir)", title_justify="left")
        for col in ("target", "at", "outcome", "chosen", "refused"):
            s.add_column(col)
        for target in sorted(results):
            r = results[target]
            chosen = r.get("chosen") or {}
            refused = [f"{x.get('title')}: {x.get('why')}" for x in r.get("refused", [])[:5]]
            s.add_row(target, str(r.get("at", "")), str(r.get("outcome", "")) + (
                f" ({r['error']})" if r.get("error") else ""),
                f"{chosen.get('title')}: {chosen.get('why')}" if chosen else "-",
                "\n".join(refused) or "-")
        out.print(s)


_RENDER = {"duties": _show_duties, "custody": _show_custody, "reaper": _show_reaper,
           "peers": _show_peers, "acquisitions": _show_acquisitions}
