"""What the extender keeps of each pod: the fields its decisions read, nothing else.

The extender caches every pod of the host and of every member (to count workloads per
cluster and the room left on member nodes). A full pod is several kilobytes of JSON; the
fields below are a few hundred bytes, so a 100k-pod fleet fits in tens of megabytes.
"""

from __future__ import annotations

from kosmos.api import names
from kosmos.api.objects import Obj

_META = (
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "labels",
    "ownerReferences",
    "creationTimestamp",
    "deletionTimestamp",
)
_ANNOTATIONS = (names.ANNOTATION_DELETION_COST, names.ANNOTATION_HOST_POD_UID)
_SPEC = ("nodeName", "schedulerName", "overhead", "resources")


def _container(container: Obj) -> Obj:
    kept = {"name": container.get("name", "")}
    for key in ("resources", "restartPolicy"):
        if key in container:
            kept[key] = container[key]
    return kept


def _volume(volume: Obj) -> Obj:
    kept: Obj = {"name": volume.get("name", "")}
    if "persistentVolumeClaim" in volume:
        kept["persistentVolumeClaim"] = volume["persistentVolumeClaim"]
    elif "ephemeral" in volume:
        kept["ephemeral"] = {}
    return kept


def slim_pod(pod: Obj) -> Obj:
    """An informer transform: the pod reduced to what placement and capacity read."""
    meta = pod.get("metadata") or {}
    slim_meta = {k: meta[k] for k in _META if k in meta}
    annotations = meta.get("annotations") or {}
    kept = {k: annotations[k] for k in _ANNOTATIONS if k in annotations}
    if kept:
        slim_meta["annotations"] = kept
    spec = pod.get("spec") or {}
    slim_spec = {k: spec[k] for k in _SPEC if k in spec}
    slim_spec["containers"] = [_container(c) for c in spec.get("containers") or []]
    if spec.get("initContainers"):
        slim_spec["initContainers"] = [_container(c) for c in spec["initContainers"]]
    volumes = [_volume(v) for v in spec.get("volumes") or []]
    if any(len(v) > 1 for v in volumes):
        slim_spec["volumes"] = [v for v in volumes if len(v) > 1]
    status = pod.get("status") or {}
    slim_status: Obj = {"phase": status.get("phase", "")}
    scheduled = [c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"]
    if scheduled:
        slim_status["conditions"] = scheduled
    return {
        "apiVersion": pod.get("apiVersion", "v1"),
        "kind": pod.get("kind", "Pod"),
        "metadata": slim_meta,
        "spec": slim_spec,
        "status": slim_status,
    }


def slim_workload(obj: Obj) -> Obj:
    """ReplicaSets and StatefulSets: identity and ``spec.replicas`` only."""
    meta = obj.get("metadata") or {}
    return {
        "apiVersion": obj.get("apiVersion", ""),
        "kind": obj.get("kind", ""),
        "metadata": {
            k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion") if k in meta
        },
        "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 1)},
    }
