"""Which watch events wake which network-manager controller, on the host and in each member.

Handlers only compute keys and enqueue. Keys are ``Request(<Cluster name>, "", <name>)``:
``members`` uses ``(HOST, "", cluster)``; ``cidrs`` one key per member ``(cluster, "", "")``;
``clusternodes`` one key per member node ``(cluster, "", node)`` and ``(cluster, "", "")``
for "look at every node of this member" (a join, a spec change, Calico coming or going);
``ippools`` one key per member, woken by any linked Cluster's CIDRs.
Member events that cannot change a ClusterNode or a CIDR (node heartbeats, unrelated
kube-system pods) are filtered out here, so a 1k-node member costs nothing at rest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kosmos.api import names
from kosmos.api.objects import Obj, is_deleting, name_of
from kosmos.api.resources import BLOCKAFFINITIES
from kosmos.clusterlink.discovery import affinity_node, is_apiserver_pod
from kosmos.clusterlink.forge import node_view
from kosmos.clusterlink.link import CALICO, Link, calico_indexers, crd_established
from kosmos.kube.component import HOST
from kosmos.kube.informer import ChangeHandler, EnqueueHandler
from kosmos.kube.manager import Manager

Change = Callable[[Obj | None, Obj | None], None]


def _spec_view(cluster: Obj | None) -> tuple[Any, ...]:
    if cluster is None:
        return ()
    return (cluster.get("spec"), is_deleting(cluster))


def _cidrs_view(cluster: Obj | None) -> tuple[Any, ...]:
    """What other members' IPPools depend on: the CIDRs, the global map, being linked."""
    if cluster is None:
        return ()
    status = (cluster.get("status") or {}).get("clusterLinkStatus")
    return (_spec_view(cluster), status)


def route_host_events(link: Link) -> None:
    def cluster_changed(old: Obj | None, new: Obj | None) -> None:
        cluster = new or old
        assert cluster is not None
        name = name_of(cluster)
        link.enqueue("members", HOST, name)
        link.enqueue("cidrs", name)
        if _spec_view(old) != _spec_view(new):
            link.enqueue("clusternodes", name)
        if _cidrs_view(old) != _cidrs_view(new):
            for member in link.wired:
                link.enqueue_soon("ippools", member)

    link.clusters.add_handler(ChangeHandler(cluster_changed))

    def cluster_node_changed(obj: Obj) -> None:
        cluster = (obj["metadata"].get("labels") or {}).get(names.LABEL_CLUSTER)
        node = (obj.get("spec") or {}).get("nodeName")
        if cluster and node:
            link.enqueue("clusternodes", cluster, node)

    link.cluster_nodes.add_handler(EnqueueHandler(cluster_node_changed))

    def secret_changed(secret: Obj) -> None:
        name = name_of(secret)
        for cluster in link.clusters.store.list():
            if (cluster.get("spec", {}).get("kubeconfigSecretRef") or {}).get("name") == name:
                link.enqueue("members", HOST, name_of(cluster))

    link.secrets.add_handler(EnqueueHandler(secret_changed))


def wire_member(link: Link, cluster: str) -> None:
    """Create a member's caches and route their events (idempotent per member)."""
    if cluster in link.wired:
        return
    link.wired.add(cluster)

    def node_changed(old: Obj | None, new: Obj | None) -> None:
        node = new or old
        assert node is not None
        if old is None or new is None or node_view(old) != node_view(new):
            link.enqueue("clusternodes", cluster, name_of(node))
            link.enqueue_soon("cidrs", cluster)

    link.nodes(cluster).add_handler(ChangeHandler(node_changed))

    def apiserver_changed(old: Obj | None, new: Obj | None) -> None:
        if any(p is not None and is_apiserver_pod(p) for p in (old, new)) and _containers(
            old
        ) != _containers(new):
            link.enqueue_soon("cidrs", cluster)

    link.apiserver_pods(cluster).add_handler(ChangeHandler(apiserver_changed))
    for informer in (link.flannel_configs(cluster), link.cilium_configs(cluster)):
        informer.add_handler(EnqueueHandler(lambda _obj: link.enqueue_soon("cidrs", cluster)))
    for plural in CALICO:
        link.calico_crd(cluster, plural).add_handler(
            ChangeHandler(_crd_changed(link, cluster, plural))
        )
    link.enqueue("cidrs", cluster)
    link.enqueue("clusternodes", cluster)
    link.enqueue("ippools", cluster)


def _containers(pod: Obj | None) -> Any:
    if pod is None:
        return None
    return [(c.get("command"), c.get("args")) for c in pod.get("spec", {}).get("containers", [])]


def _crd_changed(link: Link, cluster: str, plural: str) -> Change:
    """Start the Calico informer when its CRD is Established, stop it when the CRD goes."""

    def changed(_old: Obj | None, new: Obj | None) -> None:
        if crd_established(new):
            handler = ChangeHandler(_calico_changed(link, cluster, plural))
            started = link.optional.ensure(
                link.manager.client(cluster),
                CALICO[plural],
                handler,
                indexers=calico_indexers(plural),
            )
        else:
            started = link.optional.stop(cluster, plural)
        if started:
            link.enqueue("cidrs", cluster)
            link.enqueue("clusternodes", cluster)
            link.enqueue("ippools", cluster)

    return changed


def _calico_changed(link: Link, cluster: str, plural: str) -> Change:
    def changed(old: Obj | None, new: Obj | None) -> None:
        if plural != BLOCKAFFINITIES.plural:
            link.enqueue_soon("cidrs", cluster)
            link.enqueue_soon("ippools", cluster)
            return
        for obj in (old, new):
            node = affinity_node(obj) if obj else None
            if node:
                link.enqueue("clusternodes", cluster, node)

    return changed


def forget_member(link: Link, cluster: str) -> None:
    """A member left the manager (unjoined, link disabled, new kubeconfig)."""
    link.wired.discard(cluster)
    link.optional.stop_cluster(cluster)


def wire(link: Link) -> None:
    route_host_events(link)

    def added(_manager: Manager, cluster: str) -> None:
        if cluster != HOST:  # the host is a member only if its root Cluster says so
            wire_member(link, cluster)

    def removed(_manager: Manager, cluster: str) -> None:
        forget_member(link, cluster)

    link.manager.on_cluster_added(added)
    link.manager.on_cluster_removed(removed)
