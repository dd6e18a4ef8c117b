"""Which watch events wake which controller, for the host and for each member.

Handlers only compute keys and enqueue (never block); a key names the member it concerns,
so one controller serves every member. Member informers are created here when a member is
added to the manager, with the scopes the controllers later look them up by.
"""

from __future__ import annotations

from collections.abc import Callable

from kosmos.api import names
from kosmos.api.objects import Obj, labels_of, name_of, namespace_of, pod_phase
from kosmos.api.resources import NODES, PERSISTENTVOLUMECLAIMS, PODS
from kosmos.clustertree.adopt import is_migrated
from kosmos.clustertree.podforge import is_kosmos_pod
from kosmos.clustertree.tree import (
    COPIED,
    MANAGED_SELECTOR,
    Tree,
    by_node,
    pod_dependency_keys,
)
from kosmos.kube.component import HOST
from kosmos.kube.controller import Request
from kosmos.kube.informer import ChangeHandler, EnqueueHandler
from kosmos.kube.manager import Manager

#: member capacity changes are coalesced: one leaf-node pass per member per this many seconds
CAPACITY_COALESCE_SECONDS = 1.0


def _request(cluster: str, obj: Obj) -> Request:
    """The request naming ``obj`` (namespace and name) in ``cluster``."""
    return Request(cluster, namespace_of(obj), name_of(obj))


def route_host_events(tree: Tree) -> None:
    ctl = tree.controllers

    def cluster_changed(obj: Obj) -> None:
        name = name_of(obj)
        ctl["clusters"].enqueue(Request(HOST, "", name))
        ctl["leafnodes"].enqueue(Request(name, "", ""))

    tree.clusters.add_handler(EnqueueHandler(cluster_changed))

    def kubeconfig_changed(secret: Obj) -> None:
        if namespace_of(secret) != names.SYSTEM_NAMESPACE:
            return
        for cluster in tree.clusters.store.list():
            ref = cluster.get("spec", {}).get("kubeconfigSecretRef") or {}
            if ref.get("name") == name_of(secret):
                ctl["clusters"].enqueue(Request(HOST, "", name_of(cluster)))

    tree.copied["secrets"].add_handler(EnqueueHandler(kubeconfig_changed))

    def pod_changed(old: Obj | None, new: Obj | None) -> None:
        pod = new or old
        assert pod is not None
        cluster = tree.cluster_of_pod(pod)
        if cluster is None:
            return
        ctl["pods"].enqueue(_request(cluster, pod))
        if new is None or (old is not None and pod_phase(old) != pod_phase(new)):
            for dep in pod_dependency_keys(pod):
                _enqueue_dep(tree, cluster, namespace_of(pod), dep)

    tree.pods.add_handler(ChangeHandler(pod_changed))

    def leaf_node_added(node: Obj) -> None:
        for pod in tree.pods.store.by_index("node", name_of(node)):
            cluster = tree.cluster_of_pod(pod)
            if cluster:
                ctl["pods"].enqueue(_request(cluster, pod))

    def leaf_node_changed(old: Obj | None, new: Obj | None) -> None:
        """A host leaf Node changed under us (or by our own write): the next pass of its
        member checks that one leaf again (a deleted one is recreated)."""
        if new is not None:
            leaf_node_added(new)
        node = new or old
        assert node is not None
        cluster = labels_of(node).get(names.LABEL_OWNER_CLUSTER)
        if cluster:
            tree.mark_dirty(cluster, leaf=name_of(node))
            ctl["leafnodes"].queue.add_after(Request(cluster, "", ""), CAPACITY_COALESCE_SECONDS)

    tree.leaf_nodes.add_handler(ChangeHandler(leaf_node_changed))

    for plural, informer in tree.copied.items():
        informer.add_handler(EnqueueHandler(_source_changed(tree, plural)))
    tree.pvcs.add_handler(EnqueueHandler(lambda claim: _claim_changed(tree, claim)))
    tree.volumes.add_handler(
        EnqueueHandler(lambda pv: ctl["volumes"].enqueue(Request(HOST, "", name_of(pv))))
    )


def _enqueue_dep(tree: Tree, cluster: str, namespace: str, dep: str) -> None:
    plural, _, name = dep.partition("/")
    if plural == "persistentvolumeclaims":
        tree.controllers["volumes"].enqueue(Request(cluster, namespace, name))
    else:
        tree.controllers["copies"].enqueue(Request(cluster, namespace, dep))


def _source_changed(tree: Tree, plural: str) -> Callable[[Obj], None]:
    def changed(source: Obj) -> None:
        namespace, name = namespace_of(source), name_of(source)
        if tree.reserved(namespace):
            return
        key = f"{namespace}/{name}"
        dep = f"{plural}/{name}"
        for cluster in tree.manager.cluster_names:
            if cluster == HOST:
                continue
            cache = tree.member(cluster, COPIED[plural], label_selector=MANAGED_SELECTOR)
            if key in cache.store or tree.users(cluster, namespace, dep):
                tree.controllers["copies"].enqueue(Request(cluster, namespace, dep))

    return changed


def _claim_changed(tree: Tree, claim: Obj) -> None:
    for cluster in tree.manager.cluster_names:  # the host's request, then every member's
        tree.controllers["volumes"].enqueue(_request(cluster, claim))


def route_member_events(tree: Tree, cluster: str) -> None:
    """Create a member's informers and route their events (the manager's cluster hook)."""
    if cluster == HOST:
        return
    ctl = tree.controllers
    leaf_key = Request(cluster, "", "")

    def capacity_changed(*member_nodes: str) -> None:
        """Those member nodes changed (a Node, or the node of a foreign pod): the next
        pass, coalesced, recomputes only their leaves."""
        for name in member_nodes:
            tree.mark_dirty(cluster, member_node=name)
        ctl["leafnodes"].queue.add_after(leaf_key, CAPACITY_COALESCE_SECONDS)

    nodes = tree.manager.informer(cluster, NODES)
    nodes.add_handler(EnqueueHandler(lambda obj: capacity_changed(name_of(obj))))
    pods = tree.manager.informer(
        cluster, PODS, indexers={"node": by_node}, transform=tree.pod_transform
    )

    def member_pod_changed(old: Obj | None, new: Obj | None) -> None:
        """Kosmos's pods, and those a migration marked (one may be adopted, or may just have
        been, when its mark arrives after the host pod), wake the pod controller; foreign
        pods (before or after the change) the member's capacity."""
        pod = new or old
        assert pod is not None
        sides = [p for p in (old, new) if p is not None]
        ours = sum(1 for p in sides if is_kosmos_pod(p, tree.options.owner))
        if ours or is_migrated(pod):
            ctl["pods"].enqueue(_request(cluster, pod))
        if ours < len(sides):
            capacity_changed(*{node for p in sides for node in by_node(p)})

    pods.add_handler(ChangeHandler(member_pod_changed))
    for plural, resource in COPIED.items():
        informer = tree.manager.informer(cluster, resource, label_selector=MANAGED_SELECTOR)
        informer.add_handler(EnqueueHandler(_copy_changed(tree, cluster, plural)))
    claims = tree.manager.informer(cluster, PERSISTENTVOLUMECLAIMS, label_selector=MANAGED_SELECTOR)
    claims.add_handler(EnqueueHandler(lambda obj: ctl["volumes"].enqueue(_request(cluster, obj))))
    ctl["leafnodes"].enqueue(leaf_key)


def _copy_changed(tree: Tree, cluster: str, plural: str) -> Callable[[Obj], None]:
    def changed(obj: Obj) -> None:
        dep = f"{plural}/{name_of(obj)}"
        tree.controllers["copies"].enqueue(Request(cluster, namespace_of(obj), dep))

    return changed


def wire(tree: Tree) -> None:
    route_host_events(tree)

    def added(_manager: Manager, cluster: str) -> None:
        route_member_events(tree, cluster)

    tree.manager.on_cluster_added(added)
