"""Persistent volumes for pods on leaf nodes: Kosmos as the provisioner of a host StorageClass.

The stock host scheduler will not place a pod whose claim is unbound unless the claim's
StorageClass has ``volumeBindingMode: WaitForFirstConsumer`` and a provisioner. Kosmos is
that provisioner (``kosmos.io/leaf``): when the scheduler picks a leaf node for the pod it
annotates the claim with ``volume.kubernetes.io/selected-node``; we then create a host PV
bound to the claim that stands for a claim in that leaf node's member, the scheduler binds
the pod, and the pod controller creates the member claim (``ensure_member_pvc``) before the
member pod — so a StatefulSet's volumeClaimTemplates work on a leaf node. The member claim
uses the StorageClass named by the host class's ``memberStorageClass`` parameter (absent:
the member's default). Claims live as long as the host claim, not as long as a pod: a
member claim is deleted when its host claim is, and our host PV then goes with it.
"""

from __future__ import annotations

import contextlib
import logging

from kosmos.api import names
from kosmos.api.objects import Obj, annotations_of, is_deleting, labels_of
from kosmos.api.resources import PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES
from kosmos.clustertree.tree import MANAGED_SELECTOR, Tree
from kosmos.kube.component import HOST
from kosmos.kube.controller import Request, Result
from kosmos.kube.errors import AlreadyExists, Conflict, NotFound
from kosmos.kube.manager import ClusterNotFound

log = logging.getLogger("kosmos.clustertree.volumes")

PROVISIONER = names.LEAF_PROVISIONER
MEMBER_CLASS_PARAMETER = "memberStorageClass"
ANNOTATION_PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
ANNOTATION_MEMBER_CLAIM = names.ANNOTATION_MEMBER_CLAIM  # on host PVs: <cluster>/<ns>/<name>


def member_claim(source: Obj, storage_class: Obj | None) -> Obj:
    """The member copy of a host claim (no binding state, class mapped)."""
    meta, spec = source["metadata"], source.get("spec") or {}
    member_spec = {
        k: spec[k] for k in ("accessModes", "resources", "volumeMode", "selector") if k in spec
    }
    if storage_class is not None and storage_class.get("provisioner") == PROVISIONER:
        mapped = (storage_class.get("parameters") or {}).get(MEMBER_CLASS_PARAMETER)
        if mapped:
            member_spec["storageClassName"] = mapped
    elif spec.get("storageClassName"):
        member_spec["storageClassName"] = spec["storageClassName"]
    labels = {**labels_of(source), names.LABEL_MANAGED_BY: names.MANAGED_BY_KOSMOS}
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "labels": labels,
            "annotations": {names.ANNOTATION_GLOBAL: "true"},
        },
        "spec": member_spec,
    }


def provisioned_volume(claim: Obj, storage_class: Obj, cluster: str) -> Obj:
    """The host PV that binds ``claim`` and stands for its copy in member ``cluster``."""
    meta, spec = claim["metadata"], claim.get("spec") or {}
    handle = f"{cluster}/{meta['namespace']}/{meta['name']}"
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": f"pvc-{meta['uid']}",
            "annotations": {
                ANNOTATION_PROVISIONED_BY: PROVISIONER,
                ANNOTATION_MEMBER_CLAIM: handle,
            },
            "labels": {names.LABEL_OWNER_CLUSTER: cluster},
        },
        "spec": {
            "capacity": {
                "storage": spec.get("resources", {}).get("requests", {}).get("storage", "1Gi")
            },
            "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
            "volumeMode": spec.get("volumeMode", "Filesystem"),
            "storageClassName": storage_class["metadata"]["name"],
            "persistentVolumeReclaimPolicy": storage_class.get("reclaimPolicy", "Delete"),
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": meta["namespace"],
                "name": meta["name"],
                "uid": meta["uid"],
            },
            # a "local" source: nothing in the host attaches or mounts it (no kubelet
            # serves leaf nodes); the node affinity keeps its pods on this member's leaves
            "local": {"path": f"/kosmos/{handle}"},
            "nodeAffinity": {
                "required": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {
                                    "key": names.LABEL_OWNER_CLUSTER,
                                    "operator": "In",
                                    "values": [cluster],
                                }
                            ]
                        }
                    ]
                }
            },
        },
    }


async def ensure_member_pvc(tree: Tree, cluster: str, namespace: str, name: str) -> None:
    source = tree.pvcs.store.get(f"{namespace}/{name}")
    if source is None:
        return  # the member pod will wait for it, as it would in the host
    cache = tree.member(cluster, PERSISTENTVOLUMECLAIMS, label_selector=MANAGED_SELECTOR)
    if cache.store.get(f"{namespace}/{name}") is not None:
        return
    storage_class = tree.storage_classes.store.get(
        source.get("spec", {}).get("storageClassName", "")
    )
    with contextlib.suppress(AlreadyExists):
        await tree.manager.client(cluster).create(
            PERSISTENTVOLUMECLAIMS, member_claim(source, storage_class)
        )


class VolumeReconciler:
    """``Request(HOST, ns, claim)`` provisions; ``Request(member, ns, claim)`` cleans up."""

    def __init__(self, tree: Tree) -> None:
        self.tree = tree

    async def __call__(self, request: Request) -> Result | None:
        if request.cluster == HOST:
            if request.namespace:
                await self._provision(request.namespace, request.name)
            else:
                await self._reclaim(request.name)
            return None
        return await self._member(request)

    async def _provision(self, namespace: str, name: str) -> None:
        claim = self.tree.pvcs.store.get(f"{namespace}/{name}")
        if claim is None or claim.get("spec", {}).get("volumeName"):
            return
        storage_class = self.tree.storage_classes.store.get(
            claim.get("spec", {}).get("storageClassName") or ""
        )
        if storage_class is None or storage_class.get("provisioner") != PROVISIONER:
            return
        node = annotations_of(claim).get(names.ANNOTATION_SELECTED_NODE)
        cluster = self.tree.cluster_of_node(node) if node else None
        if cluster is None:
            return
        volume = provisioned_volume(claim, storage_class, cluster)
        with contextlib.suppress(AlreadyExists):
            await self.tree.manager.client(HOST).create(PERSISTENTVOLUMES, volume)
            log.info(
                "provisioned %s for claim %s/%s in %s",
                volume["metadata"]["name"],
                namespace,
                name,
                cluster,
            )

    async def _reclaim(self, pv_name: str) -> None:
        """A Released volume of ours goes away (its member claim follows the host claim)."""
        host = self.tree.manager.client(HOST)
        try:
            volume = await host.get(PERSISTENTVOLUMES, pv_name)
        except NotFound:
            return
        if annotations_of(volume).get(ANNOTATION_PROVISIONED_BY) != PROVISIONER:
            return
        if volume.get("status", {}).get("phase") != "Released":
            return
        if volume["spec"].get("persistentVolumeReclaimPolicy") != "Delete":
            return
        with contextlib.suppress(NotFound, Conflict):
            await host.delete(PERSISTENTVOLUMES, pv_name, uid=volume["metadata"]["uid"])

    async def _member(self, request: Request) -> Result | None:
        key = f"{request.namespace}/{request.name}"
        try:
            cache = self.tree.member(
                request.cluster, PERSISTENTVOLUMECLAIMS, label_selector=MANAGED_SELECTOR
            )
        except ClusterNotFound:
            return None
        copy = cache.store.get(key)
        source = self.tree.pvcs.store.get(key)
        if copy is None or (source is not None and not is_deleting(source)):
            return None
        meta = copy["metadata"]
        with contextlib.suppress(NotFound, Conflict):
            await self.tree.manager.client(request.cluster).delete(
                PERSISTENTVOLUMECLAIMS, meta["name"], meta["namespace"], uid=meta["uid"]
            )
        return None
