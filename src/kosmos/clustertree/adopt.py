"""Adoption: a running member pod Kosmos did not create becomes the copy of a host pod.

Application migration (a PromotePolicy) rebuilds a member namespace in the host without
restarting its pods: for every running member pod it creates a host pod bound to the
member's leaf node and naming that pod. Both sides carry the handshake, and only both
together make a pod adoptable (a pod of the same name alone stays a ``NameConflict``):

* the host pod: ``kosmos.io/member-pod-uid`` = the member pod's uid, and
  ``kosmos.io/promote-policy`` = ``<policy namespace>/<policy name>``;
* the member pod: the same ``kosmos.io/promote-policy`` value, set there by the migration.

Adopting is one metadata patch of the member pod, guarded by its resourceVersion: the label
``kosmos-io/pod=true`` and ``kosmos.io/host-pod-uid``. From then on it is an ordinary Kosmos
pod: its status goes up to the host pod, labels and annotations follow the host pod, and
deleting the host pod deletes it. Its spec is never changed here; the host pod was built from
it, so images agree, and an image patch would restart the container: ``without_images``
keeps one out of the patches of an adopted pod (the reconciler records a Warning instead).

**Release** (the migration's rollback does it in the member): removing ``kosmos-io/pod``,
``kosmos.io/host-pod-uid`` and ``kosmos.io/promote-policy`` from the member pod **in one
patch** makes it foreign again. ClusterTree never deletes a foreign pod, so deleting the host
pod afterwards only finalizes the host pod. Removed one at a time, the pod passes through
states that mean something else: without the label alone it is adoptable again (and is
re-adopted), and a Kosmos pod without ``kosmos.io/host-pod-uid`` would be a stale copy to
delete, which ``half_released`` prevents for a migrated pod.
"""

from __future__ import annotations

import copy

from kosmos.api import names
from kosmos.api.objects import Obj, annotations_of
from kosmos.api.resources import PODS
from kosmos.clustertree import metrics
from kosmos.clustertree.tree import Tree
from kosmos.kube.errors import Conflict, NotFound


def handshake(host: Obj, member: Obj) -> bool:
    """Whether ``member`` (not Kosmos's) is the pod the migration rebuilt ``host`` for."""
    want_uid = annotations_of(host).get(names.ANNOTATION_MEMBER_POD_UID)
    policy = annotations_of(host).get(names.ANNOTATION_PROMOTE_POLICY)
    if not want_uid or not policy:
        return False
    member_uid = (member.get("metadata") or {}).get("uid")
    return (
        want_uid == member_uid
        and annotations_of(member).get(names.ANNOTATION_PROMOTE_POLICY) == policy
    )


def adoption_patch(host: Obj, member: Obj) -> Obj:
    """The JSON merge patch that adopts ``member``; its resourceVersion makes it conditional
    (the apiserver answers Conflict if the pod changed since we read it)."""
    return {
        "metadata": {
            "resourceVersion": member["metadata"]["resourceVersion"],
            "labels": {names.LABEL_POD: "true"},
            "annotations": {names.ANNOTATION_HOST_POD_UID: host["metadata"]["uid"]},
        }
    }


def is_migrated(member: Obj) -> bool:
    """A member pod a migration marked: a candidate for adoption while it is foreign, an
    adopted pod (not one Kosmos created) once it is Kosmos's; released, it is neither."""
    return bool(annotations_of(member).get(names.ANNOTATION_PROMOTE_POLICY))


def half_released(member: Obj) -> bool:
    """A migrated pod without ``kosmos.io/host-pod-uid`` (a release half done): never a
    stale copy to delete."""
    return is_migrated(member) and not annotations_of(member).get(names.ANNOTATION_HOST_POD_UID)


def without_images(patch: Obj | None) -> tuple[Obj | None, list[str]]:
    """``patch`` without container image changes, and the ``container=image`` it dropped."""
    if not patch or not patch.get("spec"):
        return patch, []
    patch = copy.deepcopy(patch)
    spec = patch["spec"]
    dropped: list[str] = []
    for key in ("initContainers", "containers"):
        for change in spec.pop(key, None) or []:
            dropped.append(f"{change['name']}={change['image']}")
    if not spec:
        del patch["spec"]
    return patch or None, dropped


async def adopt(tree: Tree, cluster: str, host: Obj, member: Obj) -> bool:
    """Adopt ``member`` for ``host``; False if it changed meanwhile (the caller retries)."""
    meta = member["metadata"]
    try:
        await tree.manager.client(cluster).patch(
            PODS, meta["name"], adoption_patch(host, member), namespace=meta["namespace"]
        )
    except (Conflict, NotFound):
        return False
    metrics.adopted_pods.labels(cluster).inc()
    await tree.recorder.record(
        host,
        "Normal",
        "Adopted",
        f"adopted the running pod {meta['namespace']}/{meta['name']} (uid {meta['uid']}) "
        f"of member {cluster}",
    )
    return True
