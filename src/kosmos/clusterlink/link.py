"""What every network-manager controller shares: options, the manager, caches and scopes.

One process serves the host and every linked member. Host objects (Clusters, ClusterNodes,
kubeconfig Secrets) are cached through informers created at start; member informers are
created when a member joins (``watches.py``) with the scopes defined here, so a controller
looks a cache up by the same scope and never keeps its own copy of an object. Informers for
CRDs a member may not serve (Calico's) live in ``optional`` and come and go with the CRD.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kosmos.api import names
from kosmos.api.objects import Obj, condition_true, is_deleting, labels_of
from kosmos.api.resources import (
    BLOCKAFFINITIES,
    CALICO_GROUP,
    CLUSTERNODES,
    CLUSTERS,
    CONFIGMAPS,
    CUSTOMRESOURCEDEFINITIONS,
    IPPOOLS,
    NODES,
    PODS,
    SECRETS,
)
from kosmos.clusterlink.discovery import (
    CILIUM_CONFIGMAP,
    CILIUM_NAMESPACE,
    FLANNEL_CONFIGMAP,
    is_apiserver_pod,
)
from kosmos.clusterlink.optional import OptionalInformers
from kosmos.kube.component import HOST
from kosmos.kube.controller import Controller, Request
from kosmos.kube.events import EventRecorder
from kosmos.kube.informer import Informer, strip_bulk
from kosmos.kube.manager import ClusterNotFound, Manager

#: Calico's resources by plural: their informers come and go with their CRD (``optional``)
CALICO = {r.plural: r for r in (IPPOOLS, BLOCKAFFINITIES)}
KUBE_SYSTEM = "kube-system"


@dataclass(frozen=True)
class Options:
    """The network-manager's knobs (flags in ``app.py``)."""

    member_qps: float = 20.0
    member_burst: int = 40
    workers: int = 4
    #: service CIDRs found by the probe cannot be watched: look again this often
    rediscover_seconds: float = 300.0
    #: bursts of member events (a node pool joining) become one discovery per member
    coalesce_seconds: float = 0.5


def link_enabled(cluster: Obj) -> bool:
    """ClusterLink runs for a Cluster with ``clusterLinkOptions`` whose ``enable`` is not false.

    Unlike the tree, no options means off: such Clusters are not ClusterLink's at all.
    """
    options = cluster.get("spec", {}).get("clusterLinkOptions")
    return options is not None and options.get("enable", True) is not False


def slim_pod(pod: Obj) -> Obj:
    """kube-system pods: only apiserver pods are kept whole (thousands of DaemonSet pods
    would otherwise sit in memory for one flag)."""
    pod = strip_bulk(pod)
    if is_apiserver_pod(pod):
        return pod
    meta = pod["metadata"]
    keep = ("name", "namespace", "resourceVersion", "uid")
    return {"metadata": {k: meta[k] for k in keep if k in meta}}


def _by_cluster(obj: Obj) -> Iterable[str]:
    cluster = labels_of(obj).get(names.LABEL_CLUSTER)
    return [cluster] if cluster else []


def _by_node(affinity: Obj) -> Iterable[str]:
    node = (affinity.get("spec") or {}).get("node")
    return [str(node)] if node else []


@dataclass
class Link:
    """The shared state of one network-manager process."""

    manager: Manager
    options: Options
    recorder: EventRecorder
    controllers: dict[str, Controller] = field(default_factory=dict)
    optional: OptionalInformers = field(default_factory=OptionalInformers)
    #: member -> why it has no client (its kubeconfig cannot be loaded); cidrs reports it
    member_errors: dict[str, str] = field(default_factory=dict)
    #: members whose caches and event routes exist (``watches.wire_member``)
    wired: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        informer = self.manager.informer
        self.clusters = informer(HOST, CLUSTERS)
        self.cluster_nodes = informer(HOST, CLUSTERNODES, indexers={"cluster": _by_cluster})
        self.secrets = informer(HOST, SECRETS, namespace=names.SYSTEM_NAMESPACE)

    # -- controllers (declared by ``app.build``) -----------------------------------------------

    def enqueue(self, controller: str, cluster: str, name: str = "") -> None:
        self.controllers[controller].enqueue(Request(cluster, "", name))

    def enqueue_soon(self, controller: str, cluster: str, name: str = "") -> None:
        """Coalesce a burst of events into one reconcile shortly after."""
        queue = self.controllers[controller].queue
        queue.add_after(Request(cluster, "", name), self.options.coalesce_seconds)

    # -- host lookups ----------------------------------------------------------------------

    def active(self, name: str) -> Obj | None:
        """The Cluster if ClusterLink should serve it now: present, enabled, not deleting."""
        cluster = self.clusters.store.get(name)
        if cluster is None or is_deleting(cluster):
            return None
        return cluster if link_enabled(cluster) else None

    def cluster_nodes_of(self, cluster: str) -> list[Obj]:
        return self.cluster_nodes.store.by_index("cluster", cluster)

    # -- member caches (created on first use; ClusterNotFound once the member left) ----------

    def nodes(self, cluster: str) -> Informer:
        return self.manager.informer(cluster, NODES)

    def apiserver_pods(self, cluster: str) -> Informer:
        return self.manager.informer(cluster, PODS, namespace=KUBE_SYSTEM, transform=slim_pod)

    def flannel_configs(self, cluster: str) -> Informer:
        selector = f"metadata.name={FLANNEL_CONFIGMAP}"
        return self.manager.informer(cluster, CONFIGMAPS, field_selector=selector)

    def cilium_configs(self, cluster: str) -> Informer:
        selector = f"metadata.name={CILIUM_CONFIGMAP}"
        return self.manager.informer(
            cluster, CONFIGMAPS, namespace=CILIUM_NAMESPACE, field_selector=selector
        )

    def calico_crd(self, cluster: str, plural: str) -> Informer:
        selector = f"metadata.name={plural}.{CALICO_GROUP}"
        return self.manager.informer(cluster, CUSTOMRESOURCEDEFINITIONS, field_selector=selector)

    def calico(self, cluster: str, plural: str) -> Informer | None:
        """The member's Calico cache of ``plural``; None while the CRD is not served."""
        return self.optional.get(cluster, plural)

    def member_caches(self, cluster: str) -> list[Informer]:
        return [
            self.nodes(cluster),
            self.apiserver_pods(cluster),
            self.flannel_configs(cluster),
            self.cilium_configs(cluster),
            *(self.calico_crd(cluster, plural) for plural in CALICO),
        ]

    def unsynced(self, cluster: str) -> list[str] | None:
        """The member's caches without a full list yet; None if it is not a member."""
        try:
            return [str(i.resource) for i in self.member_caches(cluster) if not i.has_synced]
        except ClusterNotFound:
            return None

    def nodes_synced(self, cluster: str) -> bool:
        try:
            return self.nodes(cluster).has_synced
        except ClusterNotFound:
            return False


def calico_indexers(plural: str) -> dict[str, Any]:
    return {"node": _by_node} if plural == BLOCKAFFINITIES.plural else {}


def crd_established(crd: Obj | None) -> bool:
    return condition_true(crd or {}, "Established")
