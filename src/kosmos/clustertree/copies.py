"""Copies of what member pods need: ConfigMaps, Secrets, ServiceAccounts (and PVCs).

A copy exists in a member exactly while some host pod on that member's leaf nodes uses it,
and it follows the host object: ``ensure_dependencies`` makes the copies before a member
pod is created, and the copy controller (``Request(member, namespace, "<plural>/<name>")``)
keeps them in step on every change of the host object, the member copy or a pod using it,
and deletes a copy once no synced pod uses it. Copies carry ``app.kubernetes.io/managed-by:
kosmos``; an object in the member without that label (e.g. the member's own ``default``
ServiceAccount) is used as it is and never overwritten or deleted.

ServiceAccount *tokens* are not copied: a host token means nothing to the member apiserver.
The member pod's token volume is minted by the member for the same-named ServiceAccount
(see ``podforge``); legacy token Secrets are copied as Opaque data.
"""

from __future__ import annotations

import contextlib
import logging

from kosmos.api import names
from kosmos.api.objects import Obj, annotations_of, labels_of, namespace_of
from kosmos.api.resources import Resource
from kosmos.clustertree.podforge import dependencies
from kosmos.clustertree.tree import COPIED, MANAGED_SELECTOR, Tree
from kosmos.clustertree.volumes import ensure_member_pvc
from kosmos.kube.controller import Request, Result, TerminalError
from kosmos.kube.errors import AlreadyExists, Conflict, NotFound
from kosmos.kube.manager import ClusterNotFound

log = logging.getLogger("kosmos.clustertree.copies")

_SKIPPED_ANNOTATIONS = ("kubectl.kubernetes.io/", "kubernetes.io/service-account.")
_PAYLOAD = {
    "configmaps": ("data", "binaryData", "immutable"),
    "secrets": ("type", "data", "immutable"),
    "serviceaccounts": ("imagePullSecrets", "automountServiceAccountToken"),
}


def desired_copy(plural: str, source: Obj, owner: str = "") -> Obj:
    """The member copy of a host object: its payload, labels and a managed-by marker (and
    the owner's label, ``Options.owner``)."""
    meta = source["metadata"]
    annotations = {
        k: v for k, v in annotations_of(source).items() if not k.startswith(_SKIPPED_ANNOTATIONS)
    }
    annotations[names.ANNOTATION_GLOBAL] = "true"
    labels = {**labels_of(source), names.LABEL_MANAGED_BY: names.MANAGED_BY_KOSMOS}
    if owner:
        labels[names.LABEL_TREE_OWNER] = owner
    copy: Obj = {
        "apiVersion": "v1",
        "kind": COPIED[plural].kind,
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "labels": labels,
            "annotations": annotations,
        },
    }
    for field in _PAYLOAD[plural]:
        if field in source:
            copy[field] = source[field]
    if plural == "secrets" and copy.get("type") == "kubernetes.io/service-account-token":
        copy["type"] = "Opaque"  # the member's token controller would delete a foreign token
    return copy


def differs(current: Obj, desired: Obj) -> bool:
    want = desired["metadata"]
    if labels_of(current) != want["labels"]:
        return True
    if annotations_of(current) != want["annotations"]:
        return True
    fields = set(desired) - {"apiVersion", "kind", "metadata"}
    return any(current.get(f) != desired.get(f) for f in fields)


def is_managed(obj: Obj) -> bool:
    return labels_of(obj).get(names.LABEL_MANAGED_BY) == names.MANAGED_BY_KOSMOS


async def ensure_copy(tree: Tree, cluster: str, plural: str, source: Obj) -> None:
    """Create or refresh the member copy of ``source`` (a foreign object is left alone)."""
    resource = COPIED[plural]
    client = tree.manager.client(cluster)
    owner = tree.options.owner
    desired = desired_copy(plural, source, owner)
    meta = desired["metadata"]
    key = f"{meta['namespace']}/{meta['name']}"
    current = tree.member(cluster, resource, label_selector=MANAGED_SELECTOR).store.get(key)
    if current is None:
        if (cluster, plural, key) in tree.foreign:
            return
        try:
            await client.create(resource, desired)
        except AlreadyExists:
            # the member's own object (e.g. its "default" ServiceAccount): use it as it is,
            # and do not ask again for every pod (forgotten when the member leaves)
            tree.foreign.add((cluster, plural, key))
            return
        log.debug("%s: copied %s %s", cluster, resource.kind, key)
        return
    holder = labels_of(current).get(names.LABEL_TREE_OWNER)
    if owner and holder != owner:  # another control plane's copy in a shared member
        raise TerminalError(
            f"{cluster}: {resource.kind} {key} is the copy of another control plane "
            f"({names.LABEL_TREE_OWNER}={holder or '(none)'}): neither used nor overwritten",
            "NameConflict",
        )
    if differs(current, desired):
        desired["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        if plural == "secrets" and current.get("type") != desired.get("type"):
            await client.delete(resource, meta["name"], meta["namespace"])  # type is immutable
            return
        await client.replace(resource, desired)


async def ensure_dependencies(tree: Tree, cluster: str, pod: Obj) -> None:
    """Copy everything ``pod`` references that the host has, before the pod is created."""
    namespace = namespace_of(pod)
    deps = dependencies(pod)
    wanted: list[tuple[str, str]] = [("configmaps", n) for n in sorted(deps.configmaps)]
    wanted += [("secrets", n) for n in sorted(deps.secrets)]
    if deps.service_account:
        wanted.append(("serviceaccounts", deps.service_account))
    for plural, name in wanted:
        source = tree.copied[plural].store.get(f"{namespace}/{name}")
        if source is not None:
            await ensure_copy(tree, cluster, plural, source)
    for claim in sorted(deps.pvcs):
        await ensure_member_pvc(tree, cluster, namespace, claim)


class CopyReconciler:
    """Keyed ``Request(member, namespace, "<plural>/<name>")`` for the COPIED kinds."""

    def __init__(self, tree: Tree) -> None:
        self.tree = tree

    async def __call__(self, request: Request) -> Result | None:
        plural, _, name = request.name.partition("/")
        if plural not in COPIED:
            return None
        cluster, namespace = request.cluster, request.namespace
        resource = COPIED[plural]
        try:
            cache = self.tree.member(cluster, resource, label_selector=MANAGED_SELECTOR)
        except ClusterNotFound:
            return None
        key = f"{namespace}/{name}"
        source = self.tree.copied[plural].store.get(key)
        used = bool(self.tree.users(cluster, namespace, request.name))
        current = cache.store.get(key)
        if used and source is not None:
            await ensure_copy(self.tree, cluster, plural, source)
        elif current is not None and is_managed(current):
            await _delete(self.tree, cluster, resource, current)
        return None


async def _delete(tree: Tree, cluster: str, resource: Resource, obj: Obj) -> None:
    meta = obj["metadata"]
    with contextlib.suppress(NotFound, Conflict):
        await tree.manager.client(cluster).delete(
            resource, meta["name"], meta["namespace"], uid=meta["uid"]
        )
    log.debug(
        "%s: removed unused %s %s/%s", cluster, resource.kind, meta["namespace"], meta["name"]
    )
