"""What every ClusterTree controller shares: options, the manager, host caches and indexes.

The host side is read through informers created once at start; member sides are added and
removed at runtime as Clusters join and leave (``clusters.py``). Controllers never keep
their own copies of objects: they look them up here, by key or through an index, so every
reconcile sees one consistent, level-based view.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from kosmos.api import names
from kosmos.api.leafmodel import LeafModelError, LeafNode, leaf_nodes, member_nodes_of
from kosmos.api.objects import Obj, labels_of, name_of, namespace_of, pod_terminal
from kosmos.api.resources import (
    CLUSTER_POD_CONVERT_POLICIES,
    CLUSTERS,
    CONFIGMAPS,
    NODES,
    PERSISTENTVOLUMECLAIMS,
    PERSISTENTVOLUMES,
    POD_CONVERT_POLICIES,
    PODS,
    SECRETS,
    SERVICEACCOUNTS,
    SERVICES,
    STORAGECLASSES,
    Resource,
)
from kosmos.clustertree.leafports import LeafPorts
from kosmos.clustertree.podcache import pod_transform
from kosmos.clustertree.podforge import dependencies
from kosmos.kube.client import Client
from kosmos.kube.compact import Sharer
from kosmos.kube.component import HOST
from kosmos.kube.controller import Controller
from kosmos.kube.events import EventRecorder
from kosmos.kube.informer import Informer
from kosmos.kube.manager import ClusterNotFound, Manager

#: copied objects in members carry this label; informers there watch only these
MANAGED_SELECTOR = f"{names.LABEL_MANAGED_BY}={names.MANAGED_BY_KOSMOS}"
LEAF_NODE_SELECTOR = f"{names.LABEL_NODE}=true"
#: the kinds copied into members for the pods that use them
COPIED = {r.plural: r for r in (CONFIGMAPS, SECRETS, SERVICEACCOUNTS)}


@dataclass(frozen=True)
class Options:
    """The cluster-manager's knobs (flags in ``app.py``; the shared ones are ``Common``'s)."""

    #: address and port the host apiserver uses to reach our kubelet endpoint
    node_address: str = "127.0.0.1"
    kubelet_port: int = 10250
    kubelet_client_ca: str | None = None
    #: authenticate (client certificate or TokenReview) and authorize (SubjectAccessReview)
    #: every kubelet endpoint request, as a kubelet in webhook mode
    kubelet_auth: bool = True
    #: how often leases are renewed and members probed
    heartbeat_seconds: float = 10.0
    #: a member unreachable this long turns its leaf nodes NotReady (kubelet lease window)
    unreachable_seconds: float = 40.0
    lease_seconds: int = 40
    reserved_namespaces: frozenset[str] = frozenset({"kube-system", "kube-node-lease"})
    #: member client rate limits: a create per pod plus the copies it needs; the defaults
    #: are the flags' (``app.COMMON_DEFAULTS``, sized there)
    member_qps: float = 200.0
    member_burst: int = 400
    workers: int = 16
    #: ``--multi-cluster-service``: the MCS controllers run in this process (False: the
    #: seed's central mode, where pods on leaf nodes resolve through the host's DNS)
    multi_cluster_service: bool = True
    #: what other parts of this process remove from a member that leaves, after the tree's
    #: own objects (the launcher composes them; e.g. the MCS controller's imports and slices)
    member_cleanups: tuple[Callable[[Client], Awaitable[None]], ...] = ()
    #: the host's DNS Service (namespace, name) member pods use in central mode
    root_dns_service: tuple[str, str] = ("kube-system", "kube-dns")
    #: ``--owner``: this cluster-manager's pods and copies in members carry
    #: ``LABEL_TREE_OWNER=<owner>`` and only those are its own (deleted as orphans, cleaned
    #: up on leave): several control planes may then share a member (kubenest tenants
    #: sharing the host); empty: every Kosmos pod of a member is ours, as before
    owner: str = ""


def pod_dependency_keys(pod: Obj) -> Iterable[str]:
    """Index values ``<plural>/<name>`` of what a host pod needs copied into its member."""
    if not pod.get("spec", {}).get("nodeName"):
        return []
    deps = dependencies(pod)
    keys = [f"configmaps/{n}" for n in deps.configmaps]
    keys += [f"secrets/{n}" for n in deps.secrets]
    keys += [f"persistentvolumeclaims/{n}" for n in deps.pvcs]
    if deps.service_account:
        keys.append(f"serviceaccounts/{deps.service_account}")
    return keys


def by_node(pod: Obj) -> list[str]:
    """Index values of a pod: the node it is bound to (none while unbound)."""
    node = pod.get("spec", {}).get("nodeName")
    return [node] if node else []


def _by_cluster(node: Obj) -> Iterable[str]:
    cluster = labels_of(node).get(names.LABEL_OWNER_CLUSTER)
    return [cluster] if cluster else []


@dataclass
class Tree:
    """The shared state of one cluster-manager process."""

    manager: Manager
    options: Options
    recorder: EventRecorder
    controllers: dict[str, Controller] = field(default_factory=dict)
    #: (member, plural, ns/name) of member objects found to exist without our label
    foreign: set[tuple[str, str, str]] = field(default_factory=set)
    #: per member: the Cluster object last parsed and its leaf nodes by name (or its error)
    _leaves: dict[str, tuple[Obj, dict[str, LeafNode] | LeafModelError]] = field(
        default_factory=dict
    )

    def __post_init__(self) -> None:
        informer = self.manager.informer
        #: one sharing table for the host's and every member's pods (alike objects)
        self.pod_transform = pod_transform(Sharer())
        self.clusters = informer(HOST, CLUSTERS)
        self.leaf_nodes = informer(
            HOST, NODES, label_selector=LEAF_NODE_SELECTOR, indexers={"cluster": _by_cluster}
        )
        self.pods = informer(
            HOST,
            PODS,
            indexers={"node": by_node, "deps": pod_dependency_keys},
            transform=self.pod_transform,
        )
        self.leaf_ports = LeafPorts(self.leaf_nodes.store, self.options.kubelet_port)
        self.copied: dict[str, Informer] = {
            plural: informer(HOST, resource) for plural, resource in COPIED.items()
        }
        self.pvcs = informer(HOST, PERSISTENTVOLUMECLAIMS)
        self.volumes = informer(HOST, PERSISTENTVOLUMES)
        self.services = informer(HOST, SERVICES)
        self.policies = informer(HOST, POD_CONVERT_POLICIES)
        self.cluster_policies = informer(HOST, CLUSTER_POD_CONVERT_POLICIES)
        self.storage_classes = informer(HOST, STORAGECLASSES)

    # -- lookups ---------------------------------------------------------------------------

    def cluster_of_node(self, node_name: str) -> str | None:
        """The member Cluster behind a host leaf node (None: not a leaf node)."""
        node = self.leaf_nodes.store.get(node_name)
        if node is None:
            return None
        return labels_of(node).get(names.LABEL_OWNER_CLUSTER)

    def cluster_of_pod(self, pod: Obj) -> str | None:
        node = pod.get("spec", {}).get("nodeName")
        return self.cluster_of_node(node) if node else None

    def leaf(self, cluster: str, leaf_name: str) -> LeafNode | None:
        """The leaf model ``leaf_name`` of member ``cluster`` (None: no such leaf or Cluster).

        Per pod, in O(1): the Cluster's models are parsed once per version of the Cluster
        object (one-to-one members declare a model per member node). Raises
        ``LeafModelError`` for a Cluster whose models are invalid."""
        cluster_obj = self.clusters.store.get(cluster)
        if cluster_obj is None:
            return None
        cached = self._leaves.get(cluster)
        if cached is None or cached[0] is not cluster_obj:
            try:
                parsed: dict[str, LeafNode] | LeafModelError = {
                    leaf.name: leaf for leaf in leaf_nodes(cluster_obj)
                }
            except LeafModelError as exc:
                parsed = exc
            cached = self._leaves[cluster] = (cluster_obj, parsed)
        if isinstance(cached[1], LeafModelError):
            raise cached[1]
        return cached[1].get(leaf_name)

    def member_nodes(self, cluster: str, leaf: LeafNode) -> list[Obj]:
        """The member Node objects ``leaf`` stands for: one-to-one is a lookup, not a scan
        (a member with N one-to-one leaves would otherwise be scanned N times a pass)."""
        store = self.member(cluster, NODES).store
        if leaf.mode == "one-to-one":
            node = store.get(leaf.member_node or "")
            return member_nodes_of(leaf, [node] if node is not None else [])
        return member_nodes_of(leaf, store.list())

    def leaf_node_names(self, cluster: str) -> list[str]:
        return [name_of(n) for n in self.leaf_nodes.store.by_index("cluster", cluster)]

    def pods_on_cluster(self, cluster: str) -> list[Obj]:
        pods: list[Obj] = []
        for node in self.leaf_node_names(cluster):
            pods.extend(self.pods.store.by_index("node", node))
        return pods

    def users(self, cluster: str, namespace: str, dep: str) -> list[Obj]:
        """Host pods on ``cluster``'s leaf nodes that need ``dep`` (``<plural>/<name>``):
        each user's node looked up, never the member's leaf nodes listed."""
        return [
            pod
            for pod in self.pods.store.by_index("deps", dep)
            if namespace_of(pod) == namespace
            and self.cluster_of_pod(pod) == cluster
            and not pod_terminal(pod)
        ]

    def member(self, cluster: str, resource: Resource, **scope: str) -> Informer:
        """A member informer (created on first use); ClusterNotFound once it left."""
        return self.manager.informer(cluster, resource, **scope)

    def member_synced(self, cluster: str) -> bool:
        try:
            return self.member(cluster, PODS).has_synced
        except ClusterNotFound:
            return False

    def reserved(self, namespace: str) -> bool:
        return namespace in self.options.reserved_namespaces
