"""``tva plan [PATH]``: what each node would do, and why, without touching anything.

Exit codes follow Terraform: 0 nothing would change, 2 something would, 1 error.

Observed state comes from saved NodeStatus files (``--status DIR``) or from the fleet repo's
status refs (``--fleet-ref``); ``now`` is chosen by the rule shared with the fleet views and
the review (``controller.cli.inputs``). The planner never reads the clock.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text

from controller.cli.inputs import StatusSource, load_inputs
from controller.cli.output import emit_json, err, esc, out, styled
from controller.errors import PermanentError
from controller.review.markdown import escape
from schemas.desired import DesiredState
from schemas.journal import JournalEntry
from schemas.plan import Action, Plan, Severity
from schemas.types import format_size

__all__ = ["render_human", "render_markdown", "run", "summary_line", "target_label"]


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

    if node is not None and all_nodes:
        raise PermanentError("give --node NAME or --all, not both")
    inputs = load_inputs(path, status_dir=status_dir, transport=transport,
                         fleet_ref=fleet_ref, now=now)
    desired = inputs.desired
    if node is not None and node not in desired.devices:
        raise PermanentError(
            f"--node {node!r} is not a device of the fleet ({', '.join(desired.devices)})"
        )
    result = plan(desired, inputs.statuses, inputs.now,
                  nodes=[node] if node is not None else None, journal=journal)
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
    out.rule(Text.assemble(styled("tva plan", "bold"), styled(
        f" - fleet {desired.fleet.name} at {rev}, as of {p.now.isoformat()}", "")))
    if p.suspended:
        out.print("[yellow]suspended[/yellow]: policy.suspend is set; controllers apply nothing.",
                  markup=True)
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
            kind = styled(a.kind.value, "red" if a.destructive else "")
            why = styled(a.reason, "")
            if a.relies_on:
                why.append_text(styled(f" (relies on {', '.join(a.relies_on)})", "dim"))
            t.add_row(kind, target_label(desired, a), why)
        out.print(t)
    if p.warnings:
        out.print("[bold]Warnings[/bold]", markup=True)
        for w in p.warnings:
            style = {Severity.error: "red", Severity.warning: "yellow", Severity.info: "dim"}[w.severity]
            out.print(f"  [{style}]{w.severity.value}[/{style}] {esc(w.code)}: ", end="",
                      markup=True)
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
        line += f"; {s.deferred} deferred to later passes (rate limits and removal budgets)"
    return line + "."


def _md(text: str) -> str:
    return escape(text)


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
