"""The Cluster controller: members join and leave the manager as their Cluster objects say.

For every Cluster with the tree enabled it loads the member's kubeconfig (Secret reference or
inline), registers the member with the manager (which starts its informers through the hook
in ``wire_member``), reports reachability and the leaf nodes in the Cluster's status, and
holds the ``kosmos.io/cluster-manager`` finalizer. When the Cluster is deleted (``kosmosctl
unjoin``) or its tree disabled, it removes what ClusterTree made: the leaf nodes, the host
pods bound to them, and in the member the pods and copies Kosmos created. Unlike the
original, any spec change (leaf models, kubeconfig) is picked up, not only kubeconfig edits.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging

from kosmos.api import names
from kosmos.api.leafmodel import LeafModelError, is_root_cluster, leaf_nodes, tree_enabled
from kosmos.api.objects import Obj, now
from kosmos.api.resources import CLUSTERS, NODES, PODS, Resource
from kosmos.clustertree.tree import COPIED, MANAGED_SELECTOR, Tree
from kosmos.kube.client import Client
from kosmos.kube.component import HOST
from kosmos.kube.config import from_kubeconfig_text
from kosmos.kube.controller import Request, Result
from kosmos.kube.errors import KubeconfigError, KubeError, NotFound

log = logging.getLogger("kosmos.clustertree.clusters")

POD_SELECTOR = f"{names.LABEL_POD}=true"


class ClusterReconciler:
    """Keyed by Cluster name (``Request(HOST, "", name)``)."""

    def __init__(self, tree: Tree) -> None:
        self.tree = tree
        self._fingerprints: dict[str, str] = {}

    async def __call__(self, request: Request) -> Result | None:
        name = request.name
        cluster = self.tree.clusters.store.get(name)
        if cluster is None:
            await self._forget(name)
            return None
        if is_root_cluster(cluster):
            return None
        meta = cluster["metadata"]
        finalizers = meta.get("finalizers") or []
        if meta.get("deletionTimestamp") or not tree_enabled(cluster):
            if names.FINALIZER_CLUSTER_MANAGER in finalizers:
                await self._clean_up(name)
                await self._set_finalizer(cluster, present=False)
            await self._forget(name)
            return None
        if names.FINALIZER_CLUSTER_MANAGER not in finalizers:
            await self._set_finalizer(cluster, present=True)
        return await self._join(cluster)

    # -- joining ---------------------------------------------------------------------------

    async def _join(self, cluster: Obj) -> Result:
        name = cluster["metadata"]["name"]
        try:
            text = self._kubeconfig(cluster)
            await self._register(name, text)
            leaves = [leaf.name for leaf in leaf_nodes(cluster)]
        except (KubeconfigError, LeafModelError) as exc:
            await self._status(cluster, False, type(exc).__name__.removesuffix("Error"), str(exc))
            return Result(requeue_after=30)
        self.tree.controllers["leafnodes"].enqueue(Request(name, "", ""))
        client = self.tree.manager.client(name)
        try:
            await client.get_raw("/readyz")
        except KubeError as exc:
            await self._status(cluster, False, "MemberUnreachable", str(exc), leaves)
            return Result(requeue_after=10)
        await self._status(cluster, True, "MemberReachable", "member apiserver is ready", leaves)
        return Result(requeue_after=30)

    def _kubeconfig(self, cluster: Obj) -> str:
        name = cluster["metadata"]["name"]
        spec = cluster.get("spec", {})
        if spec.get("kubeconfig"):
            return base64.b64decode(spec["kubeconfig"]).decode()
        ref = spec.get("kubeconfigSecretRef") or {}
        namespace = ref.get("namespace", names.SYSTEM_NAMESPACE)
        secret = self.tree.copied["secrets"].store.get(f"{namespace}/{ref.get('name')}")
        key = ref.get("key", names.KUBECONFIG_SECRET_KEY)
        data = (secret or {}).get("data", {}).get(key)
        if not data:
            raise KubeconfigError(name, f"Secret {namespace}/{ref.get('name')} has no key {key}")
        return base64.b64decode(data).decode()

    async def _register(self, name: str, text: str) -> None:
        """Add the member to the manager; a changed kubeconfig replaces its client."""
        fingerprint = hashlib.sha256(text.encode()).hexdigest()
        if name in self.tree.manager.cluster_names:
            if self._fingerprints.get(name) == fingerprint:
                return
            await self.tree.manager.remove_cluster(name)
        config = await from_kubeconfig_text(name, text, origin=f"Cluster {name} kubeconfig")
        config.qps, config.burst = self.tree.options.member_qps, self.tree.options.member_burst
        self.tree.manager.add_cluster(name, Client(config))
        self._fingerprints[name] = fingerprint
        log.info("member %s registered", name)

    async def _forget(self, name: str) -> None:
        self._fingerprints.pop(name, None)
        if name != HOST:  # the root Cluster going must not take the host's own client along
            await self.tree.manager.remove_cluster(name)

    # -- leaving ---------------------------------------------------------------------------

    async def _clean_up(self, name: str) -> None:
        """Remove the leaf nodes and host pods, then Kosmos's pods and copies in the member."""
        host = self.tree.manager.client(HOST)
        for node in self.tree.leaf_nodes.store.by_index("cluster", name):
            node_name = node["metadata"]["name"]
            for pod in self.tree.pods.store.by_index("node", node_name):
                with contextlib.suppress(NotFound):
                    await host.delete(
                        PODS,
                        pod["metadata"]["name"],
                        pod["metadata"]["namespace"],
                        grace_period_seconds=0,
                    )
            with contextlib.suppress(NotFound):
                await host.delete(NODES, node_name)
        if name not in self.tree.manager.cluster_names:
            return  # never registered (e.g. bad kubeconfig): nothing was created there
        member = self.tree.manager.client(name)
        await _delete_all(member, PODS, POD_SELECTOR)
        for resource in COPIED.values():
            await _delete_all(member, resource, MANAGED_SELECTOR)
        log.info("member %s: leaf nodes, pods and copies removed", name)

    async def _set_finalizer(self, cluster: Obj, *, present: bool) -> None:
        meta = cluster["metadata"]
        finalizers = [
            f for f in meta.get("finalizers") or [] if f != names.FINALIZER_CLUSTER_MANAGER
        ]
        if present:
            finalizers.append(names.FINALIZER_CLUSTER_MANAGER)
        patch = {"metadata": {"finalizers": finalizers, "resourceVersion": meta["resourceVersion"]}}
        with contextlib.suppress(NotFound):
            await self.tree.manager.client(HOST).patch(CLUSTERS, meta["name"], patch)

    async def _status(
        self,
        cluster: Obj,
        ready: bool,
        reason: str,
        message: str,
        leaves: list[str] | None = None,
    ) -> None:
        status = cluster.get("status") or {}
        old = next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), None)
        wanted = "True" if ready else "False"
        items = [{"leafNodeName": n} for n in leaves or []]
        tree_status = {"leafNodeItems": items} if leaves is not None else None
        if (
            old
            and old["status"] == wanted
            and old.get("reason") == reason
            and old.get("message") == message
            and (tree_status is None or status.get("clusterTreeStatus") == tree_status)
        ):
            return
        transition = old["lastTransitionTime"] if old and old["status"] == wanted else now()
        condition = {
            "type": "Ready",
            "status": wanted,
            "reason": reason,
            "message": message[:1000],
            "lastTransitionTime": transition,
            "observedGeneration": cluster["metadata"].get("generation", 0),
        }
        others = [c for c in status.get("conditions") or [] if c["type"] != "Ready"]
        patch: Obj = {"status": {"conditions": [*others, condition]}}
        if tree_status is not None:
            patch["status"]["clusterTreeStatus"] = tree_status
        name = cluster["metadata"]["name"]
        with contextlib.suppress(NotFound):
            await self.tree.manager.client(HOST).patch(CLUSTERS, name, patch, subresource="status")
        if not ready:
            await self.tree.recorder.record(cluster, "Warning", reason, message)


async def _delete_all(client: Client, resource: Resource, selector: str) -> None:
    for obj in (await client.list(resource, label_selector=selector)).items:
        meta = obj["metadata"]
        with contextlib.suppress(NotFound):
            await client.delete(resource, meta["name"], meta.get("namespace"), uid=meta["uid"])
