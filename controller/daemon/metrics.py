"""Prometheus metrics of one daemon (a registry per daemon, so tests can run several).

Besides the loop's own counters, the custody facts of the last pass (``FleetFacts``): items
below their floor and the bytes at risk per rule, copies per item, torrents per health state,
each node's status age, the open conditions. They are gauges of the fleet as this node sees it,
set whole after every pass by a collector (a rule or node that disappears leaves no stale
series). docs/operations.md#metrics-and-alerts lists them with example alert rules.
"""

from __future__ import annotations

import threading
from collections import Counter as Tally
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeHistogramMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from controller.act.acquire import committed
from controller.act.apply import Applied
from controller.planner.alerts import FleetFacts
from schemas.plan import ActionKind

__all__ = ["COPY_BUCKETS", "FleetCollector", "FleetSnapshot", "Metrics"]

COPY_BUCKETS = (0, 1, 2, 3, 4, 6, 8)
"""Upper bounds of the copies-per-item histogram (then +Inf)."""


@dataclass(frozen=True)
class FleetSnapshot:
    """What the collector exports: the facts of one pass, and each node's status age."""

    facts: FleetFacts
    node_ages: dict[str, float | None] = field(default_factory=dict)
    """Seconds since each node's status was observed (None: never reported)."""
    freshness: dict[str, str] = field(default_factory=dict)
    applied_age: float | None = None
    """Seconds since this node took its applied revision into force."""
    notifier: bool = False


class FleetCollector(Collector):
    """Exports the last ``FleetSnapshot`` as whole gauge families."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snapshot: FleetSnapshot | None = None

    def set(self, snapshot: FleetSnapshot) -> None:
        with self._lock:
            self._snapshot = snapshot

    def describe(self) -> Iterable[Metric]:
        return list(self._families(None))

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            snap = self._snapshot
        return list(self._families(snap))

    def _families(self, snap: FleetSnapshot | None) -> Iterator[Metric]:
        below = GaugeMetricFamily("tva_items_below_floor",
                                  "Items with fewer counted copies than the rule's floor.",
                                  labels=["rule"])
        risk = GaugeMetricFamily("tva_bytes_at_risk",
                                 "Bytes of the items below their floor, per rule.",
                                 labels=["rule"])
        items = GaugeMetricFamily("tva_items", "Items a custody rule selects.", labels=["rule"])
        copies = GaugeHistogramMetricFamily(
            "tva_item_copies", "Counted copies per item under a rule (a gauge histogram).",
            labels=["rule"])
        health = GaugeMetricFamily("tva_torrents", "Torrents on fresh nodes, per health state.",
                                   labels=["health"])
        age = GaugeMetricFamily("tva_node_status_age_seconds",
                                "Seconds since each node's published status was observed.",
                                labels=["node", "freshness"])
        conditions = GaugeMetricFamily("tva_open_conditions",
                                       "Open conditions the owner is told about, per event.",
                                       labels=["event"])
        applied = GaugeMetricFamily("tva_applied_revision_age_seconds",
                                    "Seconds since this node took its applied revision into force.")
        notifier = GaugeMetricFamily("tva_notifier",
                                     "1 when this node is the fleet's notifier.")
        if snap is not None:
            per_rule: dict[str, list[int]] = {}
            below_n: Tally[str] = Tally()
            bytes_n: Tally[str] = Tally()
            for f in snap.facts.custody:
                per_rule.setdefault(f.rule, []).append(f.counted)
                if f.counted < f.min:
                    below_n[f.rule] += 1
                    bytes_n[f.rule] += f.size or 0
            for rule, counts in sorted(per_rule.items()):
                below.add_metric([rule], below_n[rule])
                risk.add_metric([rule], bytes_n[rule])
                items.add_metric([rule], len(counts))
                buckets = [(str(b), sum(1 for c in counts if c <= b)) for b in COPY_BUCKETS]
                copies.add_metric([rule], [*buckets, ("+Inf", len(counts))], sum(counts))
            for state in ("healthy", "stalled", "dead"):
                health.add_metric([state], snap.facts.health.get(state, 0))
            for node, seconds in sorted(snap.node_ages.items()):
                if seconds is not None:
                    age.add_metric([node, snap.freshness.get(node, "")], seconds)
            kinds = Tally(a.kind.value for a in snap.facts.alerts)
            for kind, n in sorted(kinds.items()):
                conditions.add_metric([kind], n)
            if snap.applied_age is not None:
                applied.add_metric([], snap.applied_age)
            notifier.add_metric([], 1 if snap.notifier else 0)
        yield from (below, risk, items, copies, health, age, conditions, applied, notifier)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.passes = Counter("tva_passes_total", "Reconcile passes run.", registry=self.registry)
        self.pass_errors = Counter(
            "tva_pass_errors_total", "Reconcile passes that failed.", registry=self.registry
        )
        self.pass_duration = Histogram(
            "tva_pass_duration_seconds", "Duration of a reconcile pass.", registry=self.registry,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.actions = Counter(
            "tva_actions_total", "Actions applied, by kind and outcome.", ["kind", "outcome"],
            registry=self.registry,
        )
        self.drift = Gauge(
            "tva_drift_actions", "Actions the last plan had for this node (0 = converged).",
            registry=self.registry,
        )
        self.last_success = Gauge(
            "tva_last_success_timestamp_seconds", "When the last pass succeeded (Unix time).",
            registry=self.registry,
        )
        self.revision_valid = Gauge(
            "tva_desired_revision_valid", "1 when the newest fleet repo revision is in force.",
            registry=self.registry,
        )
        self.revisions_refused = Counter(
            "tva_revisions_refused_total",
            "Revisions of the fleet repo this node refused (invalid, unsigned, rollback).",
            ["reason"], registry=self.registry,
        )
        self.research = Counter(
            "tva_research_total", "Searches (watchlist entries, dead items' replacements), by "
            "outcome.", ["outcome"], registry=self.registry,
        )
        self.acquisitions = Counter(
            "tva_acquisitions_total", "Releases the acquirer committed (or proposed as a pull "
            "request), by kind: for a watchlist, or a dead item's replacement.", ["kind"],
            registry=self.registry,
        )
        self.notifications = Counter(
            "tva_notifications_total", "Notification messages, by target and outcome.",
            ["target", "outcome"], registry=self.registry,
        )
        self.fleet = FleetCollector()
        self.registry.register(self.fleet)

    def count(self, applied: Iterable[Applied]) -> None:
        """The actions of one pass: per kind and outcome, searches, and commits of the acquirer
        (a search that found its release already proposed commits nothing and is not one)."""
        for a in applied:
            self.actions.labels(kind=a.action.kind.value, outcome=a.outcome.value).inc()
            if a.action.kind is ActionKind.research:
                self.research.labels(outcome=a.outcome.value).inc()
                if committed(a.result):
                    kind = "watchlist" if a.action.target.startswith("watch/") else "replacement"
                    self.acquisitions.labels(kind=kind).inc()
