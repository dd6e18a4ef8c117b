"""Members of the tree: ClusterTree's part of the Cluster controller.

``kosmos.kube.members.MemberRegistry`` does what every component does with Clusters: for
each Cluster with the tree enabled (the root Cluster excepted) it registers the member with
the manager (whose hook in ``watches.py`` starts the member's informers), replaces the client
when the kubeconfig changes, and holds the ``kosmos.io/cluster-manager`` finalizer. Any
spec change (leaf models, kubeconfig) wakes it, not only kubeconfig edits.

``TreeMembers`` is what ClusterTree does around that:

* joined: the leaf-node controller is woken, the member's ``/readyz`` is asked, and the
  Cluster's Ready condition and ``status.clusterTreeStatus.leafNodeItems`` say the answer;
  looked at again every 30 s, every 10 s while the member does not answer;
* a kubeconfig or leaf model that cannot be read: Ready=False with reason ``Kubeconfig`` or
  ``LeafModel``, looked at again every 30 s;
* every Ready=False written also goes out as a Warning event on the Cluster;
* leaving (the Cluster deleted, e.g. by ``kosmosctl unjoin``, or its tree disabled): the leaf
  nodes, the host pods bound to them, and in the member the pods and copies Kosmos created
  are removed before the finalizer goes (docs/clustertree.md, "Unjoin").
"""

from __future__ import annotations

import contextlib
import logging

from kosmos.api import names
from kosmos.api.leafmodel import LeafModelError, leaf_nodes, tree_enabled
from kosmos.api.objects import (
    Obj,
    conditions_of,
    find_condition,
    name_of,
    namespace_of,
    with_condition,
)
from kosmos.api.resources import CLUSTERS, NODES, PODS, Resource
from kosmos.clustertree.leafnodes import PROBE_TIMEOUT
from kosmos.clustertree.tree import COPIED, MANAGED_SELECTOR, Tree
from kosmos.kube.client import Client
from kosmos.kube.component import HOST
from kosmos.kube.controller import Request, Result
from kosmos.kube.errors import KubeconfigError, KubeError, NotFound
from kosmos.kube.members import MemberHooks, MemberPolicy, MemberRegistry

log = logging.getLogger("kosmos.clustertree.clusters")

POD_SELECTOR = f"{names.LABEL_POD}=true"
#: a joined member (or one whose Cluster cannot be read) is looked at again this often
RECHECK_SECONDS = 30.0
#: a member that does not answer is asked again this often
UNREACHABLE_RECHECK_SECONDS = 10.0
#: condition messages are cut to this length (the CRD allows 32768): the status stays readable
MAX_MESSAGE = 1000


def cluster_registry(tree: Tree) -> MemberRegistry:
    """The Cluster controller's reconciler, keyed ``Request(HOST, "", <cluster>)``."""
    rate = (tree.options.member_qps, tree.options.member_burst)
    policy = MemberPolicy(tree_enabled, names.FINALIZER_CLUSTER_MANAGER, "skip", *rate)
    hooks = TreeMembers(tree)
    return MemberRegistry(
        tree.manager, HOST, tree.clusters, policy, hooks, secrets=tree.copied["secrets"]
    )


class TreeMembers(MemberHooks):
    """ClusterTree's follow-up to a member joining, failing and leaving."""

    def __init__(self, tree: Tree) -> None:
        self.tree = tree

    async def joined(self, cluster: Obj) -> Result:
        name = name_of(cluster)
        try:
            leaves = [leaf.name for leaf in leaf_nodes(cluster)]
        except LeafModelError as exc:
            return await self._unreadable(cluster, exc)
        self.tree.controllers["leafnodes"].enqueue(Request(name, "", ""))
        try:
            # the leaf probe's timeout: with the client's default (60 s) a partitioned member
            # stayed Ready here for up to 90 s, long after its leaf nodes were NotReady
            await self.tree.manager.client(name).get_raw("/readyz", timeout=PROBE_TIMEOUT)
        except KubeError as exc:
            await self._ready(cluster, False, "MemberUnreachable", str(exc), leaves)
            return Result(requeue_after=UNREACHABLE_RECHECK_SECONDS)
        await self._ready(cluster, True, "MemberReachable", "member apiserver is ready", leaves)
        return Result(requeue_after=RECHECK_SECONDS)

    async def failed(self, cluster: Obj, error: KubeconfigError) -> Result:
        return await self._unreadable(cluster, error)

    async def leaving(self, name: str) -> None:
        """Remove the leaf nodes and host pods, then Kosmos's pods and copies in the member."""
        await self._remove_leaf_nodes(name)
        if name not in self.tree.manager.cluster_names:
            return  # never registered (e.g. bad kubeconfig): nothing was created there
        member = self.tree.manager.client(name)
        mine = owned(self.tree.options.owner)
        await _delete_all(member, PODS, POD_SELECTOR + mine)
        for resource in COPIED.values():
            await _delete_all(member, resource, MANAGED_SELECTOR + mine)
        for cleanup in self.tree.options.member_cleanups:
            await cleanup(member)
        log.info("member %s: leaf nodes, pods and copies removed", name)

    # -- what the Cluster says -----------------------------------------------------------

    async def _unreadable(self, cluster: Obj, error: KubeconfigError | LeafModelError) -> Result:
        """The Cluster's kubeconfig or leaf models cannot be used: say which, and why."""
        reason = type(error).__name__.removesuffix("Error")
        await self._ready(cluster, False, reason, str(error))
        return Result(requeue_after=RECHECK_SECONDS)

    async def _ready(
        self,
        cluster: Obj,
        ready: bool,
        reason: str,
        message: str,
        leaves: list[str] | None = None,
    ) -> None:
        """Write the Ready condition (and the leaf nodes, when known) if either changed.

        The condition keeps its lastTransitionTime while its status stays
        (``kosmos.api.objects.set_condition``); a Ready=False written is also a Warning event,
        and the way back to Ready a Normal one.
        """
        current = conditions_of(cluster)
        condition = {
            "type": "Ready",
            "status": "True" if ready else "False",
            "reason": reason,
            "message": message[:MAX_MESSAGE],
            "observedGeneration": cluster["metadata"].get("generation", 0),
        }
        conditions = with_condition(current, condition)
        tree_status = {"leafNodeItems": [{"leafNodeName": n} for n in leaves or []]}
        known = (cluster.get("status") or {}).get("clusterTreeStatus")
        if conditions == current and (leaves is None or known == tree_status):
            return
        patch: Obj = {"status": {"conditions": conditions}}
        if leaves is not None:
            patch["status"]["clusterTreeStatus"] = tree_status
        host = self.tree.manager.client(HOST)
        with contextlib.suppress(NotFound):
            await host.patch(CLUSTERS, name_of(cluster), patch, subresource="status")
        if not ready:
            await self.tree.recorder.record(cluster, "Warning", reason, message)
        elif (find_condition(current, "Ready") or {}).get("status") == "False":
            await self.tree.recorder.record(cluster, "Normal", reason, message)  # recovered

    # -- leaving ---------------------------------------------------------------------------

    async def _remove_leaf_nodes(self, cluster: str) -> None:
        """The member's leaf nodes and the host pods bound to them (grace 0: no kubelet)."""
        host = self.tree.manager.client(HOST)
        for node in self.tree.leaf_nodes.store.by_index("cluster", cluster):
            node_name = name_of(node)
            for pod in self.tree.pods.store.by_index("node", node_name):
                with contextlib.suppress(NotFound):
                    await host.delete(PODS, name_of(pod), namespace_of(pod), grace_period_seconds=0)
            with contextlib.suppress(NotFound):
                await host.delete(NODES, node_name)


def owned(owner: str) -> str:
    """The label selector's part that keeps a clean-up to this cluster-manager's objects."""
    return f",{names.LABEL_TREE_OWNER}={owner}" if owner else ""


async def _delete_all(client: Client, resource: Resource, selector: str) -> None:
    for obj in (await client.list(resource, label_selector=selector)).items:
        meta = obj["metadata"]
        with contextlib.suppress(NotFound):
            await client.delete(resource, meta["name"], meta.get("namespace"), uid=meta["uid"])
