"""ClusterTree's Prometheus series (queue depth and reconcile counts come from kosmos.kube).

Pod sync latency is measured in stages from the host pod's creationTimestamp, so a slow
stage shows where time goes: ``member_created`` (host create -> member pod created),
``member_running`` (-> member pod Running, seen by us), ``host_status`` (-> Running written
back on the host pod).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from kosmos.kube.metrics import REGISTRY

_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120, 300)

pod_sync_seconds = Histogram(
    "kosmos_clustertree_pod_sync_seconds",
    "Seconds from host pod creation to each sync stage, by member cluster.",
    ["cluster", "stage"],
    buckets=_BUCKETS,
    registry=REGISTRY,
)
sync_errors = Counter(
    "kosmos_clustertree_sync_errors_total",
    "Failed sync attempts, by member cluster and controller.",
    ["cluster", "controller"],
    registry=REGISTRY,
)
member_ready = Gauge(
    "kosmos_clustertree_member_ready",
    "1 while the member apiserver answers within the unreachable window, else 0.",
    ["cluster"],
    registry=REGISTRY,
)
kubelet_certificate_refusals = Counter(
    "kosmos_clustertree_kubelet_certificate_refusals_total",
    "TLS handshakes a client aborted because it does not trust the kubelet endpoint's "
    "serving certificate, by alert.",
    ["alert"],
    registry=REGISTRY,
)
adopted_pods = Counter(
    "kosmos_clustertree_adopted_pods_total",
    "Running member pods adopted as the copies of host pods (application migration), "
    "by member cluster.",
    ["cluster"],
    registry=REGISTRY,
)
