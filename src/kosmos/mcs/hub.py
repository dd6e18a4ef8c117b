"""What every MCS controller shares: options, the manager, and each cluster's caches.

The clusterset is the manager's cluster set: the host (id: the root Cluster's name) and
every member ClusterTree registered. Per cluster the controllers read five caches —
ServiceExports, ServiceImports, Services, EndpointSlices, Namespaces — and nothing else:
every reconcile sees one level-based view of the whole clusterset and writes differences.
A cluster whose caches have not synced yet is left alone (never judged empty).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from kosmos.api import names
from kosmos.api.leafmodel import is_root_cluster
from kosmos.api.objects import Obj, is_deleting, labels_of, name_of, namespace_of
from kosmos.api.resources import (
    CLUSTERS,
    ENDPOINTSLICES,
    NAMESPACES,
    NODES,
    SERVICE_EXPORTS,
    SERVICE_IMPORTS,
    SERVICES,
    Resource,
)
from kosmos.kube.component import HOST
from kosmos.kube.controller import Controller
from kosmos.kube.events import EventRecorder
from kosmos.kube.informer import Informer
from kosmos.kube.manager import ClusterNotFound, Manager
from kosmos.mcs import forge

#: a separate leaf-node cache (not ClusterTree's ``=true`` one, whose indexers are its own)
LEAF_NODES = names.LABEL_NODE
RESOURCES: dict[str, Resource] = {
    "exports": SERVICE_EXPORTS,
    "imports": SERVICE_IMPORTS,
    "services": SERVICES,
    "slices": ENDPOINTSLICES,
    "namespaces": NAMESPACES,
}
DEFAULT_RESERVED = frozenset({"kube-system", names.SYSTEM_NAMESPACE})


@dataclass(frozen=True)
class Options:
    """The MCS controllers' knobs (flags in ``app.py``)."""

    enabled: bool = True
    #: host namespaces whose Services are exported without the annotation
    auto_prefixes: tuple[str, ...] = ()
    #: never auto-exported, whatever the annotation or prefix says
    reserved_namespaces: frozenset[str] = DEFAULT_RESERVED
    workers: int = 4


def slice_keys(item: Obj) -> Iterable[str]:
    """Index ``service``: ``<ns>/<service>`` of a slice, ours by the import it serves."""
    labels = labels_of(item)
    if forge.is_mcs_slice(item):
        name = labels.get(names.LABEL_MCS_SERVICE_NAME)
        return [f"mcs:{namespace_of(item)}/{name}"] if name else []
    name = labels.get(names.LABEL_SLICE_SERVICE_NAME)
    return [f"src:{namespace_of(item)}/{name}"] if name else []


@dataclass
class Hub:
    manager: Manager
    options: Options
    recorder: EventRecorder
    controllers: dict[str, Controller] = field(default_factory=dict)
    #: last verdict per (cluster, ns/name): the metrics' export counts
    export_states: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.clusters = self.manager.informer(HOST, CLUSTERS)
        self.leaf_nodes = self.manager.informer(HOST, NODES, label_selector=LEAF_NODES)
        self._attached: set[str] = set()
        self._recorders: dict[str, tuple[object, EventRecorder]] = {}

    # -- caches ----------------------------------------------------------------------------

    def attach(self, cluster: str) -> dict[str, Informer]:
        """The cluster's caches, created on first call (after the MCS CRDs are there)."""
        self._attached.add(cluster)
        return {kind: self.cache(cluster, kind) for kind in RESOURCES}

    def detach(self, cluster: str) -> None:
        self._attached.discard(cluster)

    def cache(self, cluster: str, kind: str) -> Informer:
        indexers = {"service": slice_keys} if kind == "slices" else None
        return self.manager.informer(cluster, RESOURCES[kind], indexers=indexers)

    def recorder_for(self, cluster: str) -> EventRecorder:
        """Events go to the cluster of the object they are about."""
        if cluster == HOST:
            return self.recorder
        client = self.manager.client(cluster)
        known = self._recorders.get(cluster)
        if known is None or known[0] is not client:
            known = (client, EventRecorder(client, self.recorder.component, self.recorder.host))
            self._recorders[cluster] = known
        return known[1]

    def ready(self, cluster: str) -> bool:
        if cluster not in self._attached:
            return False
        try:
            return all(self.cache(cluster, kind).has_synced for kind in RESOURCES)
        except ClusterNotFound:
            return False

    @property
    def members(self) -> list[str]:
        """Every cluster of the clusterset the manager knows (host first); a member whose
        Cluster is being deleted or gone has left already (its cleanup must not race new
        imports while its client is still registered)."""
        live = {name_of(c) for c in self.clusters.store.list() if not is_deleting(c)}
        names_ = [c for c in self.manager.cluster_names if c == HOST or c in live]
        return sorted(names_, key=lambda c: (c != HOST, c))

    def get(self, cluster: str, kind: str, namespace: str, name: str) -> Obj | None:
        return self.cache(cluster, kind).store.get(f"{namespace}/{name}")

    def has_namespace(self, cluster: str, namespace: str) -> bool:
        found = self.cache(cluster, "namespaces").store.get(namespace)
        return found is not None and not found.get("metadata", {}).get("deletionTimestamp")

    def source_slices(self, cluster: str, namespace: str, name: str) -> list[Obj]:
        return self.cache(cluster, "slices").store.by_index("service", f"src:{namespace}/{name}")

    def mcs_slices(self, cluster: str, namespace: str, name: str) -> list[Obj]:
        return self.cache(cluster, "slices").store.by_index("service", f"mcs:{namespace}/{name}")

    def exported_anywhere(self, namespace: str, name: str) -> bool:
        return any(
            self.ready(c) and self.get(c, "exports", namespace, name) is not None
            for c in self.members
        )

    # -- identity and addressing ---------------------------------------------------------------

    def cluster_id(self, cluster: str) -> str:
        """The MCS cluster id: a member's Cluster name; the host's is the root Cluster's."""
        if cluster != HOST:
            return cluster
        for obj in self.clusters.store.list():
            annotations = obj.get("metadata", {}).get("annotations") or {}
            if annotations.get(names.ANNOTATION_CLUSTER_ROLE) == "root":
                return name_of(obj)
        return names.ROOT_CLUSTER_NAME

    def global_maps(self) -> dict[str, dict[str, str]]:
        """Per cluster id: its ClusterLink ``globalCIDRsMap`` (real CIDR -> global CIDR)."""
        out: dict[str, dict[str, str]] = {}
        for obj in self.clusters.store.list():
            options = (obj.get("spec") or {}).get("clusterLinkOptions") or {}
            mapping = options.get("globalCIDRsMap") or {}
            if options.get("enable") is not False and mapping:
                key = self.cluster_id(HOST) if is_root_cluster(obj) else name_of(obj)
                out[key] = dict(mapping)
        return out

    def leaf_owner(self, source: str, node: str) -> str | None:
        """The member behind a host leaf node (a host endpoint's pod IP is that member's)."""
        if source != self.cluster_id(HOST):
            return None
        found = self.leaf_nodes.store.get(node)
        return labels_of(found).get(names.LABEL_OWNER_CLUSTER) if found else None
