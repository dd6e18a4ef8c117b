"""Prometheus metrics of the extender (served at its /metrics with the runtime's)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from kosmos.kube.metrics import REGISTRY

#: Extender calls are on kube-scheduler's critical path (one pod at a time): sub-ms buckets.
_FAST = (
    0.0002,
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)

request_seconds = Histogram(
    "kosmos_scheduler_extender_request_duration_seconds",
    "Time the extender takes to answer kube-scheduler, by verb (filter, prioritize).",
    ["verb"],
    buckets=_FAST,
    registry=REGISTRY,
)
requests_total = Counter(
    "kosmos_scheduler_extender_requests_total",
    "Extender calls by verb and outcome (ok, error, not_ready).",
    ["verb", "outcome"],
    registry=REGISTRY,
)
filtered_nodes = Counter(
    "kosmos_scheduler_extender_filtered_nodes_total",
    "Nodes the filter removed, by cause (policy, volume, capacity, placement, unknown).",
    ["cause"],
    registry=REGISTRY,
)
reservations = Gauge(
    "kosmos_scheduler_placement_reservations",
    "Pods sent to a cluster by placement and not yet seen bound.",
    registry=REGISTRY,
)
in_flight = Gauge(
    "kosmos_scheduler_pods_in_flight",
    "Host pods bound to a leaf node whose member copy is not bound yet.",
    registry=REGISTRY,
)
deletion_cost_patches = Counter(
    "kosmos_scheduler_deletion_cost_patches_total",
    "Pods patched with a new controller.kubernetes.io/pod-deletion-cost.",
    registry=REGISTRY,
)
