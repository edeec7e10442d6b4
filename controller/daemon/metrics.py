"""Prometheus metrics of one daemon (a registry per daemon, so tests can run several)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics"]


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
