"""Turn a pass's ledger into the Plan: filter to the requested nodes, sort, summarise.

Actions are sorted by node, then by kind in the order an actuator should run them (VPN first,
then kill-switch stops and restarts, then adds and repairs, then removals, then the player),
then by target, so the same inputs always give byte-identical plans.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime

from schemas.plan import (
    Action,
    ActionKind,
    DutyAssignment,
    Plan,
    PlanWarning,
    Severity,
    Summary,
)

__all__ = ["KIND_ORDER", "assemble"]

KIND_ORDER: tuple[ActionKind, ...] = (
    ActionKind.vpn_up,
    ActionKind.vpn_down,
    ActionKind.set_session,  # before adds: DHT, PEX and LPD are off before a private item lands
    ActionKind.stop,
    ActionKind.start,
    ActionKind.set_labels,
    ActionKind.add,
    ActionKind.pin,
    ActionKind.set_location,
    ActionKind.set_limits,
    ActionKind.set_trackers,
    ActionKind.drop_webseeds,
    ActionKind.add_webseeds,
    ActionKind.reannounce,
    ActionKind.verify,
    ActionKind.research,
    ActionKind.record_strike,
    ActionKind.unpin,
    ActionKind.remove_torrent,
    ActionKind.remove_data,
    ActionKind.player_set,
    ActionKind.player_load,
    ActionKind.player_stop,
)
_RANK = {k: i for i, k in enumerate(KIND_ORDER)}
_SEVERITY = {Severity.error: 0, Severity.warning: 1, Severity.info: 2}


def assemble(
    *,
    revision: str | None,
    now: datetime,
    nodes: list[str],
    actions: Iterable[Action],
    warnings: Iterable[PlanWarning],
    duties: list[DutyAssignment],
    deferred: Counter[str],
    suspended: bool,
) -> Plan:
    wanted = set(nodes)
    acts = sorted(
        (a for a in actions if a.node in wanted),
        key=lambda a: (a.node, _RANK.get(a.kind, len(_RANK)), a.target, a.id),
    )
    warns = sorted(
        (w for w in warnings if w.node is None or w.node in wanted),
        key=lambda w: (_SEVERITY[w.severity], w.code, w.subject or "", w.node or "", w.message),
    )
    by_kind = Counter(a.kind.value for a in acts)
    by_node = Counter(a.node for a in acts)
    summary = Summary(
        actions=len(acts),
        by_kind=dict(sorted(by_kind.items())),
        by_node=dict(sorted(by_node.items())),
        destructive=sum(1 for a in acts if a.destructive),
        bytes_to_move=sum(a.bytes or 0 for a in acts if a.kind is ActionKind.add),
        deferred=sum(n for node, n in deferred.items() if node in wanted),
    )
    return Plan(
        revision=revision, now=now, nodes=sorted(wanted), actions=acts, warnings=warns,
        duties=duties, summary=summary, suspended=suspended,
    )
