"""ClusterTree's Prometheus series (queue depth and reconcile counts come from kosmos.kube).

Pod sync latency is measured in stages from the host pod's creationTimestamp, so a slow
stage shows where time goes: ``member_created`` (host create -> member pod created),
``member_running`` (-> member pod Running, seen by us), ``host_status`` (-> Running written
back on the host pod).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from kosmos.api.quantity import parse_quantity
from kosmos.clustertree.capacity import BASE_RESOURCES, Free
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
leaf_allocatable = Gauge(
    "kosmos_clustertree_leaf_allocatable",
    "Free room a leaf node advertises (cpu in cores, memory and ephemeral-storage in bytes, "
    "pods), by member cluster, leaf node and resource.",
    ["cluster", "node", "resource"],
    registry=REGISTRY,
)
leaf_member_nodes = Gauge(
    "kosmos_clustertree_leaf_member_nodes",
    "Schedulable, Ready member nodes behind a leaf node.",
    ["cluster", "node"],
    registry=REGISTRY,
)


class LeafPods(Collector):
    """Host pods bound to each known leaf node, counted when scraped.

    Counted at scrape time rather than set by a pass: passes recompute only the leaves
    whose member side changed, while host pods bind to a leaf at any moment. One source
    per process: the last leaf-node reconciler built in it (tests build several).
    """

    def __init__(self) -> None:
        self.leaves: set[tuple[str, str]] = set()
        self.count: Callable[[str], int] = lambda node: 0

    def describe(self) -> Iterable[Metric]:
        return [self._family()]

    def collect(self) -> Iterable[Metric]:
        family = self._family()
        for cluster, node in sorted(self.leaves):
            family.add_metric([cluster, node], self.count(node))
        return [family]

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "kosmos_clustertree_leaf_pods",
            "Host pods bound to a leaf node and not finished, by member cluster and leaf node.",
            labels=["cluster", "node"],
        )


leaf_pods = LeafPods()
REGISTRY.register(leaf_pods)


def record_leaf(cluster: str, node: str, free: Free) -> None:
    """The leaf node's series after a pass computed its free room (``capacity``)."""
    for resource in BASE_RESOURCES:
        value = float(parse_quantity(free.allocatable.get(resource, 0)))
        leaf_allocatable.labels(cluster, node, resource).set(value)
    leaf_member_nodes.labels(cluster, node).set(free.nodes)
    leaf_pods.leaves.add((cluster, node))


def forget_leaves(cluster: str, node: str | None = None) -> None:
    """Drop the series of a removed leaf node (or of all the member's), so a dashboard does
    not show them frozen at their last value."""
    labels = {"cluster": cluster} if node is None else {"cluster": cluster, "node": node}
    for gauge in (leaf_allocatable, leaf_member_nodes):
        gauge.remove_by_labels(labels)
    leaf_pods.leaves -= {(c, n) for c, n in leaf_pods.leaves if c == cluster and node in (None, n)}
