"""The leaf-node controller: one reconcile per member keeps all its leaf nodes true.

A pass runs on member node/pod changes (coalesced), when a lease falls due and at least
every heartbeat. It probes the member, renews the leases that are due like a kubelet, and
recomputes only the leaves whose inputs changed (``leafwork``: the member nodes the watches
saw change, host leaf Nodes changed under us) plus those whose periodic status report is
due; a changed Cluster, kubelet version or reachability recomputes them all. Node status is
written when it changed and otherwise once per ``node_status_report_seconds`` (a kubelet's
nodeStatusReportFrequency): liveness travels in the Lease, renewed every
``lease_renew_seconds``, spread per leaf, within the host's node-monitor grace period. All of
it goes through its own host client (``Tree.node_client``), so a fleet of leaves cannot
starve pod starts of the main client's budget, nor pod starts their leases.

A member that has not answered for ``unreachable_seconds`` turns its leaf nodes Ready=False
itself (the host's node-lifecycle grace period can be minutes), and the first successful
probe turns them Ready again — no pod is touched either way.
"""

from __future__ import annotations

import contextlib
import logging
import time
import zlib

from kosmos.api.leafmodel import LeafModelError, LeafNode, is_root_cluster, tree_enabled
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
from kosmos.clustertree.leafwork import LeafModels
from kosmos.clustertree.nodeforge import leaf_node, metadata_patch, status_patch
from kosmos.clustertree.tree import Tree
from kosmos.kube.controller import Request, Result
from kosmos.kube.errors import AlreadyExists, KubeError, NotFound
from kosmos.kube.manager import ClusterNotFound

log = logging.getLogger("kosmos.clustertree.leafnodes")

NODE_LEASE_NAMESPACE = "kube-node-lease"
PROBE_TIMEOUT = 5.0
RECOVERY_PROBE_SECONDS = 2.0
#: never requeue sooner than this for a lease falling due (renewals batch per pass)
MIN_REQUEUE_SECONDS = 1.0
#: leases renew (and status reports come) after 90-100% of their interval, by a hash of the
#: leaf's name: leaves created together drift apart instead of writing in one burst forever
SPREAD = 0.1


def spread(name: str) -> float:
    """A stable fraction in [0, 1) per leaf name (not ``hash()``: salted per process)."""
    return (zlib.crc32(name.encode()) & 0xFFFF) / 0x10000


class LeafNodeReconciler:
    """Keyed by member name (``Request(cluster, "", "")``)."""

    def __init__(self, tree: Tree) -> None:
        self.tree = tree
        self._last_ok: dict[str, float] = {}
        self._versions: dict[str, str] = {}
        self._status_written: dict[str, float] = {}
        self._lease_renewed: dict[str, float] = {}
        #: per member: (leaf models, kubelet version, ready) of its last complete pass
        self._seen: dict[str, tuple[LeafModels, str, bool]] = {}
        #: leaves recomputed, over the process's life (what a pass cost; tests read it)
        self.converged = 0
        metrics.leaf_pods.count = self._bound_pods

    def _bound_pods(self, leaf: str) -> int:
        """Host pods bound to ``leaf`` and not finished (read when metrics are scraped)."""
        return sum(1 for p in self.tree.pods.store.by_index("node", leaf) if not pod_terminal(p))

    async def __call__(self, request: Request) -> Result | None:
        cluster_name = request.cluster
        cluster = self.tree.clusters.store.get(cluster_name)
        if cluster is None or is_deleting(cluster) or not tree_enabled(cluster):
            metrics.forget_leaves(cluster_name)
            return None
        if is_root_cluster(cluster):
            return None  # the host's own Cluster never becomes a leaf node
        try:
            models = self.tree.leaf_models(cluster_name)
        except LeafModelError:
            return None  # reported on the Cluster by the cluster controller
        if models is None:
            return None
        try:
            reachable, version = await self._probe(cluster_name)
        except ClusterNotFound:
            return None
        if reachable and not self.tree.member_synced(cluster_name):
            return Result(requeue_after=1.0)
        ready = time.monotonic() - self._last_ok.get(cluster_name, -1e9) < (
            self.tree.options.unreachable_seconds
        )
        if reachable:  # liveness first: a long pass must not let leases lapse
            await self._renew_due_leases(models)
        await self._converge_changed(cluster_name, models, version, ready)
        metrics.member_ready.labels(cluster_name).set(1 if ready else 0)
        # while a member is away, look often: its nodes must be Ready again soon after it is back
        if not reachable:
            return Result(requeue_after=RECOVERY_PROBE_SECONDS)
        return Result(requeue_after=self._next_pass(models))

    async def _converge_changed(
        self, cluster_name: str, models: LeafModels, version: str, ready: bool
    ) -> None:
        """Recompute the leaves whose inputs changed or whose status report is due; all of
        them when the leaf models, the version or reachability changed (or on the first
        pass). A Cluster status update keeps the models (``Tree.leaf_models``)."""
        dirty = self.tree.take_dirty(cluster_name)
        seen = self._seen.get(cluster_name)
        full = seen is None or seen[0] is not models or seen[1:] != (version, ready)
        todo = {leaf.name: leaf for leaf in (models.leaves if full else models.touched(dirty))}
        clock = time.monotonic()
        report = self.tree.options.node_status_report_seconds
        due: set[str] = set()
        for leaf in models.leaves:
            # first sight: as if reported at a spread time, so a restart does not write all
            written = self._status_written.setdefault(leaf.name, clock - spread(leaf.name) * report)
            if clock - written >= self._spread_interval(report, leaf.name):
                due.add(leaf.name)
                todo[leaf.name] = leaf
        self._seen.pop(cluster_name, None)  # a pass that fails half-way is redone in full
        for leaf in todo.values():
            await self._converge(cluster_name, leaf, version, ready, heartbeat=leaf.name in due)
        if full:
            await self._remove_stale(cluster_name, set(models.by_name))
        self._seen[cluster_name] = (models, version, ready)

    def _next_pass(self, models: LeafModels) -> float:
        """Seconds until the next lease falls due, at most a heartbeat."""
        interval = self.tree.options.heartbeat_seconds
        clock = time.monotonic()
        for leaf in models.leaves:
            renewed = self._lease_renewed.get(leaf.name)
            if renewed is not None:
                interval = min(interval, renewed + self._lease_interval(leaf.name) - clock)
        return max(interval, MIN_REQUEUE_SECONDS)

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

    async def _converge(
        self, cluster: str, leaf: LeafNode, version: str, ready: bool, *, heartbeat: bool
    ) -> None:
        self.converged += 1
        members = self.tree.member_nodes(cluster, leaf)
        pods_by_node = self.tree.member(cluster, PODS).store
        pods = [p for m in members for p in pods_by_node.by_index("node", name_of(m))]
        free = free_resources(members, pods)
        metrics.record_leaf(cluster, leaf.name, free)
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
        host = self.tree.node_client()
        current = self.tree.leaf_nodes.store.get(leaf.name)
        if current is None:
            await self._create(desired)
            return
        await self._record_readiness(current, cluster, ready, message)
        meta = metadata_patch(current, desired)
        if meta:
            await host.patch(NODES, leaf.name, meta)
        status = status_patch(current, desired, heartbeat=heartbeat)
        if status:
            await host.patch(NODES, leaf.name, status, subresource="status")
        if status or heartbeat:  # a report found nothing stale: the next is a period away
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
        host = self.tree.node_client()
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

    def _lease_interval(self, node: str) -> float:
        return self._spread_interval(self.tree.options.lease_renew_seconds, node)

    @staticmethod
    def _spread_interval(interval: float, node: str) -> float:
        return interval * (1 - SPREAD * spread(node))

    def _lease_due(self, node: str) -> bool:
        """Renewed once per (spread) interval, not on every pass: capacity changes run a
        pass every second, and a member with N one-to-one leaves would write N leases each
        time."""
        renewed = self._lease_renewed.get(node)
        return renewed is None or time.monotonic() - renewed >= self._lease_interval(node)

    async def _renew_due_leases(self, models: LeafModels) -> None:
        """Renew every due lease; one failing write is retried next pass (a second or so
        later), not allowed to stop the others."""
        for leaf in models.leaves:
            if not self._lease_due(leaf.name):
                continue
            try:
                await self._write_lease(leaf.name)
            except KubeError as exc:
                log.warning("lease of leaf node %s not renewed: %s", leaf.name, exc)
                continue
            self._lease_renewed[leaf.name] = time.monotonic()

    async def _write_lease(self, node: str) -> None:
        host = self.tree.node_client()
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
        host = self.tree.node_client()
        for node in self.tree.leaf_nodes.store.by_index("cluster", cluster):
            name = name_of(node)
            if name not in wanted:
                with contextlib.suppress(NotFound):
                    await host.delete(NODES, name, uid=node["metadata"]["uid"])
                self.tree.leaf_ports.forget(name)
                for memo in (self._status_written, self._lease_renewed):
                    memo.pop(name, None)
                metrics.forget_leaves(cluster, name)
                log.info("leaf node %s removed: no longer in %s's leaf models", name, cluster)
