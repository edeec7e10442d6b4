"""The quick-start demo: the reference fleet, then three real nodes moving real data.

Part one validates ``fleet-state/`` and shows what it declares. Part two brings up a lab of three
nodes (``nas``, ``laptop``, ``seedbox``) in a private network namespace and narrates what tva does:
the plan, the re-pin of items only one node holds, a node going away past the grace period and
the baton rolling on, the node coming back without thrash, a commit raising a floor, and the
final fleet status. Where the kernel refuses network namespaces, it says so and runs the
single-node part only.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

from controller.daemon.node import PassOutcome
from controller.lab import scenario as story
from controller.lab.fleet import Payload, collection_yaml, rule_yaml
from controller.lab.lab import Lab, wait
from controller.lab.netns import LabFailed, NamespaceRefused, available, run_isolated
from schemas.types import format_size

__all__ = ["console", "run_lab_demo", "run_single_node"]

console = Console(highlight=False)


def run_lab_demo() -> int:
    why = available()
    if why is not None:
        console.print(f"[yellow]The lab needs a private network namespace and this machine refuses one:[/yellow] {why}")
        console.print("Transmission will not exchange data over 127.0.0.1, so the multi-node part is "
                      "skipped; running the single-node part instead.")
        return run_single_node()
    with tempfile.TemporaryDirectory(prefix="tva-lab-") as root:
        try:
            run_isolated(_story, Lab.addresses(3), root, timeout=600)
        except (LabFailed, TimeoutError) as e:
            console.print(f"[red]The lab failed:[/red] {e}", markup=True)
            return 1
        except NamespaceRefused as e:
            console.print(f"[yellow]{e}[/yellow]; running the single-node part instead.")
            return run_single_node()
    return 0


def _attach(lab: Lab, listener: Callable[[PassOutcome], None]) -> None:
    """Attach ``listener`` to every running controller that lacks it (e.g. one restarted)."""
    for node in lab.nodes.values():
        if node.daemon is not None and listener not in node.daemon.listeners:
            node.daemon.listeners.append(listener)


def _printer(names: dict[str, str]) -> Callable[[PassOutcome], None]:
    """A listener that prints every action a controller applied, with its reason."""

    def listener(outcome: PassOutcome) -> None:
        if outcome.report is None:
            return
        for done in outcome.report.applied:
            if done.result != "done" and done.outcome.value == "ok":
                continue
            a = done.action
            what = names.get(a.target, a.target[:8])
            colour = "red" if a.destructive else "green"
            console.print(f"  [bold]{a.node}[/bold] [{colour}]{a.kind.value}[/{colour}] {what}: ", end="")
            console.print(a.reason + (f" [{done.outcome.value}: {done.error}]" if done.error else ""),
                          markup=False)
    return listener


def _transfers(lab: Lab, items: list[Payload], copies: int, title: str, timeout: float = 150) -> float:
    """Show progress until every item has ``copies`` complete copies; the seconds it took."""
    start = time.monotonic()
    with Progress(TextColumn("  {task.description}"), BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), console=console, transient=False) as progress:
        tasks = {p.infohash: progress.add_task(f"{p.name} -> {copies} copies", total=p.size * copies)
                 for p in items}
        deadline = time.monotonic() + timeout
        while True:
            done = True
            for p in items:
                have = 0.0
                for name in lab.nodes:
                    pct = lab.percent(name, p.infohash) if lab.nodes[name].transmission.running else None
                    have += pct or 0.0
                progress.update(tasks[p.infohash], completed=min(have, copies) * p.size)
                done = done and len(lab.holders(p.infohash)) >= copies
            if done:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{title}: not done after {timeout:.0f}s\n{lab.describe()}")
            time.sleep(0.5)
    return time.monotonic() - start


def _fleet_table(lab: Lab, items: list[Payload]) -> Table:
    t = Table(title="Fleet status", title_justify="left")
    t.add_column("item")
    for name, node in lab.nodes.items():
        t.add_column(f"{name}\n{node.ip}")
    for p in items:
        row = [f"{p.name} ({format_size(p.size)})"]
        for name in lab.nodes:
            pct = lab.percent(name, p.infohash) if lab.nodes[name].transmission.running else None
            row.append("-" if pct is None else ("[green]complete[/green]" if pct == 1.0 else f"{pct:.0%}"))
        t.add_row(*row)
    return t


def _story(root: str) -> None:
    console.rule("[bold]Part 2: three real nodes")
    console.print("Starting three nodes in a private network: a transmission-daemon and a tva "
                  "controller each, all following one bare git repo.")
    s = story.set_up(Path(root))
    lab = s.lab
    assert s.private is not None
    items = [*s.films, s.private]
    names = {p.infohash: p.name for p in items}
    nodes = Table(title="The lab", title_justify="left")
    for col in ("node", "address", "class", "duty"):
        nodes.add_column(col)
    for n in lab.nodes.values():
        nodes.add_row(n.name, n.ip, n.spec.cls, "public_swarm_face" if n.name == "seedbox" else "custodian")
    console.print(nodes)
    extra = lab.repo.payload("film-3.bin", 3 * story.MiB)
    lab.seed("laptop", extra)
    console.print("nas holds the only copy of every item: two public films and a private home video "
                  "(f2f_only: never on the public face). laptop holds a third film the fleet repo "
                  "does not know yet.")
    narrator = _printer(names)
    _attach(lab, narrator)
    try:
        console.rule("Commit: custody floors of 2 copies")
        story.raise_floors(s, films=2, videos=2)
        seconds = _transfers(lab, items, 2, "first re-pins")
        console.print(f"Floors met in {seconds:.0f}s; every piece verified by Transmission.")
        console.print(_fleet_table(lab, items))

        console.rule("nas goes away")
        lab.stop("nas")
        observer = "laptop"
        console.print(f"Its status ages: stale after {lab.policy['stale_after']} (its copies stop "
                      f"counting, nothing moves), gone after the {lab.policy['grace']} grace period "
                      "(the baton rolls).")
        story.wait_gone(s, "nas", observer=observer)
        gone_at = time.monotonic()
        console.print(f"{observer} sees nas [bold]gone[/bold].")
        _transfers(lab, s.films, 2, "baton")
        console.print(f"Films back at 2 copies {time.monotonic() - gone_at:.0f}s after nas was seen gone.")
        watcher = lab.nodes[observer].daemon
        last = watcher.last if watcher is not None else None
        for w in last.plan.warnings if last else []:
            if w.code in ("floor-unreachable", "f2f-gate"):
                console.print(f"  [yellow]warning[/yellow] {w.code}: ", end="")
                console.print(w.message, markup=False)
        console.print(_fleet_table(lab, items))

        console.rule("nas comes back")
        lab.start("nas")
        _attach(lab, narrator)
        wait(lambda: all(n.daemon and n.daemon.passes >= 4 for n in lab.nodes.values()), 60, "passes")
        console.print("nas is fresh again. Prune is off, so the extra copies stay: nothing is removed, "
                      "nothing moves back.")

        console.rule("Commit: film-3 joins the films collection, films floor 2 -> 3")
        names[extra.infohash] = extra.name
        films = [*s.films, extra]
        lab.repo.commit({
            "items/films.yaml": collection_yaml("films", films, provenance="public"),
            "custody/films.yaml": rule_yaml("films", "films", 3),
        }, "films: add film-3; keep 3 copies")
        seconds = _transfers(lab, films, 3, "floor raise")
        console.print(f"All films at 3 copies in {seconds:.0f}s (film-1 and film-2 already had 3: nas's "
                      "copies count again now that it is back).")
        console.rule("Final state")
        console.print(_fleet_table(lab, [*films, s.private]))
        views = Table(title="What each controller sees", title_justify="left")
        for col in ("node", *lab.nodes):
            views.add_column(col)
        for name, node in lab.nodes.items():
            last = node.daemon.last if node.daemon else None
            views.add_row(name, *[last.view.nodes[o].freshness.value if last else "-" for o in lab.nodes])
        console.print(views)
    finally:
        lab.stop()


def run_single_node() -> int:
    """Without namespaces: one node on loopback; a custody commit makes tva add the torrent."""
    from controller.lab.lab import NodeSpec

    with tempfile.TemporaryDirectory(prefix="tva-solo-") as root:
        lab = Lab(Path(root), [NodeSpec("nas", "server", ["home"])], base_ip="127.0.0.")
        with lab:
            film = lab.repo.payload("film-1.bin", 2 * story.MiB)
            files = lab.base_files()
            files["items/films.yaml"] = collection_yaml("films", [film])
            lab.repo.commit(files, "a fleet of one")
            lab.start()
            _attach(lab, _printer({film.infohash: film.name}))
            lab.repo.commit({"custody/films.yaml": rule_yaml("films", "films", 1)}, "keep one copy")
            wait(lambda: film.infohash in lab.nodes["nas"].torrents(), 60, "the torrent to appear")
            console.print("The commit reached the controller, which added the torrent to Transmission.")
    return 0
