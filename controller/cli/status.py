"""``tva status``: observe this node now, show the fleet from published statuses, or publish.

- ``--node NAME``: observe the node (its Transmission, host and player) and print its NodeStatus.
- ``--node NAME --publish``: observe and publish it through the fleet repo's status ref.
- ``--fleet``: every node's latest status with its freshness, from the status ref (the fleet repo
  checkout at PATH and its remote) or from ``--status DIR``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from rich.table import Table

from controller.cli.output import emit_json, err, format_age, out, print_problems
from controller.desired import load_fleet
from controller.errors import ValidationFailed
from controller.fleet import DirectoryStatusTransport, GitStatusTransport, StatusTransport
from controller.observe.node import observe_node, transmission_observer
from schemas.desired import DesiredState
from schemas.fleetview import FleetView, build_fleet_view
from schemas.observed import NodeStatus
from schemas.types import format_size


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
    try:
        desired = load_fleet(path).desired
    except ValidationFailed as e:
        print_problems(e.problems)
        return 1
    now = datetime.now(UTC)
    if fleet:
        return _fleet(desired, _transport(path, desired, None, status_dir), now, as_json)
    if node is None:
        err.print("give --node NAME (observe a node) or --fleet (the fleet view)")
        return 1
    if node not in desired.devices:
        err.print(f"unknown node {node!r}; devices: {', '.join(desired.devices)}", markup=False)
        return 1
    observer = transmission_observer(desired.devices[node])
    status = observe_node(
        desired, node, now=now, observer=observer, player_socket=player_socket
    ).status
    if publish:
        transport = _transport(path, desired, node, status_dir)
        transport.publish(status)
        if not as_json:
            out.print(f"published the status of {node}")
    if as_json:
        emit_json(status.model_dump(mode="json"))
    else:
        _show_node(status)
    return 0


def _transport(
    path: str, desired: DesiredState, node: str | None, status_dir: str | None
) -> StatusTransport:
    if status_dir is not None:
        return DirectoryStatusTransport(status_dir)
    return GitStatusTransport.for_fleet(path, desired.fleet.status, node=node)


def _show_node(st: NodeStatus) -> None:
    tr = st.transmission
    out.print(f"[bold]{st.node}[/bold] observed {st.observed_at:%Y-%m-%d %H:%M:%S}Z")
    if not tr.reachable:
        out.print(f"[red]Transmission unreachable[/red]: {tr.error}", markup=True)
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
        out.print(f"vpn {v.profile} ({v.interface}): {'up' if v.up else 'down'}", markup=False)
    if st.player is not None:
        p = st.player
        what = p.path or "idle" if p.reachable else f"unreachable: {p.error}"
        out.print(f"player: {what}", markup=False)


def _fleet(desired: DesiredState, transport: StatusTransport, now: datetime, as_json: bool) -> int:
    view = build_fleet_view(desired, transport.read_all(), now)
    skipped = list(getattr(transport, "skipped", []))
    if as_json:
        emit_json({
            "now": now.isoformat(),
            "nodes": [_node_json(view, name) for name in view.nodes],
            "skipped": [str(s) for s in skipped],
        })
        return 0
    t = Table(title="Fleet", title_justify="left")
    for col in ("node", "freshness", "age", "trust", "transmission", "torrents", "complete", "free"):
        t.add_column(col)
    for name, nv in view.nodes.items():
        st = nv.status
        if st is None:
            t.add_row(name, nv.freshness.value, "-", nv.trust.value, "-", "-", "-", "-")
            continue
        tr = st.transmission
        free = st.free_bytes()
        t.add_row(
            name, nv.freshness.value, format_age(nv.age.total_seconds()) if nv.age is not None else "-",
            nv.trust.value, "reachable" if tr.reachable else "unreachable",
            str(len(tr.torrents)) if tr.reachable else "?",
            str(sum(1 for x in tr.torrents if x.complete)) if tr.reachable else "?",
            format_size(free) if free is not None else "?",
        )
    out.print(t)
    for s in skipped:
        err.print(f"skipped a status: {s}", markup=False)
    return 0


def _node_json(view: FleetView, name: str) -> dict[str, object]:
    nv = view.nodes[name]
    return {
        "node": name,
        "freshness": nv.freshness.value,
        "age_seconds": nv.age.total_seconds() if nv.age is not None else None,
        "trust": nv.trust.value,
        "status": nv.status.model_dump(mode="json") if nv.status else None,
    }
