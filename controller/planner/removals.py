"""Budgets of removals: per pass on each node, and per revision for the whole fleet.

Anyone who can push steers the fleet, and one line (a custody ``max`` from 3 to 1 with
``prune``) can plan dozens of removals at once. So, after every step has planned, two budgets
of ``policy.removals`` apply to the destructive actions (``DESTRUCTIVE_KINDS``):

- **per revision:** when the fleet's plan holds more removals than ``per_revision`` and the
  owner has not acknowledged that many (``acknowledge``), the plan is *held*: no removal is
  planned on any node, and an error-level ``removal-hold`` warning names the count, the budget
  and the line to commit. Every node computes the same fleet-wide count, so all hold together.
- **per pass:** each node applies at most ``per_pass`` removals in one pass, in plan order;
  the rest are deferred to the next pass (``summary.deferred``, an info warning).
"""

from __future__ import annotations

from collections import defaultdict

from controller.planner.assemble import KIND_ORDER
from controller.planner.ledger import Ledger
from schemas.desired import RemovalPolicy
from schemas.plan import Action, Severity

__all__ = ["HOLD_CODE", "limit_removals"]

HOLD_CODE = "removal-hold"
_RANK = {k: i for i, k in enumerate(KIND_ORDER)}


def limit_removals(policy: RemovalPolicy, ledger: Ledger) -> None:
    removals = sorted((a for a in ledger.actions.values() if a.destructive), key=_order)
    if not removals:
        return
    allowed = max(policy.per_revision, policy.acknowledge)
    if len(removals) > allowed:
        for a in removals:
            _drop(ledger, a)
        n = len(removals)
        ledger.warn(
            HOLD_CODE,
            f"this revision would remove {n} copies, more than the budget of {policy.per_revision} "
            f"per revision (policy.removals.per_revision): no removal is applied until the owner "
            f"acknowledges them by committing policy.removals.acknowledge: {n} in the Fleet file "
            "(reset it once they are done)",
            severity=Severity.error,
        )
        return
    by_node: dict[str, list[Action]] = defaultdict(list)
    for a in removals:
        by_node[a.node].append(a)
    for node, mine in sorted(by_node.items()):
        later = mine[policy.per_pass:]
        for a in later:
            _drop(ledger, a)
        if later:
            ledger.warn(
                "removal-budget",
                f"{len(later)} more removal(s) on {node} wait for the next pass (at most "
                f"{policy.per_pass} per pass: policy.removals.per_pass)",
                node=node, severity=Severity.info,
            )


def _order(a: Action) -> tuple[str, int, str, str]:
    return (a.node, _RANK.get(a.kind, len(_RANK)), a.target, a.id)


def _drop(ledger: Ledger, a: Action) -> None:
    del ledger.actions[a.id]
    ledger.deferred[a.node] += 1
