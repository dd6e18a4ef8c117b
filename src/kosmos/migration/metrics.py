"""The migration controller's Prometheus series (queue and reconcile counts: kosmos.kube's)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from kosmos.kube.metrics import REGISTRY

phases = Counter(
    "kosmos_migration_phase_transitions_total",
    "PromotePolicy phases entered, by phase.",
    ["phase"],
    registry=REGISTRY,
)
reconcile_seconds = Histogram(
    "kosmos_migration_reconcile_seconds",
    "Seconds of one PromotePolicy reconcile, by the phase it ran.",
    ["phase"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
    registry=REGISTRY,
)
