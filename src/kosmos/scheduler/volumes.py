"""Where a pod's claims pin it: the member its volumes live in, or the host.

A host claim bound to a volume Kosmos made for a member claim (ClusterTree's ``kosmos.io/leaf``
provisioner labels it with the member and records ``kosmos.io/member-claim``) holds data in
that member: its pods may only use that member's leaf nodes. A host claim bound to any other
volume holds data in the host, which no member can mount: its pods stay on host nodes. An
unbound claim of a ``kosmos.io/leaf`` class will be provisioned in whichever member the pod
lands in, so it needs a leaf node; other unbound claims are left to VolumeBinding.

The Kosmos volumes carry a node affinity on ``kosmos.io/owner-cluster``, so VolumeBinding
already keeps their pods on the right leaf nodes; the rule here also covers host volumes
without node affinity (NFS, CSI) that VolumeBinding would let onto a leaf node, and it says
in the FailedScheduling message which claim decided.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from kosmos.api import names
from kosmos.api.objects import Obj
from kosmos.scheduler.nodetype import HOST_CLUSTER, cluster_of, is_leaf

Lookup = Callable[[str], Obj | None]


def claim_names(pod: Obj) -> list[str]:
    """Claims the pod mounts: ``persistentVolumeClaim`` volumes and generic ephemeral ones."""
    pod_name = pod.get("metadata", {}).get("name", "")
    out = []
    for volume in pod.get("spec", {}).get("volumes") or []:
        if volume.get("persistentVolumeClaim"):
            out.append(str(volume["persistentVolumeClaim"].get("claimName", "")))
        elif "ephemeral" in volume:
            out.append(f"{pod_name}-{volume.get('name', '')}")
    return [n for n in out if n]


def volume_cluster(volume: Obj) -> str:
    """The member a Kosmos-made volume stands for, or the host for any other volume."""
    meta = volume.get("metadata", {})
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    handle = str(annotations.get(names.ANNOTATION_MEMBER_CLAIM) or "")
    if handle:
        return handle.split("/", 1)[0]
    owner = labels.get(names.LABEL_OWNER_CLUSTER)
    return str(owner) if owner else HOST_CLUSTER


@dataclass
class Pins:
    """Clusters the pod's claims allow (None: any) and whether they need a leaf node."""

    clusters: dict[str, str] = field(default_factory=dict)  # claim -> cluster
    leaf_claims: list[str] = field(default_factory=list)  # unbound claims of a leaf class

    def rejection(self, node: Obj) -> str | None:
        where = set(self.clusters.values())
        if len(where) > 1:
            spread = ", ".join(f"{c} in {w}" for c, w in sorted(self.clusters.items()))
            return f"node(s) excluded: the pod's claims are bound in different clusters ({spread})"
        if self.leaf_claims and (HOST_CLUSTER in where or not is_leaf(node)):
            if HOST_CLUSTER in where:
                return (
                    f"node(s) excluded: claim {self.leaf_claims[0]} needs a member but claim "
                    f"{next(iter(self.clusters))} is bound in the host"
                )
            return (
                f"host node(s) excluded: claim {self.leaf_claims[0]} is provisioned in the "
                "member the pod lands in"
            )
        if where:
            (cluster,) = where
            if cluster_of(node) != cluster:
                claim = next(iter(self.clusters))
                if cluster == HOST_CLUSTER:
                    return f"leaf node(s) excluded: claim {claim} is bound to a host volume"
                return f"node(s) outside {cluster} excluded: claim {claim} is bound there"
        return None


def pins(pod: Obj, claim: Lookup, volume: Lookup, storage_class: Lookup) -> Pins:
    """What the pod's claims require; lookups take ``ns/name`` (claims) or names."""
    namespace = pod.get("metadata", {}).get("namespace", "")
    found = Pins()
    for name in claim_names(pod):
        obj = claim(f"{namespace}/{name}")
        if obj is None:
            continue  # VolumeBinding reports the missing claim
        spec = obj.get("spec") or {}
        bound = volume(spec["volumeName"]) if spec.get("volumeName") else None
        if bound is not None:
            found.clusters[name] = volume_cluster(bound)
            continue
        klass = storage_class(spec.get("storageClassName") or "")
        if klass is not None and klass.get("provisioner") == names.LEAF_PROVISIONER:
            found.leaf_claims.append(name)
    return found
