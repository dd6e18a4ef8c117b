"""The ClusterNode controller: one ClusterNode ``<cluster>-<node>`` per linked member node.

Keyed by member and node (``Request(cluster, "", node)``). A reconcile compares the member's
Node (and, with Calico, its BlockAffinities) with the cached ClusterNode and writes only
what differs, through server-side apply as the ``kosmos-network-manager`` field manager, so
the agent's ``ip``/``ip6``/``interfaceName`` and the elector's ``roles`` are never touched
(``forge`` says which fields are whose). The ``Ready`` condition goes through the status
subresource the same way.

Level-based, both ways: a node that is gone, skipped (leaf node, ``kosmos.io/exclude``) or
being deleted loses its ClusterNode whatever event brought us here — its own delete, the
ClusterNode's events, or the member-wide key ``(cluster, "", "")`` which enqueues every
node the member or the host knows of. That key is enqueued when a member joins (so
ClusterNodes whose node went while this process was down are found) and when the Cluster's
spec changes; a relist of the member's nodes emits deletes for what vanished meanwhile. No
periodic garbage collection is needed.
"""

from __future__ import annotations

import contextlib
import logging

from kosmos.api import names
from kosmos.api.objects import Obj, now
from kosmos.api.resources import CLUSTERNODES
from kosmos.clusterlink import discovery, forge, metrics
from kosmos.clusterlink.discovery import DiscoveryError
from kosmos.clusterlink.link import Link
from kosmos.kube.component import HOST
from kosmos.kube.controller import Request, Result, TerminalError, TerminalHandler
from kosmos.kube.errors import NotFound
from kosmos.kube.manager import ClusterNotFound

log = logging.getLogger("kosmos.clusterlink.clusternodes")


class ClusterNodeReconciler:
    def __init__(self, link: Link) -> None:
        self.link = link

    async def __call__(self, request: Request) -> Result | None:
        cluster_name, node_name = request.cluster, request.name
        if not node_name:
            return self._fan_out(cluster_name)
        name = forge.cluster_node_name(cluster_name, node_name)
        existing = self.link.cluster_nodes.store.get(name)
        cluster = self.link.active(cluster_name)
        if cluster is None:  # unjoined or link disabled: the member controller cleans up
            await self._delete(existing)
            return None
        try:
            node = self.link.nodes(cluster_name).store.get(node_name)
        except ClusterNotFound:
            return None  # not registered (yet): registering enqueues every node
        if not self.link.nodes_synced(cluster_name):
            return Result(requeue_after=1.0)
        if node is None or forge.skip_reason(node):
            await self._delete(existing)
            return None
        if len(name) > forge.MAX_NAME:
            raise TerminalError(
                f"ClusterNode name {name[:60]}... would exceed {forge.MAX_NAME} characters",
                "NameTooLong",
            )
        pod_cidrs = self._pod_cidrs(cluster, node)
        if pod_cidrs is None:
            return Result(requeue_after=1.0)
        await self._ensure(cluster, node, pod_cidrs, existing)
        return None

    def _fan_out(self, cluster: str) -> Result | None:
        """Enqueue every node of the member and every ClusterNode of the cluster."""
        names = {
            cn["spec"]["nodeName"]
            for cn in self.link.cluster_nodes_of(cluster)
            if (cn.get("spec") or {}).get("nodeName")
        }
        try:
            nodes = self.link.nodes(cluster)
        except ClusterNotFound:
            nodes = None
        if nodes is not None:
            if not nodes.has_synced:
                return Result(requeue_after=1.0)
            names.update(n["metadata"]["name"] for n in nodes.store.list())
        for node in names:
            self.link.enqueue("clusternodes", cluster, node)
        metrics.cluster_nodes.labels(cluster).set(len(self.link.cluster_nodes_of(cluster)))
        return None

    def _pod_cidrs(self, cluster: Obj, node: Obj) -> list[str] | None:
        """Calico: the node's confirmed blocks; otherwise (or without Calico's CRDs) the
        node's ``spec.podCIDRs``. None: not known yet (caches filling), so a restart never
        flips a ClusterNode to the nodes' CIDRs and back."""
        name = cluster["metadata"]["name"]
        node_name = node["metadata"]["name"]
        try:
            affinities = None
            if discovery.cni_of(cluster) == "calico":
                if not self.link.calico_crd(name, "blockaffinities").has_synced:
                    return None  # is Calico there? not known yet: decide once, not twice
                affinities = self.link.calico(name, "blockaffinities")
            if affinities is None:
                return discovery.node_cidrs(node)
            if not affinities.has_synced:
                return None
            mine = [
                a
                for a in affinities.store.by_index("node", node_name)
                if discovery.affinity_node(a) == node_name
            ]
            return discovery.block_cidrs(mine)
        except DiscoveryError as exc:
            raise TerminalError(f"member {name}: {exc}", "InvalidPodCIDRs") from exc

    async def _ensure(
        self, cluster: Obj, node: Obj, pod_cidrs: list[str], existing: Obj | None
    ) -> None:
        cluster_name, node_name = cluster["metadata"]["name"], node["metadata"]["name"]
        host = self.link.manager.client(HOST)
        eip = forge.elastic_ip(cluster, node_name)
        want = forge.desired(cluster_name, node_name, pod_cidrs, eip)
        if forge.needs_apply(existing, want):
            existing = await host.apply(
                CLUSTERNODES, want, field_manager=forge.FIELD_MANAGER, force=True
            )
            metrics.cluster_node_writes.labels(cluster_name, "apply").inc()
            log.info("%s: ClusterNode %s applied", cluster_name, want["metadata"]["name"])
        previous = forge.current_ready(existing)
        condition = forge.ready_condition(node, previous, now())
        if forge.condition_differs(previous, condition):
            await host.apply(
                CLUSTERNODES,
                forge.status_body(cluster_name, node_name, condition),
                field_manager=forge.FIELD_MANAGER,
                force=True,
                subresource="status",
            )
            metrics.cluster_node_writes.labels(cluster_name, "status").inc()

    async def _delete(self, existing: Obj | None) -> None:
        """Delete a ClusterNode this process made (the uid guards a re-created one)."""
        if existing is None or not forge.is_ours(existing):
            return
        meta = existing["metadata"]
        with contextlib.suppress(NotFound):
            await self.link.manager.client(HOST).delete(CLUSTERNODES, meta["name"], uid=meta["uid"])
        cluster = (meta.get("labels") or {}).get(names.LABEL_CLUSTER, "")
        metrics.cluster_node_writes.labels(cluster, "delete").inc()
        log.info("ClusterNode %s deleted: its node or Cluster is gone", meta["name"])


def report_on_cluster(link: Link) -> TerminalHandler:
    """A node that cannot get its ClusterNode (name too long, pod CIDRs unreadable) is a
    Warning on its member's Cluster, where the user looks and fixes it; not retried."""

    async def report(request: Request, error: TerminalError) -> None:
        log.warning("ClusterNode for %s: %s (not retried)", request, error.message)
        cluster = link.clusters.store.get(request.cluster)
        if cluster is not None:
            message = f"node {request.name}: {error.message}"
            await link.recorder.record(cluster, "Warning", error.reason, message)

    return report
