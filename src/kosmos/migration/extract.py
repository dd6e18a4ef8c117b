"""A backup as files a person restores with ``kubectl apply -f <dir>`` (pure).

The archive keeps objects as the member's apiserver returned them; applying those again
fails or misbehaves, so each object is first made into what a user would have written:
- the fields the apiserver fills in go (uid, resourceVersion, creationTimestamp, generation,
  managedFields, status, kubectl's last-applied annotation);
- objects a controller owns (a ReplicaSet of a Deployment, its pods, a StatefulSet's
  ControllerRevisions and pods, a Job's pods) are left out: their owner makes them again,
  and adopts what still runs. Owner references to objects that are not controllers go too
  (their uids would name objects that no longer exist, and the garbage collector would
  delete the restored object);
- a Service loses its allocated clusterIP(s) unless headless (the address may be taken);
- a Job loses its generated selector and the controller-uid labels of its template (the
  apiserver generates them again; a given selector needs manualSelector);
- a PersistentVolume's claimRef forgets the old claim's uid and version, and a claim its
  "bind completed" annotations, so that the two bind again (a claim marked bound whose volume
  names another uid is Lost for good).
Files are numbered in restore order (``kubectl apply -f`` takes a folder's files by name).
"""

from __future__ import annotations

import copy

import orjson
import yaml

from kosmos.api.objects import Obj, name_of, namespace_of
from kosmos.migration.archive import Backup

#: what the apiserver fills in: never part of an object to create
SERVER_FIELDS = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "generation",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
#: a claim carrying these is "bound" to the old volume binding (by uid): the controller would
#: call it Lost; without them it binds to ``spec.volumeName`` as a pre-bound claim does
BIND_ANNOTATIONS = ("pv.kubernetes.io/bind-completed", "pv.kubernetes.io/bound-by-controller")
_JOB_UID_LABELS = ("controller-uid", "batch.kubernetes.io/controller-uid")


def controlled(obj: Obj) -> bool:
    return any(ref.get("controller") for ref in obj["metadata"].get("ownerReferences") or [])


def restorable(obj: Obj) -> Obj | None:
    """``obj`` as a user would apply it, or None when its controller makes it again."""
    if controlled(obj):
        return None
    out = copy.deepcopy(obj)
    out.pop("status", None)
    meta = out["metadata"]
    for field in (*SERVER_FIELDS, "ownerReferences"):
        meta.pop(field, None)
    forget_binding(out)
    annotations = meta.get("annotations") or {}
    annotations.pop(_LAST_APPLIED, None)
    if not annotations:
        meta.pop("annotations", None)
    kind, spec = out.get("kind"), out.get("spec")
    if isinstance(spec, dict):
        if kind == "Service" and spec.get("clusterIP") != "None":
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
        elif kind == "Job":
            _job(spec)
    return out


def forget_binding(obj: Obj) -> None:
    """Untie a claim or volume from the old binding (in place), so that they bind again by
    name: a claim loses the marks of its completed binding, a volume's claimRef the old
    claim's uid and resourceVersion. Any other object is left as it is."""
    kind = obj.get("kind")
    if kind == "PersistentVolumeClaim":
        annotations = obj["metadata"].get("annotations") or {}
        for key in BIND_ANNOTATIONS:
            annotations.pop(key, None)
    elif kind == "PersistentVolume":
        ref = (obj.get("spec") or {}).get("claimRef") or {}
        for field in ("uid", "resourceVersion"):
            ref.pop(field, None)


def _job(spec: Obj) -> None:
    spec.pop("selector", None)
    spec.pop("manualSelector", None)
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    for label in _JOB_UID_LABELS:
        labels.pop(label, None)


def file_name(number: int, obj: Obj, suffix: str) -> str:
    namespace = namespace_of(obj)
    where = f"{namespace}.{name_of(obj)}" if namespace else name_of(obj)
    return f"{number:04d}-{str(obj['kind']).lower()}-{where}.{suffix}"


def files(backup: Backup, fmt: str = "yaml") -> list[tuple[str, bytes]]:
    """``(file name, content)`` for each object to apply, in the backup's (restore) order."""
    out: list[tuple[str, bytes]] = []
    for obj in backup.items:
        clean = restorable(obj)
        if clean is None:
            continue
        if fmt == "json":
            body = orjson.dumps(clean, option=orjson.OPT_INDENT_2) + b"\n"
        else:
            body = yaml.safe_dump(clean, sort_keys=False).encode()
        out.append((file_name(len(out) + 1, clean, fmt), body))
    return out
