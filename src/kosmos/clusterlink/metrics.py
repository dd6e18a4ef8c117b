"""The network-manager's Prometheus series (queue and reconcile series come from kosmos.kube)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from kosmos.kube.metrics import REGISTRY

discoveries = Counter(
    "kosmos_clusterlink_cidr_discoveries_total",
    "CIDR discovery passes by member cluster, what was sought (pod, service) and the source "
    "that answered (calico, flannel, cilium, nodes, override, flags, probe) or error.",
    ["cluster", "kind", "source"],
    registry=REGISTRY,
)
discovered_cidrs = Gauge(
    "kosmos_clusterlink_discovered_cidrs",
    "CIDRs in the member's Cluster status, by kind (pod, service).",
    ["cluster", "kind"],
    registry=REGISTRY,
)
cluster_nodes = Gauge(
    "kosmos_clusterlink_cluster_nodes",
    "ClusterNodes the network-manager keeps for the member.",
    ["cluster"],
    registry=REGISTRY,
)
cluster_node_writes = Counter(
    "kosmos_clusterlink_cluster_node_writes_total",
    "ClusterNode writes by member and kind (apply, status, delete).",
    ["cluster", "kind"],
    registry=REGISTRY,
)
