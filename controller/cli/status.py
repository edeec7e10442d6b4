"""``tva status``: observe this node now, show the fleet from published statuses, or publish.

- ``--node NAME``: observe the node (its Transmission, host and player) and print its NodeStatus.
- ``--node NAME --publish``: observe and publish it through the fleet repo's status ref.
- ``--fleet``: every node's latest status with its freshness and Transmission version, from the
  status ref (the fleet repo checkout at PATH and its remote) or from ``--status DIR``; then the
  fleet's open conditions (what the notifier tells the owner) and who the notifier is.
"""

from __future__ import annotations

from datetime import UTC, datetime

from rich.table import Table

from controller.cli.inputs import choose_now, read_statuses
from controller.cli.output import emit_json, err, esc, format_age, out
from controller.desired import load_fleet
from controller.errors import PermanentError
from controller.observe.node import observe_node, transmission_observer
from controller.planner import FleetView, build_fleet_view
from controller.planner.alerts import fleet_facts
from controller.status import open_transport
from schemas.desired import DesiredState
from schemas.observed import NodeStatus, TransmissionStatus
from schemas.types import format_size

__all__ = ["run"]


def run(
    path: str,
    *,
    node: str | None,
    fleet: bool,
    publish: bool,
    status_dir: str | None,
    player_socket: str | None,
    as_json: bool,
) -> int:
    desired = load_fleet(path).desired
    if fleet:
        return _fleet(path, desired, status_dir, as_json)
    if node is None:
        raise PermanentError("give --node NAME (observe a node) or --fleet (the fleet view)")
    if node not in desired.devices:
        raise PermanentError(f"unknown node {node!r}; devices: {', '.join(desired.devices)}")
    observer = transmission_observer(desired.devices[node])
    status = observe_node(
        desired, node, now=datetime.now(UTC), observer=observer, player_socket=player_socket
    ).status
    if publish:
        transport = open_transport(status_dir=status_dir, checkout=path,
                                   policy=desired.fleet.status, node=node)
        assert transport is not None
        try:
            transport.publish(status)
        finally:
            transport.close()
        if not as_json:
            out.print(f"published the status of {node}")
    if as_json:
        emit_json(status.model_dump(mode="json"))
    else:
        _show_node(status)
    return 0


def _show_node(st: NodeStatus) -> None:
    tr = st.transmission
    out.print(f"[bold]{esc(st.node)}[/bold] observed {st.observed_at:%Y-%m-%d %H:%M:%S}Z",
              markup=True)
    if not tr.reachable:
        out.print(f"[red]Transmission unreachable[/red]: {esc(tr.error or '')}", markup=True)
    else:
        out.print(f"Transmission {tr.version} (RPC {tr.rpc_version}): {len(tr.torrents)} torrents")
        t = Table(title_justify="left")
        for col in ("infohash", "name", "size", "done", "state", "error"):
            t.add_column(col)
        for tor in tr.torrents:
            t.add_row(tor.infohash[:12], tor.name, format_size(tor.size),
                      f"{tor.percent_done:.0%}", tor.state.value, tor.error_string or "")
        if tr.torrents:
            out.print(t)
    for s in st.storage:
        where = f"{format_size(s.free)} free of {format_size(s.total)}" if s.reachable else "unreachable"
        out.print(f"storage {s.path}: {where}", markup=False)
    for v in st.vpn:
        state = "up" if v.up else "down"
        why = f" ({v.detail})" if v.detail and v.detail != "up" else ""
        bound = " (Transmission not bound to it)" if v.up and v.bound is False else ""
        out.print(f"vpn {v.profile} ({v.interface}): {state}{why}{bound}", markup=False)
    if st.fabric is not None:
        _show_fabric(st)
    if st.player is not None:
        p = st.player
        what = p.path or "idle" if p.reachable else f"unreachable: {p.error}"
        out.print(f"player: {what}", markup=False)


def _show_fabric(st: NodeStatus) -> None:
    fab = st.fabric
    assert fab is not None
    if not fab.up:
        out.print(f"fabric {fab.interface}: down: {fab.error}", markup=False)
        return
    out.print(f"fabric {fab.interface} {fab.address or ''}: reaches "
              f"{', '.join(fab.reachable) or 'nobody'}", markup=False)
    t = Table(title_justify="left")
    for col in ("peer", "endpoint", "handshake", "received", "sent", "allowed ips"):
        t.add_column(col)
    for p in fab.peers:
        age = (format_age((st.observed_at - p.latest_handshake).total_seconds()) + " ago"
               if p.latest_handshake is not None else "never")
        t.add_row(p.device or p.public_key[:12], p.endpoint or "-",
                  age if p.reachable or p.latest_handshake is None else f"{age} (stale)",
                  format_size(p.rx_bytes), format_size(p.tx_bytes), ", ".join(p.allowed_ips))
    if fab.peers:
        out.print(t)


def _fabric(st: NodeStatus, desired: DesiredState) -> str:
    """Members this node reaches over the fabric, of those it could ("-": not a member)."""
    if st.fabric is None or desired.fabric is None:
        return "-"
    if not st.fabric.up:
        return "down"
    return f"{len(st.fabric.reachable)}/{max(0, len(desired.fabric.members) - 1)}"


def _fleet(path: str, desired: DesiredState, status_dir: str | None, as_json: bool) -> int:
    statuses, notes = read_statuses(path, desired, status_dir=status_dir,
                                    fleet_ref=status_dir is None)
    now, note = choose_now(None, statuses)
    view = build_fleet_view(desired, statuses, now)
    facts = fleet_facts(desired, statuses, now)
    skipped = [n.removeprefix("status skipped: ") for n in notes]
    if as_json:
        emit_json({
            "now": now.isoformat(),
            "nodes": [_node_json(view, name) for name in view.nodes],
            "conditions": [a.model_dump(mode="json") for a in facts.alerts],
            "notifier": facts.notifier,
            "skipped": skipped,
        })
        return 0
    if note:
        err.print(f"note: {note}", markup=False, style="dim")
    t = Table(title="Fleet", title_justify="left")
    columns = ["node", "freshness", "age", "trust", "transmission", "torrents", "complete", "free"]
    if desired.fabric is not None:
        columns.append("fabric")
    for col in columns:
        t.add_column(col)
    for name, nv in view.nodes.items():
        st = nv.status
        if st is None:
            t.add_row(name, nv.freshness.value, "-", nv.trust.value, "-", "-", "-", "-",
                      *(["-"] if desired.fabric is not None else []))
            continue
        tr = st.transmission
        free = st.free_bytes()
        t.add_row(
            name, nv.freshness.value, format_age(nv.age.total_seconds()) if nv.age is not None else "-",
            nv.trust.value, _transmission(tr),
            str(len(tr.torrents)) if tr.reachable else "?",
            str(sum(1 for x in tr.torrents if x.complete)) if tr.reachable else "?",
            format_size(free) if free is not None else "?",
            *([_fabric(st, desired)] if desired.fabric is not None else []),
        )
    out.print(t)
    if facts.alerts:
        c = Table(title="Open conditions", title_justify="left")
        for col in ("event", "subject", "message"):
            c.add_column(col)
        for a in facts.alerts:
            c.add_row(a.kind.value, a.subject, a.message)
        out.print(c)
    else:
        out.print("no open conditions", markup=False)
    if desired.fleet.notify.targets:
        who = facts.notifier or "nobody (no sender is fresh)"
        out.print(f"notifier: {who} ({len(desired.fleet.notify.targets)} targets)", markup=False)
    for s in skipped:
        err.print(f"skipped a status: {s}", markup=False)
    return 0


def _transmission(tr: TransmissionStatus) -> str:
    """Its version and RPC version (each node's may differ), or "unreachable"."""
    if not tr.reachable:
        return "unreachable"
    if tr.version is None:
        return "reachable"
    return f"{tr.version} (RPC {tr.rpc_version})"


def _node_json(view: FleetView, name: str) -> dict[str, object]:
    nv = view.nodes[name]
    return {
        "node": name,
        "freshness": nv.freshness.value,
        "age_seconds": nv.age.total_seconds() if nv.age is not None else None,
        "trust": nv.trust.value,
        "status": nv.status.model_dump(mode="json") if nv.status else None,
    }
