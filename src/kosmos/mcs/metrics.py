"""The MCS controllers' Prometheus series (queue and reconcile counts: kosmos.kube's)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from kosmos.kube.metrics import REGISTRY

exports = Gauge(
    "kosmos_mcs_exports",
    "ServiceExports in the clusterset, by condition type and status.",
    ["condition", "status"],
    registry=REGISTRY,
)
imports = Gauge(
    "kosmos_mcs_imports",
    "ServiceImports the controller serves, by cluster.",
    ["cluster"],
    registry=REGISTRY,
)
slice_writes = Counter(
    "kosmos_mcs_slice_writes_total",
    "EndpointSlice writes in importing clusters, by cluster and operation (apply|delete).",
    ["cluster", "operation"],
    registry=REGISTRY,
)
reconcile_errors = Counter(
    "kosmos_mcs_reconcile_errors_total",
    "Failed reconciles, by controller.",
    ["controller"],
    registry=REGISTRY,
)
export_to_import_seconds = Histogram(
    "kosmos_mcs_export_to_import_seconds",
    "Seconds from the oldest ServiceExport's creation to its ServiceImport created in a cluster.",
    ["cluster"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 300),
    registry=REGISTRY,
)
