"""The review laid out for people: a summary, then sections of full lists and tables.

Both renderings (the Markdown PR comment and the terminal text) walk the same sections, so they
never disagree; the Markdown one shortens long lists and tables ("... and N more") to fit one
comment, the terminal one shows everything. Every count and total in a heading or a summary
line is computed here from the full data, before any shortening.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from controller.review.model import DutyMove, Review, RiskLevel
from schemas.plan import Action, ActionKind
from schemas.types import format_size

__all__ = ["Block", "Bullets", "Para", "Section", "Table", "headline", "sections", "summary"]


@dataclass(frozen=True)
class Para:
    text: str
    strong: bool = False


@dataclass(frozen=True)
class Bullets:
    items: list[str]
    what: str = "more"
    """How the rest is called in "... and N more"."""


@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: list[list[str]]
    total: list[str] | None = None
    """A last row of totals (over every row, shown or not)."""


Block = Para | Bullets | Table


@dataclass(frozen=True)
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)


def _n(n: int, one: str, many: str | None = None) -> str:
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def headline(r: Review) -> str:
    if r.base.compared is None and not r.base.valid:
        base = f"{r.base.requested} (empty fleet)"
    else:
        base = _named(r.base.requested, r.base.compared)
    return f"tva review: fleet {r.fleet}, {base} -> {_named(r.head.requested, r.head.compared)}"


def _named(requested: str, sha: str | None) -> str:
    if sha is None:
        return requested
    if sha.startswith(requested.lower()):
        return sha[:12]
    return f"{requested} ({sha[:12]})"


def _move(m: DutyMove) -> str:
    if len(m.before) <= 1 and len(m.after) <= 1:
        return f"{m.duty}: {m.before[0] if m.before else '(none)'} -> " \
               f"{m.after[0] if m.after else '(none)'}"
    gained = sorted(set(m.after) - set(m.before))
    lost = sorted(set(m.before) - set(m.after))
    parts = [f"+{n}" for n in gained] + [f"-{n}" for n in lost]
    return f"{m.duty}: {', '.join(parts)}"


def summary(r: Review) -> list[Block]:
    """What the comment shows before any collapsed section: the verdict, the risks, totals."""
    out: list[Block] = []
    if not r.effect:
        out.append(Para("No effect: HEAD means the same as BASE and plans the same.", strong=True))
    if r.risks:
        out.append(Para(f"Risk flags ({len(r.risks)})", strong=True))
        out.append(Bullets([f"{'DANGER' if x.level is RiskLevel.danger else 'warning'}: "
                            f"{x.title}: {x.summary}" for x in r.risks]))
    elif r.effect:
        out.append(Para("No risk flags.", strong=True))
    if not r.effect:
        return out + [Para(n) for n in r.notes]
    lines: list[str] = []
    if r.changes:
        kinds = Counter(c.kind for c in r.changes)
        lines.append(f"Desired state: {_n(len(r.changes), 'change')} ("
                     + ", ".join(f"{n:,} {k}" for k, n in kinds.items()) + ")")
    else:
        lines.append("Desired state: no change")
    if r.duty_moves:
        lines.append("Duties: " + "; ".join(_move(m) for m in r.duty_moves))
    lines.append("Plan: " + _plan_line(r))
    d = r.delta
    if d.deferred_head or d.deferred_base:
        lines.append(
            f"Rate limit: the next pass makes {_n(len(d.pins), 'new copy', 'new copies')} of "
            f"{d.projected_pins:,}; HEAD defers {_n(d.deferred_head, 'pin')} to later passes "
            f"(BASE {d.deferred_base:,}), at most max_new_pins_per_node per node per pass")
    if r.warnings_appeared or r.warnings_resolved:
        lines.append(f"Planner warnings: {len(r.warnings_appeared):,} new, "
                     f"{len(r.warnings_resolved):,} resolved")
    if r.suspended:
        lines.append("HEAD sets policy.suspend: controllers plan but apply nothing")
    out += [Para("Effect", strong=True), Bullets(lines)]
    out += [Para(n) for n in r.notes]
    return out


def _plan_line(r: Review) -> str:
    d = r.delta
    parts: list[str] = []
    if d.projected_pins:
        nodes = sum(1 for n in r.nodes if n.projected_pins)
        parts.append(f"{_n(d.projected_pins, 'new copy', 'new copies')} "
                     f"({format_size(d.projected_pin_bytes)} to move) on {_n(nodes, 'node')}")
    if d.removals:
        parts.append(f"{_n(len(d.removals), 'removal')} ({format_size(d.removal_bytes)})")
    if d.projected_unpins:
        parts.append(f"{_n(d.projected_unpins, 'pin')} of BASE dropped "
                     f"({format_size(d.projected_unpin_bytes)} not moved)")
    if d.removals_cancelled:
        parts.append(f"{_n(len(d.removals_cancelled), 'removal')} of BASE dropped")
    other = len(d.other_added) + len(d.other_dropped)
    if other:
        parts.append(f"{_n(other, 'other action')} added or dropped")
    return "; ".join(parts) if parts else "no difference"


def _label(a: Action, names: dict[str, str]) -> str:
    name = names.get(a.target)
    return f"{name} ({a.target[:8]})" if name else a.target


def _action_line(a: Action, names: dict[str, str]) -> str:
    size = f", {format_size(a.bytes)}" if a.bytes else ""
    verb = "pin" if a.kind in (ActionKind.add, ActionKind.pin) else a.kind.value
    return f"{verb} {_label(a, names)}{size}: {a.reason}"


def sections(r: Review, names: dict[str, str]) -> list[Section]:
    """The collapsed details, in order. ``names``: item names by info-hash (from HEAD and
    BASE), for actions."""
    out: list[Section] = []
    if r.changes:
        out.append(_changes(r))
    if r.duty_moves or r.warnings_appeared or r.warnings_resolved:
        out.append(_duties(r))
    if not r.delta.empty:
        out.append(_delta(r, names))
    for risk in r.risks:
        if risk.details:
            out.append(Section(f"{risk.title} ({risk.count:,})", [Bullets(risk.details)]))
    if any(row.incoming or row.outgoing or row.new for row in r.capacity):
        out.append(_capacity(r))
    out.append(_inputs(r))
    return out


def _changes(r: Review) -> Section:
    blocks: list[Block] = []
    by_kind: dict[str, list[str]] = {}
    items: dict[tuple[str, str], list[str]] = {}
    for c in r.changes:
        if c.kind == "item":
            items.setdefault((c.op, c.detail), []).append(c.name)
        else:
            by_kind.setdefault(c.kind, []).append(c.text)
    for kind, lines in by_kind.items():
        blocks.append(Para(f"{kind} ({len(lines):,})", strong=True))
        blocks.append(Bullets(lines))
    if items:
        total = sum(len(v) for v in items.values())
        blocks.append(Para(f"item ({total:,})", strong=True))
        grouped: list[str] = []
        for (op, detail), who in items.items():
            if len(who) == 1:
                grouped.append(f"item {who[0]}: {detail}" if op == "changed"
                               else f"item {who[0]} {op} ({detail})")
                continue
            shown = ", ".join(who[:3]) + (f" and {len(who) - 3:,} more" if len(who) > 3 else "")
            head = f"{len(who):,} items: {detail}" if op == "changed" else \
                f"{len(who):,} items {op} ({detail})"
            grouped.append(f"{head}: {shown}")
        blocks.append(Bullets(grouped))
    return Section(f"Desired-state changes ({len(r.changes):,})", blocks)


def _duties(r: Review) -> Section:
    blocks: list[Block] = []
    if r.duty_moves:
        blocks += [Para("Duty moves", strong=True), Bullets([_move(m) for m in r.duty_moves])]
    if r.warnings_appeared:
        blocks += [Para(f"New planner warnings ({len(r.warnings_appeared):,})", strong=True),
                   Bullets([f"{w.severity.value} {w.code}: {w.message}"
                            for w in r.warnings_appeared])]
    if r.warnings_resolved:
        blocks += [Para(f"Resolved planner warnings ({len(r.warnings_resolved):,})", strong=True),
                   Bullets([f"{w.severity.value} {w.code}: {w.message}"
                            for w in r.warnings_resolved])]
    n = len(r.duty_moves) + len(r.warnings_appeared) + len(r.warnings_resolved)
    return Section(f"Duties and invariants ({n:,})", blocks)


def _delta(r: Review, names: dict[str, str]) -> Section:
    d = r.delta
    deferred = d.projected_pins != len(d.pins)
    header = ["node", "new copies", "to move"]
    if deferred:
        header.append("next pass")
    header += ["pins dropped", "removals", "freed", "other"]
    rows = []
    for n in r.nodes:
        row = [n.node, f"{n.projected_pins:,}", format_size(n.projected_pin_bytes)]
        if deferred:
            row.append(f"{n.pins:,}")
        row += [f"{n.unpins:,}", f"{n.removals:,}", format_size(n.removal_bytes), f"{n.other:,}"]
        rows.append(row)
    total = ["all", f"{d.projected_pins:,}", format_size(d.projected_pin_bytes)]
    if deferred:
        total.append(f"{len(d.pins):,}")
    total += [f"{len(d.unpins):,}", f"{len(d.removals):,}", format_size(d.removal_bytes),
              f"{len(d.other_added) + len(d.other_dropped):,}"]
    blocks: list[Block] = [Table(header, rows, total)]
    if deferred:
        blocks.append(Para("Lists show the next pass, as tva plan would; the rate limit leaves "
                           "the rest to later passes. Totals count every pass."))
    per_node: dict[str, list[str]] = {}
    for a in d.pins:
        per_node.setdefault(a.node, []).append(_action_line(a, names))
    for a in d.removals:
        per_node.setdefault(a.node, []).append(_action_line(a, names))
    for a in d.unpins:
        per_node.setdefault(a.node, []).append("dropped: " + _action_line(a, names))
    for a in d.removals_cancelled:
        per_node.setdefault(a.node, []).append("dropped: " + _action_line(a, names))
    for a in d.other_added:
        per_node.setdefault(a.node, []).append(_action_line(a, names))
    for a in d.other_dropped:
        per_node.setdefault(a.node, []).append("dropped: " + _action_line(a, names))
    for node in sorted(per_node):
        blocks += [Para(f"{node} ({len(per_node[node]):,})", strong=True),
                   Bullets(per_node[node], "more actions")]
    return Section("Plan delta per node", blocks)


def _size(n: int | None) -> str:
    return "?" if n is None else format_size(n)


def _capacity(r: Review) -> Section:
    rows = []
    for c in r.capacity:
        flag = []
        if c.over_free:
            flag.append("over free space")
        if c.over_capacity:
            flag.append("over capacity")
        rows.append([c.node, format_size(c.capacity), _size(c.free), format_size(c.held),
                     format_size(c.incoming), format_size(c.outgoing),
                     ", ".join(flag) + (" (new)" if c.new else "") if flag else "ok"])
    return Section("Capacity", [
        Table(["device", "capacity", "free", "held", "to add", "to remove", ""], rows),
        Para("To add and to remove: everything HEAD plans there, over all passes (not only "
             "this change). Reserve kept free on every custodian: "
             f"{format_size(r.capacity[0].reserve)}." if r.capacity else ""),
    ])


def _inputs(r: Review) -> Section:
    def rev(requested: str, sha: str | None, compared: str | None) -> str:
        text = _named(requested, sha)
        if compared != sha:
            text += f", compared as {compared[:12] if compared else 'an empty fleet'}"
        return text

    lines = [f"BASE: {rev(r.base.requested, r.base.revision, r.base.compared)}",
             f"HEAD: {rev(r.head.requested, r.head.revision, r.head.compared)}",
             f"Planned as of {r.now.isoformat()} (both revisions, same statuses)"]
    blocks: list[Block] = [Bullets(lines)]
    if r.base.problems:
        blocks += [Para("BASE problems", strong=True), Bullets(r.base.problems, "more problems")]
    if r.statuses:
        blocks.append(Table(["node", "status", "observed at"],
                            [[s.node, s.freshness,
                              s.observed_at.isoformat() if s.observed_at else "-"]
                             for s in r.statuses]))
    return Section("Inputs", blocks)
