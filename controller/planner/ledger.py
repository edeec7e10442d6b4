"""What a pass has decided so far: actions, and the bookkeeping later steps must respect.

Steps run in a fixed order (docs/planner.md) and share one ledger: bytes already planned on a
node (so two pins do not both take the last free gigabyte), new pins per node (the rate
limit), adds and removals per item (so two removals cannot each rely on the other's copy), and
the (node, item) pairs something wants kept (the watchlist buffer, the player's queue).
Warnings about many items are tallied and rendered once per rule and node, not once per item.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from schemas.plan import Action, ActionKind, PlanWarning, Severity, action_id

__all__ = ["Ledger"]

_SHOWN = 3


@dataclass
class _Tally:
    code: str
    severity: Severity
    node: str | None
    subject: str | None
    text: str
    items: list[str] = field(default_factory=list)


@dataclass
class Ledger:
    actions: dict[str, Action] = field(default_factory=dict)
    pins: Counter[str] = field(default_factory=Counter)
    planned_bytes: Counter[str] = field(default_factory=Counter)
    adds: dict[str, set[str]] = field(default_factory=dict)
    removals: dict[str, set[str]] = field(default_factory=dict)
    keep: set[tuple[str, str]] = field(default_factory=set)
    deferred: Counter[str] = field(default_factory=Counter)
    warnings: dict[tuple[str, str | None, str | None, str], PlanWarning] = field(
        default_factory=dict
    )
    tallies: dict[tuple[str, str | None, str | None, str], _Tally] = field(default_factory=dict)

    def act(
        self,
        node: str,
        kind: ActionKind,
        target: str,
        reason: str,
        *,
        params: dict[str, Any] | None = None,
        rule: str | None = None,
        size: int | None = None,
        relies_on: list[str] | None = None,
    ) -> Action:
        """Record an action; the same id twice merges reasons (and labels of adds)."""
        aid = action_id(node, kind, target)
        new = Action(
            id=aid, node=node, kind=kind, target=target, reason=reason, params=params or {},
            rule=rule, bytes=size, relies_on=sorted(relies_on or []),
        )
        old = self.actions.get(aid)
        if old is None:
            self.actions[aid] = new
            return new
        # Both actions' params hold (a set-trackers that adds the fleet's tracker and one that
        # drops the others become one action doing both).
        merged_params = {**new.params, **old.params}
        for name in ("labels", "labels_add", "labels_remove"):
            if name in old.params or name in new.params:
                merged_params[name] = sorted(
                    set(old.params.get(name, [])) | set(new.params.get(name, []))
                )
        merged = old.model_copy(update={
            "reason": old.reason if reason in old.reason else f"{old.reason}; {reason}",
            "params": merged_params,
            "relies_on": sorted(set(old.relies_on) | set(new.relies_on)),
        })
        self.actions[aid] = merged
        return merged

    def has(self, node: str, kind: ActionKind, target: str) -> bool:
        return action_id(node, kind, target) in self.actions

    def plan_add(self, node: str, key: str, size: int | None) -> None:
        self.adds.setdefault(key, set()).add(node)
        self.planned_bytes[node] += size or 0

    def plan_removal(self, node: str, key: str) -> None:
        self.removals.setdefault(key, set()).add(node)

    def warn(
        self,
        code: str,
        message: str,
        *,
        node: str | None = None,
        subject: str | None = None,
        severity: Severity = Severity.warning,
    ) -> None:
        self.warnings.setdefault(
            (code, node, subject, message),
            PlanWarning(code=code, severity=severity, message=message, node=node, subject=subject),
        )

    def tally(
        self,
        code: str,
        text: str,
        item: str,
        *,
        node: str | None = None,
        subject: str | None = None,
        severity: Severity = Severity.warning,
    ) -> None:
        """Count ``item`` under one warning; ``text`` may use ``{n}`` and ``{items}``."""
        key = (code, node, subject, text)
        t = self.tallies.get(key)
        if t is None:
            t = self.tallies[key] = _Tally(code, severity, node, subject, text)
        t.items.append(item)

    def all_warnings(self) -> list[PlanWarning]:
        out = list(self.warnings.values())
        for t in self.tallies.values():
            shown = sorted(t.items)
            listed = ", ".join(shown[:_SHOWN]) + (f" and {len(shown) - _SHOWN} more" if len(shown) > _SHOWN else "")
            n = len(shown)
            message = t.text.format(n=n, items=listed, s="" if n == 1 else "s")
            out.append(PlanWarning(code=t.code, severity=t.severity, message=message,
                                   node=t.node, subject=t.subject))
        return out
