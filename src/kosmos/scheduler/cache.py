"""The extender's caches: informers on the host and on every member, read as a ``View``.

Host: nodes, pods (slimmed), ReplicaSets and StatefulSets (replica counts), claims, volumes,
StorageClasses, Clusters and both kinds of distribution policy. Members (added when their
Cluster joins, see ``members``): nodes and pods, for the room left on each member node.
Event handlers keep derived state incremental — requests per node, pods in flight to a
member, the reservation ledger — so a filter call never scans every pod.
"""

from __future__ import annotations

import logging

from kosmos.api import names
from kosmos.api.leafmodel import LeafModelError, LeafNode, leaf_nodes, member_nodes_of
from kosmos.api.objects import Obj
from kosmos.api.resources import (
    CLUSTER_DISTRIBUTION_POLICIES,
    CLUSTERS,
    DISTRIBUTION_POLICIES,
    NODES,
    PERSISTENTVOLUMECLAIMS,
    PERSISTENTVOLUMES,
    PODS,
    REPLICASETS,
    STATEFULSETS,
    STORAGECLASSES,
)
from kosmos.kube.component import HOST
from kosmos.kube.informer import Informer
from kosmos.kube.manager import Manager
from kosmos.scheduler.capacity import (
    NodeUsage,
    Resources,
    Room,
    allocatable_of,
    is_available,
    open_to,
    room_of,
    spread_choice,
    take,
)
from kosmos.scheduler.decide import Owner, Rooms, live
from kosmos.scheduler.inflight import InFlight
from kosmos.scheduler.ledger import Ledger
from kosmos.scheduler.nodetype import HOST_CLUSTER, is_leaf
from kosmos.scheduler.slim import slim_pod, slim_workload

log = logging.getLogger("kosmos.scheduler.cache")

_WORKLOADS = {"ReplicaSet": REPLICASETS, "StatefulSet": STATEFULSETS}


def _controller_ref(pod: Obj) -> Obj | None:
    for ref in pod.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


class _Member:
    """One member's caches and the room accounting derived from them."""

    def __init__(self, nodes: Informer, pods: Informer, usage: NodeUsage) -> None:
        self.nodes = nodes
        self.pods = pods
        self.usage = usage

    @property
    def synced(self) -> bool:
        return self.nodes.has_synced and self.pods.has_synced


class Caches:
    """Every cache the extender reads, wired to one manager; implements ``decide.View``."""

    def __init__(self, manager: Manager, ledger: Ledger) -> None:
        self.manager = manager
        self.ledger = ledger
        informer = manager.informer
        self.nodes = informer(HOST, NODES)
        self.pods = informer(HOST, PODS, transform=slim_pod)
        self.workloads = {
            kind: informer(HOST, resource, transform=slim_workload)
            for kind, resource in _WORKLOADS.items()
        }
        self.claims = informer(HOST, PERSISTENTVOLUMECLAIMS)
        self.volumes = informer(HOST, PERSISTENTVOLUMES)
        self.storage_classes = informer(HOST, STORAGECLASSES)
        self.clusters = informer(HOST, CLUSTERS)
        self.namespaced = informer(HOST, DISTRIBUTION_POLICIES)
        self.cluster_scoped = informer(HOST, CLUSTER_DISTRIBUTION_POLICIES)
        self.host_usage = NodeUsage()
        self.in_flight = InFlight(self._is_leaf_name)
        for handler in (self.host_usage, self.in_flight.host_handler(), ledger.handler()):
            self.pods.add_handler(handler)
        self._members: dict[str, _Member] = {}
        #: parsed once per object version: node name -> (resourceVersion, allocatable)
        self._allocatable: dict[str, tuple[str, Resources]] = {}
        self._leaves: dict[str, tuple[str, list[LeafNode]]] = {}
        manager.on_cluster_added(self._member_added)
        manager.on_cluster_removed(self._member_removed)

    # -- members ---------------------------------------------------------------------------

    def _member_added(self, manager: Manager, cluster: str) -> None:
        if cluster == HOST:
            return
        pods = manager.informer(cluster, PODS, transform=slim_pod)
        usage = NodeUsage()
        pods.add_handler(usage)
        pods.add_handler(self.in_flight.member_handler())
        self._members[cluster] = _Member(manager.informer(cluster, NODES), pods, usage)
        log.info("member %s: watching its nodes and pods", cluster)

    def _member_removed(self, _: Manager, cluster: str) -> None:
        self._members.pop(cluster, None)

    # -- View ------------------------------------------------------------------------------

    def _is_leaf_name(self, name: str) -> bool:
        node = self.nodes.store.get(name)
        return node is not None and is_leaf(node)

    def node(self, name: str) -> Obj | None:
        return self.nodes.store.get(name)

    def policies(self, namespace: str) -> list[Obj]:
        return self.namespaced.store.by_index("namespace", namespace)

    def cluster_policies(self) -> list[Obj]:
        return self.cluster_scoped.store.list()

    def claim(self, key: str) -> Obj | None:
        return self.claims.store.get(key)

    def volume(self, name: str) -> Obj | None:
        return self.volumes.store.get(name)

    def storage_class(self, name: str) -> Obj | None:
        return self.storage_classes.store.get(name)

    def owner_pods(self, owner_uid: str) -> list[Obj]:
        return self.pods.store.by_index("owner", owner_uid)

    def owner(self, pod: Obj) -> Owner | None:
        ref = _controller_ref(pod)
        if ref is None or ref.get("kind") not in _WORKLOADS:
            return None
        kind, name, uid = str(ref["kind"]), str(ref.get("name", "")), str(ref.get("uid", ""))
        namespace = pod.get("metadata", {}).get("namespace", "")
        workload = self.workloads[kind].store.get(f"{namespace}/{name}")
        if workload is not None and workload["metadata"].get("uid") == uid:
            replicas = int(workload["spec"].get("replicas", 1))
        else:  # not cached yet: the pods that exist are the best guess
            replicas = sum(map(live, self.owner_pods(uid))) or 1
        return Owner(kind, uid, f"{namespace}/{name}", replicas)

    def _alloc(self, cluster: str, node: Obj) -> Resources:
        meta = node.get("metadata", {})
        key = f"{cluster}/{meta.get('name', '')}"
        version = str(meta.get("resourceVersion", ""))
        cached = self._allocatable.get(key)
        if cached is None or cached[0] != version:
            cached = (version, allocatable_of(node))
            self._allocatable[key] = cached
        return cached[1]

    def _leaf(self, cluster: Obj, name: str) -> LeafNode | None:
        meta = cluster["metadata"]
        version = str(meta.get("resourceVersion", ""))
        cached = self._leaves.get(meta["name"])
        if cached is None or cached[0] != version:
            try:
                cached = (version, leaf_nodes(cluster))
            except LeafModelError:
                cached = (version, [])
            self._leaves[meta["name"]] = cached
        return next((x for x in cached[1] if x.name == name), None)

    def rooms(self, node: Obj) -> Rooms | None:
        """Free room of the real nodes behind ``node``; None while unknown (not judged)."""
        name = str(node.get("metadata", {}).get("name", ""))
        if not is_leaf(node):
            used = self.host_usage.used(name)
            return Rooms(HOST_CLUSTER, [room_of(node, used, self._alloc(HOST, node))])
        cluster = (node["metadata"].get("labels") or {}).get(names.LABEL_OWNER_CLUSTER, "")
        member = self._members.get(cluster)
        cluster_obj = self.clusters.store.get(cluster)
        if member is None or not member.synced or cluster_obj is None:
            return None
        leaf = self._leaf(cluster_obj, name)
        if leaf is None:
            return None
        behind = [n for n in member_nodes_of(leaf, member.nodes.store.list()) if is_available(n)]
        rooms = [
            room_of(n, member.usage.used(n["metadata"]["name"]), self._alloc(cluster, n))
            for n in behind
        ]
        self._take_in_flight(name, rooms)
        return Rooms(cluster, rooms)

    def _take_in_flight(self, leaf: str, rooms: list[Room]) -> None:
        """Each pod in flight takes room on the member node it was first placed on."""
        by_name = {r.node: r for r in rooms}
        assigned = self.in_flight.assigned
        for uid, (request, tolerations) in self.in_flight.entries(leaf):
            room = by_name.get(assigned.get(uid, ""))
            if room is None:
                room = spread_choice(open_to(rooms, tolerations), request)
                if room is None:
                    continue  # fits nowhere: it will wait in the member
                assigned[uid] = room.node
            take(room, request)

    def not_synced(self) -> list[str]:
        """Host caches still listing (the extender answers with an error until they are)."""
        host = [
            self.nodes,
            self.pods,
            *self.workloads.values(),
            self.claims,
            self.volumes,
            self.storage_classes,
            self.clusters,
            self.namespaced,
            self.cluster_scoped,
        ]
        return [str(i.resource) for i in host if not i.has_synced]
