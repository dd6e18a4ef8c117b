"""The network-manager's Prometheus series (queue and reconcile series come from kosmos.kube)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import Counter, Gauge
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from kosmos.api import link
from kosmos.api.objects import Obj, condition_of, labels_of, name_of
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

#: ``kosmos_clusterlink_node_link_state``'s states, one series each (1 for the current one).
LINK_STATES = ("in_sync", "failed", "pending")
NODE_LINK_STATE = "kosmos_clusterlink_node_link_state"


def link_state(config: Obj) -> str:
    """What the node's agent last said about its NodeConfig (its ``Applied`` condition).

    ``pending``: no answer yet for the current generation (agent not running, or busy);
    ``failed``: some items could not be applied (the condition's message lists them).
    """
    applied = condition_of(config, "Applied")
    generation = int(config.get("metadata", {}).get("generation") or 0)
    if applied is None or int(applied.get("observedGeneration") or 0) < generation:
        return "pending"
    return "in_sync" if applied.get("status") == "True" else "failed"


class NodeLinkStates(Collector):
    """Link state per node, read from the NodeConfig cache when scraped.

    Read at scrape time rather than set on writes: the planner does not act on status
    changes, and a node that leaves takes its series with it. The agents themselves serve
    health on loopback only, so the network-manager is where Prometheus sees every node.
    One source per process: the last network-manager built in it (tests build several).
    """

    labelnames = ("cluster", "node", "state")

    def __init__(self) -> None:
        self.source: Callable[[], Iterable[Obj]] = tuple

    def describe(self) -> Iterable[Metric]:
        return [self._family()]

    def collect(self) -> Iterable[Metric]:
        family = self._family()
        for config in self.source():
            cluster = labels_of(config).get(link.LABEL_CLUSTER, "")
            current = link_state(config)
            for state in LINK_STATES:
                family.add_metric([cluster, name_of(config), state], 1 if state == current else 0)
        return [family]

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            NODE_LINK_STATE,
            "1 for the state of the node's NodeConfig as its agent reported it "
            "(in_sync, failed, pending), 0 for the others.",
            labels=list(NodeLinkStates.labelnames),
        )


node_link_states = NodeLinkStates()
REGISTRY.register(node_link_states)
