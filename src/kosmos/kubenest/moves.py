"""Moving a pool node between the host and a tenant, and back, without losing it.

A kwok node is only a Node object (the cluster's kwok controller keeps it Ready), and a
Node's name is per cluster, so a move creates the node in the target before deleting it
from the source: at every instant the node exists in at least one cluster. The GlobalNode's
``Promoted`` condition says where it is when a move stops half-way; the next reconcile
finishes it (every step here is idempotent).

Real nodes (a kubelet to re-point) are not moved: ``is_kwok`` tells the reconciler, which
says so in a condition instead.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from kosmos.api import names
from kosmos.api.objects import Obj, condition_true, labels_of, now
from kosmos.api.resources import GLOBAL_NODES, NODES
from kosmos.kube.client import Client
from kosmos.kube.errors import AlreadyExists, KubeError, NotFound

log = logging.getLogger("kosmos.kubenest.moves")

KWOK_LABEL = names.LABEL_KWOK_NODE
PROMOTED = "Promoted"
#: the reason of ``Promoted`` for a node lent to a tenant with the ClusterTree plugin: it
#: never left the host (a leaf node in the tenant), so going back is only a release
LENT = "LeafNode"
#: node annotations that describe the source cluster's view, not the node
_DROP_ANNOTATIONS = frozenset(
    {"kubectl.kubernetes.io/last-applied-configuration", "node.alpha.kubernetes.io/ttl"}
)
#: taints node controllers set from their own observations (re-derived by the target)
_CONTROLLER_TAINTS = "node.kubernetes.io/"
_STATUS_FIELDS = ("capacity", "allocatable", "addresses", "nodeInfo", "daemonEndpoints")


def promoted(globalnode: Obj) -> bool:
    """The node is in the tenant and nowhere else (the last step of ``Mover.promote``)."""
    return condition_true(globalnode, PROMOTED)


def lent(globalnode: Obj) -> bool:
    """The node serves its tenant as a leaf node and is still in the host."""
    return any(
        c.get("type") == PROMOTED and c.get("reason") == LENT
        for c in (globalnode.get("status") or {}).get("conditions") or []
    )


def is_kwok(globalnode: Obj) -> bool:
    return KWOK_LABEL in ((globalnode.get("spec") or {}).get("labels") or {})


def node_body(source: Obj | None, name: str, labels: dict[str, str]) -> Obj:
    """The Node to create in the target: ``source``'s identity and capacity (when known)
    with ``labels``; no podCIDR (the target's controller-manager allocates its own)."""
    source = source or {"metadata": {"name": name}}
    meta = source.get("metadata") or {}
    annotations = {
        k: v for k, v in (meta.get("annotations") or {}).items() if k not in _DROP_ANNOTATIONS
    }
    spec: dict[str, Any] = {}
    taints = [
        t
        for t in (source.get("spec") or {}).get("taints") or []
        if not str(t.get("key", "")).startswith(_CONTROLLER_TAINTS)
    ]
    if taints:
        spec["taints"] = taints
    body: Obj = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels, "annotations": annotations},
        "spec": spec,
    }
    status = {k: v for k, v in (source.get("status") or {}).items() if k in _STATUS_FIELDS}
    if status:
        body["status"] = status
    return body


def tenant_labels(source: Obj | None, globalnode: Obj) -> dict[str, str]:
    wanted = {**(labels_of(source) if source else {}), **_pool_labels(globalnode)}
    return {**wanted, names.LABEL_NODE_STATE: "occupied"}


def host_labels(source: Obj | None, globalnode: Obj) -> dict[str, str]:
    """Back in the host a node carries its pool labels (the host's view of it), not the
    labels the tenant added."""
    wanted = _pool_labels(globalnode) or (labels_of(source) if source else {})
    return {**wanted, names.LABEL_NODE_STATE: "free"}


def _pool_labels(globalnode: Obj) -> dict[str, str]:
    labels = dict((globalnode.get("spec") or {}).get("labels") or {})
    labels.pop(names.LABEL_NODE_STATE, None)
    return labels


class Mover:
    """Moves one kwok node between ``host`` and ``tenant``."""

    def __init__(
        self, host: Client, tenant: Client | None, vc_key: str, *, leaving: bool = False
    ) -> None:
        self.host = host
        self.tenant = tenant
        self.vc_key = vc_key
        #: the tenant is being deleted: a tenant that does not answer (or has no client)
        #: does not keep its nodes from the host; its copies go with its control plane
        self.leaving = leaving

    async def occupy(self, globalnode: Obj) -> None:
        """Take the GlobalNode for this VirtualCluster before anything moves: the holder
        first, conditional on the version the pool decided on (a concurrent taker makes it
        a Conflict, not a node with two holders), then ``state: occupied``. Cut between the
        two, the node is free with a holder: the pool offers it again, nothing is lost."""
        name = globalnode["metadata"]["name"]
        await self.mark(
            name,
            {"virtualCluster": self.vc_key},
            False,
            "Occupied",
            f"held by {self.vc_key}; the node is still in the host",
            current=globalnode,
        )
        await self.host.patch(GLOBAL_NODES, name, {"spec": {"state": "occupied"}})

    async def promote(self, globalnode: Obj) -> None:
        """Host -> tenant: create in the tenant, then delete from the host; ``Promoted``
        turns True only when the host copy is gone, so a move cut short is redone."""
        name = globalnode["metadata"]["name"]
        await self.mark(
            name,
            {"virtualCluster": self.vc_key},
            False,
            "Moving",
            f"moving into {self.vc_key}: in the host, maybe in both",
        )
        source = await get_node(self.host, name)
        if source is None:
            source = await get_node(self.require_tenant(), name)  # moved, or lost: rebuild
        await ensure_node(
            self.require_tenant(), node_body(source, name, tenant_labels(source, globalnode))
        )
        with contextlib.suppress(NotFound):
            await self.host.delete(NODES, name)
        await self.mark(
            name,
            {"virtualCluster": self.vc_key},
            True,
            "InVirtualCluster",
            f"the node is in {self.vc_key}",
        )

    async def lend(self, globalnode: Obj) -> None:
        """k8s-in-k8s: the node stays in the host, untouched; the tenant's ClusterTree shows
        it as a leaf node. Only the GlobalNode says where it serves."""
        await self.mark(
            globalnode["metadata"]["name"],
            {"virtualCluster": self.vc_key},
            True,
            LENT,
            f"in the host, serving {self.vc_key} as a leaf node (ClusterTree)",
        )

    async def give_back(self, globalnode: Obj) -> None:
        """Tenant -> host: create in the host, delete from the tenant, GlobalNode free."""
        name = globalnode["metadata"]["name"]
        await self.mark(
            name,
            {"virtualCluster": self.vc_key},
            False,
            "Moving",
            f"moving back from {self.vc_key}: in it, maybe in both",
        )
        source = await self._in_tenant(name)
        if source is None:
            source = await get_node(self.host, name)
        await ensure_node(self.host, node_body(source, name, host_labels(source, globalnode)))
        await self.off_tenant(name)
        await self.release(globalnode)

    async def _in_tenant(self, name: str) -> Obj | None:
        try:
            return await get_node(self.require_tenant(), name)
        except KubeError as error:
            if not self.leaving:
                raise
            log.warning("%s: reading node %s in the leaving tenant: %s", self.vc_key, name, error)
            return None

    async def off_tenant(self, name: str) -> None:
        try:
            with contextlib.suppress(NotFound):
                await self.require_tenant().delete(NODES, name)
        except KubeError as error:
            if not self.leaving:
                raise
            log.warning("%s: node %s left in the leaving tenant: %s", self.vc_key, name, error)

    def require_tenant(self) -> Client:
        if self.tenant is None:
            raise KubeError(f"tenant {self.vc_key}", "no client (spec.kubeconfig unusable)")
        return self.tenant

    async def release(self, globalnode: Obj) -> None:
        name = globalnode["metadata"]["name"]
        await self.host.patch(GLOBAL_NODES, name, {"spec": {"state": "free"}})
        await self.mark(name, {"virtualCluster": None}, False, "InHost", "the node is free")

    async def mark(
        self,
        name: str,
        fields: dict[str, Any],
        promoted: bool,
        reason: str,
        message: str,
        *,
        current: Obj | None = None,
    ) -> None:
        """Set ``fields`` and the ``Promoted`` condition; with ``current``, only if the
        GlobalNode is still that version (Conflict otherwise)."""
        condition = {
            "type": PROMOTED,
            "status": "True" if promoted else "False",
            "reason": reason,
            "message": message,
            "lastTransitionTime": now(),
        }
        meta: Obj = {}
        if current is None:
            current = await self.host.get(GLOBAL_NODES, name)
        else:
            meta = {"resourceVersion": current["metadata"]["resourceVersion"]}
        kept = [
            c
            for c in (current.get("status") or {}).get("conditions") or []
            if c.get("type") != PROMOTED
        ]
        body = {"metadata": meta, "status": {**fields, "conditions": [*kept, condition]}}
        await self.host.patch(GLOBAL_NODES, name, body, subresource="status")


async def get_node(client: Client, name: str) -> Obj | None:
    try:
        return await client.get(NODES, name)
    except NotFound:
        return None


async def ensure_node(client: Client, body: Obj) -> None:
    """Create the node (or relabel the one there) and write its status through the status
    subresource (a create ignores status)."""
    name = body["metadata"]["name"]
    status = body.pop("status", None)
    try:
        await client.create(NODES, body)
    except AlreadyExists:
        labels = body["metadata"]["labels"]
        await client.patch(NODES, name, {"metadata": {"labels": labels}})
    if status:
        await client.patch(NODES, name, {"status": status}, subresource="status")
