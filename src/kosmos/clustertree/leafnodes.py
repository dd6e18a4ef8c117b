"""The leaf-node controller: one reconcile per member keeps all its leaf nodes true.

Each pass (on member node/pod changes, coalesced, and at least every heartbeat) probes the
member, recomputes every leaf node from the caches (labels, taints, free capacity, largest
free node) and writes only what changed; while the member answers it renews each node's
Lease like a kubelet. A member that has not answered for ``unreachable_seconds`` turns its
leaf nodes Ready=False itself (the host's node-lifecycle grace period can be minutes), and
the first successful probe turns them Ready again — no pod is touched either way.
"""

from __future__ import annotations

import contextlib
import logging
import time

from kosmos.api.leafmodel import (
    LeafModelError,
    LeafNode,
    is_root_cluster,
    leaf_nodes,
    tree_enabled,
)
from kosmos.api.objects import (
    Obj,
    condition_of,
    is_deleting,
    micro_now,
    name_of,
    node_ready,
    now,
    pod_terminal,
)
from kosmos.api.resources import LEASES, NODES, PODS
from kosmos.clustertree import metrics
from kosmos.clustertree.capacity import free_resources
from kosmos.clustertree.nodeforge import leaf_node, metadata_patch, status_patch
from kosmos.clustertree.tree import Tree
from kosmos.kube.component import HOST
from kosmos.kube.controller import Request, Result
from kosmos.kube.errors import AlreadyExists, KubeError, NotFound
from kosmos.kube.manager import ClusterNotFound

log = logging.getLogger("kosmos.clustertree.leafnodes")

NODE_LEASE_NAMESPACE = "kube-node-lease"
PROBE_TIMEOUT = 5.0
STATUS_HEARTBEAT_SECONDS = 60.0
RECOVERY_PROBE_SECONDS = 2.0
#: a lease renewed this fraction of a heartbeat ago is fresh enough for a capacity pass
#: (the periodic pass comes a full heartbeat after the last, so it always renews)
LEASE_DUE_FRACTION = 0.8


class LeafNodeReconciler:
    """Keyed by member name (``Request(cluster, "", "")``)."""

    def __init__(self, tree: Tree) -> None:
        self.tree = tree
        self._last_ok: dict[str, float] = {}
        self._versions: dict[str, str] = {}
        self._status_written: dict[str, float] = {}
        self._lease_renewed: dict[str, float] = {}

    async def __call__(self, request: Request) -> Result | None:
        cluster_name = request.cluster
        cluster = self.tree.clusters.store.get(cluster_name)
        if cluster is None or is_deleting(cluster) or not tree_enabled(cluster):
            metrics.forget_leaves(cluster_name)
            return None
        if is_root_cluster(cluster):
            return None  # the host's own Cluster never becomes a leaf node
        try:
            leaves = leaf_nodes(cluster)
        except LeafModelError:
            return None  # reported on the Cluster by the cluster controller
        try:
            reachable, version = await self._probe(cluster_name)
        except ClusterNotFound:
            return None
        if reachable and not self.tree.member_synced(cluster_name):
            return Result(requeue_after=1.0)
        ready = time.monotonic() - self._last_ok.get(cluster_name, -1e9) < (
            self.tree.options.unreachable_seconds
        )
        for leaf in leaves:
            await self._converge(cluster_name, leaf, version, ready)
            if reachable and self._lease_due(leaf.name):
                await self._renew_lease(leaf.name)
        await self._remove_stale(cluster_name, {leaf.name for leaf in leaves})
        metrics.member_ready.labels(cluster_name).set(1 if ready else 0)
        # while a member is away, look often: its nodes must be Ready again soon after it is back
        interval = self.tree.options.heartbeat_seconds if reachable else RECOVERY_PROBE_SECONDS
        return Result(requeue_after=interval)

    async def _probe(self, cluster: str) -> tuple[bool, str]:
        client = self.tree.manager.client(cluster)
        try:
            await client.get_raw("/readyz", timeout=PROBE_TIMEOUT)
            if cluster not in self._versions:
                info = await client.get_raw("/version")
                self._versions[cluster] = str(info.get("gitVersion", ""))
        except KubeError as exc:
            log.info("member %s unreachable: %s", cluster, exc)
            return False, self._versions.get(cluster, "")
        self._last_ok[cluster] = time.monotonic()
        return True, self._versions[cluster]

    async def _converge(self, cluster: str, leaf: LeafNode, version: str, ready: bool) -> None:
        members = self.tree.member_nodes(cluster, leaf)
        pods_by_node = self.tree.member(cluster, PODS).store
        pods = [p for m in members for p in pods_by_node.by_index("node", name_of(m))]
        free = free_resources(members, pods)
        bound = [p for p in self.tree.pods.store.by_index("node", leaf.name) if not pod_terminal(p)]
        metrics.record_leaf(cluster, leaf.name, free, len(bound))
        reason, message = (
            ("KubeletReady", "")
            if ready
            else (
                "MemberUnreachable",
                f"member cluster {cluster} has not answered for "
                f"{self.tree.options.unreachable_seconds:.0f}s",
            )
        )
        desired = leaf_node(
            leaf,
            members,
            free,
            address=self.tree.options.node_address,
            port=await self.tree.leaf_ports.port_of(leaf.name),
            kubelet_version=version,
            ready=ready,
            reason=reason,
            message=message,
            now=now(),
        )
        host = self.tree.manager.client(HOST)
        current = self.tree.leaf_nodes.store.get(leaf.name)
        if current is None:
            await self._create(desired)
            return
        await self._record_readiness(current, cluster, ready, message)
        meta = metadata_patch(current, desired)
        if meta:
            await host.patch(NODES, leaf.name, meta)
        stale = time.monotonic() - self._status_written.get(leaf.name, 0) > STATUS_HEARTBEAT_SECONDS
        status = status_patch(current, desired, heartbeat=stale)
        if status:
            await host.patch(NODES, leaf.name, status, subresource="status")
            self._status_written[leaf.name] = time.monotonic()

    async def _record_readiness(self, node: Obj, cluster: str, ready: bool, why: str) -> None:
        """An Event on the leaf node when it turns NotReady or Ready, like a kubelet's."""
        if node_ready(node) == ready or not condition_of(node, "Ready"):
            return
        if ready:
            message = f"member cluster {cluster} answers again"
            await self.tree.recorder.record(node, "Normal", "NodeReady", message)
        else:
            await self.tree.recorder.record(node, "Warning", "NodeNotReady", why)

    async def _create(self, desired: Obj) -> None:
        host = self.tree.manager.client(HOST)
        name = name_of(desired)
        try:
            await host.create(NODES, {k: v for k, v in desired.items() if k != "status"})
        except AlreadyExists:
            # a node of that name that is not ours (our cache would hold it): never take over
            log.warning("leaf node %s: a node of that name already exists; not taking it", name)
            return
        # a patch, not a PUT: the node-lifecycle controller writes the new node at once
        await host.patch(NODES, name, {"status": desired["status"]}, subresource="status")
        self._status_written[name] = time.monotonic()
        log.info("leaf node %s created", name)

    def _lease_due(self, node: str) -> bool:
        """A lease is renewed once a heartbeat, not on every pass: capacity changes run a
        pass every second, and a member with N one-to-one leaves would write N leases each
        time (the host client's budget, shared with the pods' status writes)."""
        renewed = self._lease_renewed.get(node)
        due = LEASE_DUE_FRACTION * self.tree.options.heartbeat_seconds
        return renewed is None or time.monotonic() - renewed >= due

    async def _renew_lease(self, node: str) -> None:
        await self._write_lease(node)
        self._lease_renewed[node] = time.monotonic()

    async def _write_lease(self, node: str) -> None:
        host = self.tree.manager.client(HOST)
        spec = {
            "holderIdentity": node,
            "leaseDurationSeconds": self.tree.options.lease_seconds,
            "renewTime": micro_now(),
        }
        try:
            await host.patch(LEASES, node, {"spec": spec}, namespace=NODE_LEASE_NAMESPACE)
        except NotFound:
            owner = self.tree.leaf_nodes.store.get(node)
            refs = (
                [
                    {
                        "apiVersion": "v1",
                        "kind": "Node",
                        "name": node,
                        "uid": owner["metadata"]["uid"],
                    }
                ]
                if owner
                else []
            )
            lease = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {
                    "name": node,
                    "namespace": NODE_LEASE_NAMESPACE,
                    "ownerReferences": refs,
                },
                "spec": spec,
            }
            with contextlib.suppress(AlreadyExists):
                await host.create(LEASES, lease)

    async def _remove_stale(self, cluster: str, wanted: set[str]) -> None:
        host = self.tree.manager.client(HOST)
        for node in self.tree.leaf_nodes.store.by_index("cluster", cluster):
            name = name_of(node)
            if name not in wanted:
                with contextlib.suppress(NotFound):
                    await host.delete(NODES, name, uid=node["metadata"]["uid"])
                self.tree.leaf_ports.forget(name)
                metrics.forget_leaves(cluster, name)
                log.info("leaf node %s removed: no longer in %s's leaf models", name, cluster)
