"""``tva demo``: the main job of the quick start.

Part one validates the reference fleet in fleet-state/ and shows what it declares; part two
(``controller/lab/demo.py``) runs three real nodes moving real data.
"""

from __future__ import annotations

from rich.table import Table

from controller.cli.output import esc, out, styled
from controller.desired import load_fleet
from schemas.desired import DesiredState
from schemas.types import format_size

__all__ = ["custody_table", "devices_table", "run", "watchlist_table"]


def run(path: str, *, lab: bool = True) -> int:
    out.rule(styled(f"Part 1: the fleet repo {path}", "bold"))
    desired = load_fleet(path).desired
    out.print(f"[green]valid[/green]: fleet [bold]{esc(desired.fleet.name)}[/bold]", markup=True)
    out.print(devices_table(desired))
    out.print(custody_table(desired))
    out.print(watchlist_table(desired))
    if not lab:
        return 0
    from controller.lab.demo import run_lab_demo

    return run_lab_demo()


def devices_table(desired: DesiredState) -> Table:
    t = Table(title="Devices", title_justify="left")
    for col in ("name", "class", "services", "storage", "always on", "trust", "vpn", "labels"):
        t.add_column(col)
    for dev in desired.devices.values():
        t.add_row(
            dev.name,
            dev.device_class.value,
            ", ".join(s.value for s in dev.services),
            format_size(dev.capacity) if dev.storage else "-",
            "yes" if dev.always_on else "no",
            dev.trust.value,
            dev.vpn or "-",
            ", ".join(dev.labels),
        )
    return t


def custody_table(desired: DesiredState) -> Table:
    t = Table(title="Custody rules", title_justify="left")
    for col in ("rule", "selects", "items", "min", "max", "prune", "placement"):
        t.add_column(col)
    for rule in desired.custody.values():
        sel = rule.select
        selects = "; ".join(
            f"{k}: {', '.join(v)}"
            for k, v in (
                ("collections", sel.collections),
                ("labels", sel.labels),
                ("watchlists", sel.watchlists),
                ("infohashes", [h[:8] for h in sel.infohashes]),
            )
            if v
        )
        n = sum(
            1
            for it in desired.items.values()
            if it.collection in sel.collections
            or set(it.labels) & set(sel.labels)
            or it.key in sel.infohashes
        )
        p = rule.placement
        placement = "; ".join(
            f"{k}: {', '.join(str(x) for x in v)}"
            for k, v in (
                ("classes", [c.value for c in p.classes]),
                ("labels", p.labels),
                ("only", p.devices),
                ("not", p.exclude_devices),
            )
            if v
        )
        prune = rule.prune if rule.prune is not None else desired.fleet.policy.custody.prune
        t.add_row(
            rule.name, selects, str(n), str(rule.min), str(rule.max or "-"),
            "yes" if prune else "no", placement or "anywhere",
        )
    return t


def watchlist_table(desired: DesiredState) -> Table:
    t = Table(title="Watchlists", title_justify="left")
    for col in ("watchlist", "device", "entry", "keep next", "may search"):
        t.add_column(col)
    for wl in desired.watchlists.values():
        for e in wl.entries:
            what = f"show: {e.show}" if e.show else f"film: {e.film}" if e.film else "magnet"
            t.add_row(
                wl.name, wl.device, what, str(e.keep_next) if e.show else "-",
                ", ".join(s.value for s in wl.search),
            )
    return t
