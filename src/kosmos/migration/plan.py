"""What a migration does, as pure functions: which namespaces, whether it may start, in which
order objects are detached and rebuilt, and how a member object becomes a host object.

**Why top-down detach and bottom-up rebuild keep pods running.** Deleting an owner with
``propagationPolicy: Orphan`` makes the member's garbage collector drop the ownerReference
from its dependents instead of deleting them, so after the owners are gone the pods are
plain pods, still running. In the host the pods are created first (bound to the member's
leaf node, then adopted by ClusterTree: ``ANNOTATION_MEMBER_POD_UID``), and only then their
owners: a controller adopts existing pods that match its selector and have no controller,
and a Deployment takes a ReplicaSet whose template equals its own. Templates are copied
unchanged, so the pod-template-hash and controller-revision-hash the member computed are
the ones the host computes (same Kubernetes version: precheck), and nothing is rolled.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kosmos.api import names
from kosmos.api.objects import Obj, annotations_of, labels_of, name_of, namespace_of
from kosmos.migration.archive import guess_plural
from kosmos.migration.extract import SERVER_FIELDS, forget_binding

#: never migrated: the clusters' own
FORBIDDEN_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease", "kosmos-system"})

#: owners deleted (Orphan) in the member, top-down: an owner before what it owns
DETACH_ORDER: tuple[str, ...] = (
    "cronjobs.batch",
    "deployments.apps",
    "jobs.batch",
    "statefulsets.apps",
    "replicasets.apps",
    "replicationcontrollers",
)

#: host rebuild, bottom-up: each stage is created before the next; pods are adopted before
#: any owner exists. Resources not listed go last, in name order.
REBUILD_STAGES: tuple[tuple[str, ...], ...] = (
    ("priorityclasses.scheduling.k8s.io", "storageclasses.storage.k8s.io"),
    ("serviceaccounts", "secrets", "configmaps", "limitranges", "resourcequotas"),
    (
        "roles.rbac.authorization.k8s.io",
        "rolebindings.rbac.authorization.k8s.io",
        "clusterroles.rbac.authorization.k8s.io",
        "clusterrolebindings.rbac.authorization.k8s.io",
    ),
    ("persistentvolumes", "persistentvolumeclaims"),
    ("pods",),
    ("controllerrevisions.apps",),
    ("replicasets.apps", "replicationcontrollers", "statefulsets.apps"),
    ("deployments.apps", "jobs.batch"),
    ("cronjobs.batch",),
    ("services",),
)
PODS = "pods"

#: kinds whose pods cannot be carried: one pod per member node is not a leaf's to run
UNCARRIABLE = {"daemonsets.apps": "DaemonSets run a pod on every member node"}

#: resources the migration must move; excluding them would strand running pods
REQUIRED = frozenset({"pods"})

#: server fields, and owners and finalizers, which name the member's objects
_RESET_META = (*SERVER_FIELDS, "ownerReferences", "finalizers")


def policy_key(policy: Mapping[str, Any]) -> str:
    return f"{namespace_of(policy)}/{name_of(policy)}"


def resource_name(api_version: str, plural: str) -> str:
    """``plural`` for the core group, else ``plural.group``, as the policy's fields name them."""
    group = api_version.rpartition("/")[0]
    return f"{plural}.{group}" if group else plural


def matches(name: str, patterns: Iterable[str]) -> bool:
    """``name`` (plural or plural.group) against a list that may hold ``*`` or a bare plural
    for a core resource."""
    listed = set(patterns)
    return "*" in listed or name in listed or (name.split(".", 1)[0] in listed and "." not in name)


def namespaces(spec: Mapping[str, Any], member_namespaces: Iterable[str]) -> list[str]:
    """The member namespaces to migrate: ``*`` = all but the forbidden ones, minus excludes."""
    included = list(spec.get("includedNamespaces") or [])
    excluded = set(spec.get("excludedNamespaces") or [])
    if "*" in included:
        included = [n for n in member_namespaces if n not in FORBIDDEN_NAMESPACES]
    return sorted({n for n in included if n not in excluded})


@dataclass(frozen=True)
class Facts:
    """What precheck needs to know about the clusters (read by the controller)."""

    cluster_known: bool
    leaf_nodes: Sequence[str]
    member_namespaces: frozenset[str]
    host_namespaces: frozenset[str]
    member_version: str
    host_version: str
    #: resource name -> count of objects in the migrated namespaces (member)
    member_counts: Mapping[str, int]
    #: resource names the host serves
    host_resources: frozenset[str]
    #: other live policies: (key, cluster, namespaces) of those that started before this one
    earlier: Sequence[tuple[str, str, Sequence[str]]] = ()
    #: the cluster-manager may create namespaces in the host (install --enable-migration)
    host_writable: bool = True


def precheck(spec: Mapping[str, Any], wanted: Sequence[str], facts: Facts) -> list[str]:
    """Every reason the migration cannot start; empty = it may. Nothing is changed before."""
    cluster = str(spec.get("clusterName") or "")
    if not facts.cluster_known:
        return [f"cluster {cluster!r} is not joined (no Cluster of that name)"]
    errors: list[str] = []
    if not facts.leaf_nodes:
        errors.append(f"cluster {cluster!r} has no leaf node in the host (is ClusterTree on?)")
    excluded = list(spec.get("excludedNamespaceScopedResources") or [])
    for required in sorted(REQUIRED):
        if matches(required, excluded):
            errors.append(f"{required} cannot be excluded: the migration carries running pods")
    if not wanted:
        errors.append("no namespace to migrate (includedNamespaces minus excludedNamespaces)")
    for ns in wanted:
        if ns in FORBIDDEN_NAMESPACES:
            errors.append(f"namespace {ns} cannot be migrated (the cluster's own)")
        elif ns not in facts.member_namespaces:
            errors.append(f"namespace {ns} does not exist in cluster {cluster}")
        elif ns in facts.host_namespaces:
            errors.append(f"namespace {ns} already exists in the host")
    if facts.member_version != facts.host_version:
        errors.append(
            f"Kubernetes versions differ (member {facts.member_version}, host "
            f"{facts.host_version}): templates would hash differently and pods would roll"
        )
    errors += _carriable(facts)
    if not facts.host_writable:
        errors.append(
            "the cluster-manager may not create objects in the host: install Kosmos with "
            "--enable-migration"
        )
    for key, other_cluster, other_ns in facts.earlier:
        both = sorted(set(other_ns) & set(wanted))
        if both and other_cluster == cluster:
            errors.append(f"PromotePolicy {key} already migrates {', '.join(both)}")
    return errors


def _carriable(facts: Facts) -> list[str]:
    errors = []
    for resource, count in sorted(facts.member_counts.items()):
        if not count:
            continue
        if resource in UNCARRIABLE:
            errors.append(f"{count} {resource}: {UNCARRIABLE[resource]}")
        elif resource not in facts.host_resources:
            errors.append(f"{count} {resource}: the host does not serve this resource")
    return errors


def included(name: str, spec: Mapping[str, Any]) -> bool:
    """Whether the policy carries resource ``name`` (``plural`` or ``plural.group``)."""
    wanted = spec.get("includedNamespaceScopedResources") or ["*"]
    return matches(name, wanted) and not matches(
        name, spec.get("excludedNamespaceScopedResources") or []
    )


# -- objects ---------------------------------------------------------------------------------


def resource_of(obj: Mapping[str, Any], plurals: Mapping[tuple[str, str], str]) -> str:
    """The resource name of an object, from its apiVersion/kind (``plurals`` from discovery)."""
    api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
    plural = plurals.get((api_version, kind), kind.lower() + "s")
    return resource_name(api_version, plural)


def owners(items: Iterable[Obj]) -> list[tuple[str, Obj]]:
    """The backed-up owners detach deletes, as ``(resource name, object)``, top-down
    (``DETACH_ORDER``); rollback re-creates them in the reverse order. Owners are built-in
    kinds, so the resource name is the kind's regular plural."""
    found = []
    for obj in items:
        name = resource_name(str(obj["apiVersion"]), guess_plural(str(obj["kind"])))
        if name in DETACH_ORDER:
            found.append((name, obj))
    return sorted(found, key=lambda pair: DETACH_ORDER.index(pair[0]))


def stage_of(resource: str) -> int:
    for index, stage in enumerate(REBUILD_STAGES):
        if resource in stage:
            return index
    return len(REBUILD_STAGES)


def rebuild_order(items: Iterable[tuple[str, Obj]]) -> list[list[tuple[str, Obj]]]:
    """``(resource, object)`` pairs grouped into stages, bottom-up; each stage in a stable order."""
    stages: dict[int, list[tuple[str, Obj]]] = {}
    for resource, obj in items:
        stages.setdefault(stage_of(resource), []).append((resource, obj))
    return [
        sorted(stages[i], key=lambda p: (p[0], namespace_of(p[1]), name_of(p[1])))
        for i in sorted(stages)
    ]


def clean(obj: Obj, policy: str) -> Obj:
    """A copy to create elsewhere: server-set metadata, owners and status gone, marked."""
    out = copy.deepcopy(obj)
    meta = out.setdefault("metadata", {})
    for key in _RESET_META:
        meta.pop(key, None)
    meta["annotations"] = {**annotations_of(out), names.ANNOTATION_PROMOTE_POLICY: policy}
    out.pop("status", None)
    return out


def host_object(resource: str, obj: Obj, policy: str) -> Obj:
    """The host's copy of a member object (not pods: ``host_pod``)."""
    out = clean(obj, policy)
    spec = out.get("spec") or {}
    if resource == "services":
        _service(spec)
    elif resource == "jobs.batch":
        spec["manualSelector"] = True  # its selector names the member Job's uid label
    forget_binding(out)
    return out


def member_object(resource: str, obj: Obj, policy: str) -> Obj:
    """An owner re-created in the member at rollback, from its backup."""
    out = clean(obj, policy)
    annotations = out["metadata"]["annotations"]
    annotations.pop(names.ANNOTATION_PROMOTE_POLICY, None)
    if not annotations:
        out["metadata"].pop("annotations")
    if resource == "jobs.batch":
        (out.get("spec") or {})["manualSelector"] = True
    return out


def _service(spec: Obj) -> None:
    """The host allocates its own ClusterIP and node ports; a headless Service stays so."""
    if spec.get("clusterIP") != "None":
        spec.pop("clusterIP", None)
        spec.pop("clusterIPs", None)
    spec.pop("ipFamilies", None)
    spec.pop("healthCheckNodePort", None)
    for port in spec.get("ports") or []:
        port.pop("nodePort", None)


def host_pod(member_pod: Obj, leaf: str, policy: str) -> Obj:
    """The host pod that stands for a running member pod, bound to its leaf node; ClusterTree
    adopts the member pod it names instead of creating one."""
    out = clean(member_pod, policy)
    out["metadata"]["annotations"][names.ANNOTATION_MEMBER_POD_UID] = member_pod["metadata"]["uid"]
    spec = out["spec"]
    spec["nodeName"] = leaf
    # the host's Priority admission computes these from priorityClassName; a copied value
    # that disagrees would be refused
    spec.pop("priority", None)
    spec.pop("preemptionPolicy", None)
    return out


def leaf_for(member_pod: Mapping[str, Any], leaves: Sequence[Obj]) -> str:
    """The leaf node of the member pod: the one-to-one leaf of its node, else the cluster's
    (first by name)."""
    node = str((member_pod.get("spec") or {}).get("nodeName") or "")
    named = sorted(name_of(n) for n in leaves)
    for leaf in leaves:
        if labels_of(leaf).get(names.LABEL_HOSTNAME) == node or name_of(leaf) == node:
            return name_of(leaf)
    return named[0]


def default_leaf(cluster: str, leaves: Sequence[Obj]) -> str:
    """Where new pods of a migrated namespace go: the whole-cluster leaf ``kosmos-<cluster>``,
    else (one-to-one leaves) the first by name."""
    named = sorted(name_of(n) for n in leaves)
    whole = f"kosmos-{cluster}"
    return whole if whole in named else named[0]


def adopted(member_pod: Mapping[str, Any], host_uid: str) -> bool:
    """Whether ClusterTree has adopted the member pod for the host pod ``host_uid``."""
    return (
        labels_of(member_pod).get(names.LABEL_POD) == "true"
        and annotations_of(member_pod).get(names.ANNOTATION_HOST_POD_UID) == host_uid
    )
