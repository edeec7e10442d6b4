"""``tva plan [PATH]``: what each node would do, and why, without touching anything.

Exit codes follow Terraform: 0 nothing would change, 2 something would, 1 error.

Observed state comes from saved NodeStatus files (``--status DIR``) or from a status transport
(the fleet repo's status ref: pass any object with ``read_all() -> list[NodeStatus]``). The
clock is read here, never in the planner: ``--now`` gives the instant explicitly; without it,
a status directory is a snapshot and is planned as of its newest status (so a saved snapshot
gives the same plan tomorrow), and a live transport is planned as of the wall clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from rich.table import Table

from controller.cli.output import emit_json, err, out, print_problems
from controller.desired import load_fleet
from controller.errors import PermanentError, TvaError, ValidationFailed
from schemas.desired import DesiredState
from schemas.fleetview import FleetView, build_fleet_view
from schemas.journal import JournalEntry
from schemas.observed import NodeStatus
from schemas.plan import Action, Plan, Severity
from schemas.types import format_size

__all__ = ["Inputs", "StatusSource", "load_inputs", "parse_now", "render_markdown", "run"]


class StatusSource(Protocol):
    """Where statuses come from: a directory, the git status ref, a live peer."""

    def read_all(self) -> list[NodeStatus]: ...


@dataclass
class Inputs:
    desired: DesiredState
    fleet: FleetView
    now: datetime
    statuses: list[NodeStatus]
    notes: list[str] = field(default_factory=list)


def parse_now(value: str) -> datetime:
    """An ISO 8601 instant; without an offset it is taken as UTC."""
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as e:
        raise PermanentError(
            f"--now {value!r} is not an ISO 8601 time (e.g. 2025-06-01T20:00:00Z)"
        ) from e
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def load_inputs(
    path: str,
    *,
    status_dir: str | None = None,
    transport: StatusSource | None = None,
    fleet_ref: bool = False,
    now: str | None = None,
) -> Inputs:
    """Load the desired state and the observed statuses, and fix ``now``.

    ``fleet_ref``: read the statuses from the status ref of the git checkout at ``path``
    (fetched from its remote), as a controller does.
    """
    if sum((status_dir is not None, transport is not None, fleet_ref)) > 1:
        raise PermanentError("give one source of fleet status: --status DIR or --fleet-ref")
    desired = load_fleet(path).desired
    notes: list[str] = []
    statuses: list[NodeStatus] = []
    source: StatusSource | None = transport
    if status_dir is not None:
        from controller.fleet.directory import DirectoryStatusTransport

        source = DirectoryStatusTransport(status_dir)
    elif fleet_ref:
        from controller.fleet.gitstatus import GitStatusTransport

        source = GitStatusTransport.for_fleet(path, desired.fleet.status)
    if source is not None:
        statuses = source.read_all()
        for skipped in getattr(source, "skipped", []):
            notes.append(f"status skipped: {skipped}")
    else:
        notes.append("no fleet status given (--status DIR): every node is unknown")
    if now is not None:
        when = parse_now(now)
    elif status_dir is not None and statuses:
        when = max(s.observed_at for s in statuses)
        notes.append(f"planned as of the newest status in {status_dir} ({when.isoformat()}); "
                     "use --now to choose the instant")
    else:
        when = datetime.now(UTC)
    unknown = sorted({s.node for s in statuses} - set(desired.devices))
    if unknown:
        notes.append(f"statuses of nodes that are not devices are ignored: {', '.join(unknown)}")
    return Inputs(desired, build_fleet_view(desired, statuses, when), when, statuses, notes)


def run(
    path: str = ".",
    *,
    node: str | None = None,
    all_nodes: bool = False,
    status_dir: str | None = None,
    as_json: bool = False,
    markdown: bool = False,
    now: str | None = None,
    fleet_ref: bool = False,
    transport: StatusSource | None = None,
    journal: Sequence[JournalEntry] = (),
) -> int:
    """``tva plan``. Without ``node`` every node is planned (``--all`` says so explicitly)."""
    from controller.planner import plan

    try:
        if node is not None and all_nodes:
            raise PermanentError("give --node NAME or --all, not both")
        inputs = load_inputs(path, status_dir=status_dir, transport=transport,
                             fleet_ref=fleet_ref, now=now)
        desired = inputs.desired
        if node is not None and node not in desired.devices:
            raise PermanentError(
                f"--node {node!r} is not a device of the fleet ({', '.join(desired.devices)})"
            )
        result = plan(desired, inputs.fleet, inputs.now,
                      nodes=[node] if node is not None else None, journal=journal)
    except ValidationFailed as e:
        print_problems(e.problems)
        err.print(f"[red]{path}: invalid[/red]; nothing planned")
        return 1
    except TvaError as e:
        err.print("error: " + str(e), markup=False, style="red")
        return 1
    for note in inputs.notes:
        err.print(f"note: {note}", markup=False, style="dim")
    if as_json:
        emit_json(result.model_dump(mode="json"))
    elif markdown:
        out.print(render_markdown(result, desired), markup=False, end="")
    else:
        render_human(result, desired)
    return 2 if result.changes else 0


# --------------------------------------------------------------------------- rendering


def target_label(desired: DesiredState, a: Action) -> str:
    item = desired.items.get(a.target)
    if item is not None:
        return f"{item.name} ({a.target[:8]})"
    return a.target


def render_human(p: Plan, desired: DesiredState) -> None:
    rev = p.revision or "working tree"
    out.rule(f"[bold]tva plan[/bold] - fleet {desired.fleet.name} at {rev}, "
             f"as of {p.now.isoformat()}")
    if p.suspended:
        out.print("[yellow]suspended[/yellow]: policy.suspend is set; controllers apply nothing.")
    t = Table(title="Duties", title_justify="left")
    for col in ("duty", "nodes", "why"):
        t.add_column(col)
    for d in p.duties:
        t.add_row(d.duty, ", ".join(d.nodes) or "-", d.reason)
    out.print(t)
    by_node: dict[str, list[Action]] = {}
    for a in p.actions:
        by_node.setdefault(a.node, []).append(a)
    for node, acts in by_node.items():
        t = Table(title=f"{node}: {len(acts)} action{'s' if len(acts) != 1 else ''}",
                  title_justify="left")
        for col in ("kind", "target", "why"):
            t.add_column(col)
        for a in acts:
            kind = f"[red]{a.kind.value}[/red]" if a.destructive else a.kind.value
            why = a.reason
            if a.relies_on:
                why += f" [dim](relies on {', '.join(a.relies_on)})[/dim]"
            t.add_row(kind, target_label(desired, a), why)
        out.print(t)
    if p.warnings:
        out.print("[bold]Warnings[/bold]")
        for w in p.warnings:
            style = {Severity.error: "red", Severity.warning: "yellow", Severity.info: "dim"}[w.severity]
            out.print(f"  [{style}]{w.severity.value}[/{style}] {w.code}: ", end="")
            out.print(w.message, markup=False)
    out.print(summary_line(p))


def summary_line(p: Plan) -> str:
    s = p.summary
    if not s.actions:
        return "No changes: the fleet matches its desired state." + (
            f" ({s.deferred} pins deferred)" if s.deferred else "")
    kinds = ", ".join(f"{n} {k}" for k, n in s.by_kind.items())
    line = (f"Plan: {s.actions} action{'s' if s.actions != 1 else ''} ({kinds}) on "
            f"{len(s.by_node)} node{'s' if len(s.by_node) != 1 else ''}; {s.destructive} "
            f"destructive; {format_size(s.bytes_to_move)} to move")
    if s.deferred:
        line += f"; {s.deferred} pins deferred by the rate limit"
    return line + "."


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(p: Plan, desired: DesiredState) -> str:
    """The plan as GitHub-flavoured Markdown (for a PR comment)."""
    lines = [f"### tva plan: fleet `{desired.fleet.name}` at `{p.revision or 'working tree'}`",
             "", f"As of {p.now.isoformat()}. {summary_line(p)}", ""]
    if p.suspended:
        lines += ["> **Suspended**: policy.suspend is set; controllers apply nothing.", ""]
    if p.actions:
        lines += ["| node | kind | target | why |", "|---|---|---|---|"]
        for a in p.actions:
            kind = f"**{a.kind.value}**" if a.destructive else a.kind.value
            why = a.reason + (f" (relies on {', '.join(a.relies_on)})" if a.relies_on else "")
            lines.append(f"| {a.node} | {kind} | {_md(target_label(desired, a))} | {_md(why)} |")
        lines.append("")
    if p.warnings:
        lines += ["**Warnings**", ""]
        lines += [f"- {w.severity.value} `{w.code}`: {_md(w.message)}" for w in p.warnings]
        lines.append("")
    lines += ["<details><summary>Duties</summary>", "", "| duty | nodes | why |", "|---|---|---|"]
    lines += [f"| {d.duty} | {', '.join(d.nodes) or '-'} | {_md(d.reason)} |" for d in p.duties]
    lines += ["", "</details>", ""]
    return "\n".join(lines)
