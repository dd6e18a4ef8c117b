"""What every ClusterTree controller shares: options, the manager, host caches and indexes.

The host side is read through informers created once at start; member sides are added and
removed at runtime as Clusters join and leave (``clusters.py``). Controllers never keep
their own copies of objects: they look them up here, by key or through an index, so every
reconcile sees one consistent, level-based view.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace

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
from kosmos.clustertree.leafwork import Dirty, LeafModels
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
    #: how often members are probed (and leaf nodes passed over at the least)
    heartbeat_seconds: float = 10.0
    #: a leaf's Lease is renewed after 90-100% of this (spread by name): half the host's
    #: node-monitor grace period (40 s in the local environment's kube-controller-manager,
    #: 50 s by Kubernetes' default), so one failed renewal is retried long before it lapses
    lease_renew_seconds: float = 20.0
    #: a leaf's Node status is written when it changed, else once per this (a kubelet's
    #: nodeStatusReportFrequency); liveness travels in the Lease
    node_status_report_seconds: float = 300.0
    #: rate limit of the host client for leaf Node and Lease writes, apart from the pods'
    #: (N one-to-one leaves renew N / lease_renew_seconds leases a second)
    node_qps: float = 300.0
    node_burst: int = 600
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
    #: per member: the Cluster object last parsed and its leaf models (or its error)
    _leaves: dict[str, tuple[Obj, LeafModels | LeafModelError]] = field(default_factory=dict)
    #: per member: what changed since its last leaf-node pass (the watches fill it)
    dirty: dict[str, Dirty] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._node_client: Client | None = None
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

    def node_client(self) -> Client:
        """The host client for leaf Node and Lease writes: the host's credentials with its
        own rate limiter (``node_qps``), so leases and pod starts never queue behind each
        other. Created on first use; ``close()`` closes it."""
        if self._node_client is None:
            host = self.manager.client(HOST)
            config = replace(host.config, qps=self.options.node_qps, burst=self.options.node_burst)
            self._node_client = Client(config)
        return self._node_client

    async def close(self) -> None:
        if self._node_client is not None:
            await self._node_client.close()

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
        models = self.leaf_models(cluster)
        return models.by_name.get(leaf_name) if models else None

    def leaf_models(self, cluster: str) -> LeafModels | None:
        """The parsed leaf models of ``cluster`` (None: no such Cluster), cached per version
        of the Cluster's spec (the same object while only its status changes); raises
        ``LeafModelError`` for invalid models."""
        cluster_obj = self.clusters.store.get(cluster)
        if cluster_obj is None:
            return None
        cached = self._leaves.get(cluster)
        same_spec = cached is not None and cached[0].get("spec") == cluster_obj.get("spec")
        if cached is not None and cached[0] is not cluster_obj and same_spec:
            # a status update: the same models (same object, so passes stay incremental)
            cached = self._leaves[cluster] = (cluster_obj, cached[1])
        if cached is None or cached[0] is not cluster_obj:
            try:
                parsed: LeafModels | LeafModelError = LeafModels.of(leaf_nodes(cluster_obj))
            except LeafModelError as exc:
                parsed = exc
            cached = self._leaves[cluster] = (cluster_obj, parsed)
        if isinstance(cached[1], LeafModelError):
            raise cached[1]
        return cached[1]

    def mark_dirty(self, cluster: str, *, member_node: str = "", leaf: str = "") -> None:
        """Remember that a member node's capacity or a host leaf Node changed: the next
        leaf-node pass of ``cluster`` recomputes the leaves concerned, not all of them."""
        dirty = self.dirty.setdefault(cluster, Dirty())
        if member_node:
            dirty.member_nodes.add(member_node)
        if leaf:
            dirty.leaves.add(leaf)

    def take_dirty(self, cluster: str) -> Dirty:
        return self.dirty.pop(cluster, None) or Dirty()

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
