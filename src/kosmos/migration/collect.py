"""What a backup holds: every object of the migrated namespaces, and what they depend on.

The kinds come from discovery, not from a list written here, so CRD objects are backed up
like built-ins. A resource is taken when it can be listed, created and deleted (a rollback
must be able to delete what it restores and create it again) and the policy's include/exclude
lists name it (``plural`` or ``plural.group``; ``*`` = all). Objects are kept as the apiserver
returned them: the archive is a record of the member, restoring decides what to strip.

What the cluster makes by itself is never taken, whatever the lists say: Events, Endpoints
and EndpointSlices (controllers derive them), Leases, the ``kube-root-ca.crt`` ConfigMap and
ServiceAccount token Secrets (written into every namespace). ControllerRevisions are kept:
they are a StatefulSet's history.

A namespace's objects may need cluster-scoped ones to be restorable: the Namespace itself,
ClusterRoleBindings whose subject is one of its backed up ServiceAccounts and the ClusterRoles
they (or its RoleBindings) reference, the PersistentVolumes bound to its claims, the
StorageClasses of those claims and volumes, the PriorityClasses its pods name. Objects the
apiserver made at bootstrap (``kubernetes.io/bootstrapping: rbac-defaults``, ``system-*``
PriorityClasses) exist in every cluster and are left out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence

from kosmos.api.objects import Obj, labels_of, name_of, namespace_of
from kosmos.api.resources import (
    CLUSTERROLEBINDINGS,
    CLUSTERROLES,
    NAMESPACES,
    PERSISTENTVOLUMES,
    PRIORITYCLASSES,
    STORAGECLASSES,
    Resource,
)
from kosmos.kube.client import Client
from kosmos.kube.discovery import ServedResource, served_resources
from kosmos.kube.errors import NotFound

#: resources the cluster fills in by itself (``plural.group`` as discovery names them)
SKIPPED = frozenset(
    {
        "events",
        "events.events.k8s.io",
        "endpoints",
        "endpointslices.discovery.k8s.io",
        "leases.coordination.k8s.io",
    }
)
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
TOKEN_SECRET_TYPE = "kubernetes.io/service-account-token"
BOOTSTRAP_LABEL = ("kubernetes.io/bootstrapping", "rbac-defaults")

#: restore order: what others need comes first; kinds not listed follow, by name
ORDER = (
    "Namespace",
    "PriorityClass",
    "StorageClass",
    "ClusterRole",
    "ClusterRoleBinding",
    "PersistentVolume",
    "ServiceAccount",
    "Secret",
    "ConfigMap",
    "Role",
    "RoleBinding",
    "LimitRange",
    "ResourceQuota",
    "PersistentVolumeClaim",
    "Service",
    "Pod",
    "ControllerRevision",
    "ReplicaSet",
    "ReplicationController",
    "StatefulSet",
    "DaemonSet",
    "Deployment",
    "Job",
    "CronJob",
)
_RANK = {kind: i for i, kind in enumerate(ORDER)}


def matches(served: ServedResource, names: Iterable[str]) -> bool:
    """Whether a policy list names ``served``: ``*``, its ``plural`` or ``plural.group``."""
    return any(n in {"*", served.name, served.resource.plural} for n in names)


def selected(
    served: Sequence[ServedResource], included: Sequence[str], excluded: Sequence[str]
) -> list[ServedResource]:
    """The namespaced resources a backup lists, in discovery order."""
    return [
        s
        for s in served
        if s.resource.namespaced
        and s.supports("list", "create", "delete")
        and s.name not in SKIPPED
        and matches(s, included)
        and not matches(s, excluded)
    ]


def unknown(served: Sequence[ServedResource], names: Iterable[str]) -> list[str]:
    """The names in a policy list that no served resource answers to (for a precheck)."""
    return sorted(n for n in set(names) if not any(matches(s, [n]) for s in served))


def made_by_cluster(obj: Obj) -> bool:
    """Objects every namespace or cluster gets without a user asking (never backed up)."""
    kind = obj.get("kind")
    if kind == "ConfigMap" and name_of(obj) == ROOT_CA_CONFIGMAP:
        return True
    if kind == "Secret" and obj.get("type") == TOKEN_SECRET_TYPE:
        return True
    if kind == "PriorityClass" and name_of(obj).startswith("system-"):
        return True
    key, value = BOOTSTRAP_LABEL
    return labels_of(obj).get(key) == value


def order_key(obj: Obj) -> tuple[int, str, str, str, str]:
    """Restore order, then a stable order inside a kind."""
    kind = str(obj.get("kind"))
    rank = _RANK.get(kind, len(ORDER))
    return rank, kind, str(obj.get("apiVersion")), namespace_of(obj), name_of(obj)


def ordered(items: Iterable[Obj]) -> list[Obj]:
    """Items in restore order, each (kind, namespace, name) once."""
    seen: dict[tuple[str, str, str, str], Obj] = {}
    for item in items:
        key = (
            str(item.get("apiVersion")),
            str(item.get("kind")),
            namespace_of(item),
            name_of(item),
        )
        seen.setdefault(key, item)
    return sorted(seen.values(), key=order_key)


async def collect(
    client: Client, namespaces: Sequence[str], included: Sequence[str], excluded: Sequence[str]
) -> list[Obj]:
    """Every object to back up from ``namespaces`` of ``client``'s cluster, in restore order."""
    served = await served_resources(client)
    resources = selected(served, included, excluded)
    lists = await asyncio.gather(
        *(_list(client, s.resource, ns) for s in resources for ns in namespaces)
    )
    items = [item for listed in lists for item in listed if not made_by_cluster(item)]
    items += [await client.get(NAMESPACES, ns) for ns in namespaces]
    items += await dependencies(client, items)
    return ordered(items)


async def _list(client: Client, resource: Resource, namespace: str) -> list[Obj]:
    """The objects of a resource in a namespace; none if the resource went away (a CRD
    deleted since discovery holds nothing to back up)."""
    try:
        return (await client.list(resource, namespace)).items
    except NotFound:
        return []


async def dependencies(client: Client, items: Sequence[Obj]) -> list[Obj]:
    """The cluster-scoped objects ``items`` need (see the module docstring)."""
    accounts = {(namespace_of(i), name_of(i)) for i in items if i.get("kind") == "ServiceAccount"}
    bindings = []
    if accounts:
        listed = (await client.list(CLUSTERROLEBINDINGS)).items
        bindings = [b for b in listed if _binds(b, accounts)]
    role_refs = [b.get("roleRef") or {} for b in bindings]
    role_refs += [i.get("roleRef") or {} for i in items if i.get("kind") == "RoleBinding"]
    roles = {r["name"] for r in role_refs if r.get("kind") == "ClusterRole" and r.get("name")}
    claims = [i for i in items if i.get("kind") == "PersistentVolumeClaim"]
    volumes = await _bound_volumes(client, claims)
    classes = {
        str(spec["storageClassName"])
        for spec in (o.get("spec") or {} for o in [*claims, *volumes])
        if spec.get("storageClassName")
    }
    priorities = {
        str(spec["priorityClassName"])
        for spec in (i.get("spec") or {} for i in items if i.get("kind") == "Pod")
        if spec.get("priorityClassName")
    }
    found = [*bindings, *volumes]
    found += await _get_all(client, CLUSTERROLES, roles)
    found += await _get_all(client, STORAGECLASSES, classes)
    found += await _get_all(client, PRIORITYCLASSES, priorities)
    return [o for o in found if not made_by_cluster(o)]


def _binds(binding: Obj, accounts: set[tuple[str, str]]) -> bool:
    return any(
        s.get("kind") == "ServiceAccount" and (s.get("namespace"), s.get("name")) in accounts
        for s in binding.get("subjects") or []
    )


async def _bound_volumes(client: Client, claims: Sequence[Obj]) -> list[Obj]:
    """PersistentVolumes a claim names (``volumeName``) or that are bound to a claim."""
    if not claims:
        return []
    names = {str((c.get("spec") or {}).get("volumeName") or "") for c in claims}
    keys = {(namespace_of(c), name_of(c)) for c in claims}
    out = []
    for volume in (await client.list(PERSISTENTVOLUMES)).items:
        ref = (volume.get("spec") or {}).get("claimRef") or {}
        if name_of(volume) in names or (ref.get("namespace"), ref.get("name")) in keys:
            out.append(volume)
    return out


async def _get_all(client: Client, resource: Resource, names: Iterable[str]) -> list[Obj]:
    """The objects of those names that exist (a missing one is the cluster's problem)."""
    out = []
    for name in sorted(names):
        try:
            obj = await client.get(resource, name)
        except NotFound:
            continue
        obj.setdefault("apiVersion", resource.api_version)
        obj.setdefault("kind", resource.kind)
        out.append(obj)
    return out
