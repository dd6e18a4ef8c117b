"""The member-cluster copy of a host pod bound to a leaf node, and what it depends on.

Pure functions over raw JSON objects. ``member_pod`` is deterministic (same input, same
bytes), so recomputing it on every reconcile and comparing with ``mutable_patch`` never
causes churn. Steps, in order: metadata, spec cleanup (what the host's admission computed or
injected), environment (``podenv``), scheduling intent (``convert``), convert policies, then
the leaf's placement: a group's node selector, and last the one-to-one ``nodeName`` pin.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kosmos.api import names
from kosmos.api.objects import Obj, annotations_of, labels_of
from kosmos.clustertree.convert import apply_policies, member_scheduling, require_node_labels
from kosmos.clustertree.placement import Placement
from kosmos.clustertree.podenv import member_env

DEFAULT_SCHEDULER = "default-scheduler"
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"

#: annotations that describe the host object and mean nothing (or harm) in the member
HOST_ONLY_ANNOTATIONS = frozenset({"kubectl.kubernetes.io/last-applied-configuration"})

#: on member pods: JSON ``{"annotations": [...], "labels": [...]}``, the keys kosmos set, so
#: that ``mutable_patch`` removes a key the host pod lost but never one the member added
ANNOTATION_SYNCED_KEYS = "kosmos.io/synced-keys"

#: annotations only kosmos writes on member pods; a host pod's values for them are ignored
_OWN_ANNOTATIONS = frozenset(
    {
        names.ANNOTATION_HOST_POD_UID,
        names.ANNOTATION_HOST_NODE,
        names.ANNOTATION_CONVERT_POLICY,
        ANNOTATION_SYNCED_KEYS,
    }
)

#: labels the binding sets from the node a pod lands on (PodTopologyLabelsAdmission), in the
#: host from the leaf node and in the member from the member node: never copied or compared,
#: or every member binding would be patched back to the leaf's values (a write per pod)
MEMBER_OWNED_LABELS = frozenset({names.LABEL_ZONE, names.LABEL_REGION})

#: set by the host's admission (Priority, RuntimeClass) from host objects; the member's
#: admission recomputes them and rejects a pod whose values differ from its own
ADMISSION_FIELDS = ("priority", "preemptionPolicy", "overhead")

_ALL_CONTAINERS = ("initContainers", "containers", "ephemeralContainers")
_SECRET_REF_VOLUMES = ("cephfs", "cinder", "rbd", "flexVolume", "iscsi", "scaleIO", "storageos")


@dataclass(frozen=True)
class HostContext:
    """What the host knows beyond the pod itself."""

    #: host Services in the pod's namespace (for Service-link variables)
    services: Sequence[Obj] = ()
    #: convert policies to consider, chosen and name-ordered by the caller
    policies: Sequence[Obj] = ()
    #: the host leaf node's labels (policies' leafNodeSelector); empty: ``placement.node_labels``
    host_node_labels: Mapping[str, str] = field(default_factory=dict)
    #: central DNS (``--no-multi-cluster-service``): the host DNS Service's ClusterIP that
    #: member pods resolve through; empty: the member's own DNS
    host_dns: str = ""
    #: ``Options.owner``: labelled on the member pod (``LABEL_TREE_OWNER``) when set
    owner: str = ""


@dataclass(frozen=True)
class Dependencies:
    """Objects the member needs before the pod can be created there (same names, namespace)."""

    configmaps: frozenset[str]
    secrets: frozenset[str]
    pvcs: frozenset[str]
    service_account: str | None


# -- member pod ---------------------------------------------------------------------------


def member_pod(host_pod: Obj, placement: Placement, ctx: HostContext) -> Obj:
    """The pod to create in ``placement.cluster`` for ``host_pod``."""
    meta = host_pod.get("metadata") or {}
    host_spec = host_pod.get("spec") or {}
    spec = _clean_spec(host_spec)
    spec = member_env(
        spec,
        pod_uid=str(meta.get("uid") or ""),
        host_node=placement.host_node,
        services=ctx.services,
        namespace=str(meta.get("namespace") or "default"),
    )
    spec = member_scheduling(spec, meta.get("annotations") or {})
    if ctx.host_dns:
        spec = central_dns(spec, str(meta.get("namespace") or "default"), ctx.host_dns)
    pod: Obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _member_metadata(meta, placement, ctx.owner),
        "spec": spec,
    }
    pod, policy = apply_policies(pod, ctx.policies, ctx.host_node_labels or placement.node_labels)
    if policy is not None:
        pod["metadata"]["annotations"][names.ANNOTATION_CONVERT_POLICY] = policy
    if placement.mode == "group":
        pod["spec"] = require_node_labels(pod["spec"], placement.node_selector)
    if placement.mode == "one-to-one" and placement.member_node:
        pod["spec"]["nodeName"] = placement.member_node
    _record_synced_keys(pod["metadata"])
    return pod


#: kubelet's defaults for a ClusterFirst pod (``ndots:5``, the namespace's search path)
CLUSTER_DOMAIN = "cluster.local"
NDOTS = "5"


def central_dns(spec: Obj, namespace: str, nameserver: str) -> Obj:
    """The seed's central DNS: a pod that would use its cluster's DNS uses the host's.

    Only ClusterFirst (the default; with hostNetwork it means the node's resolver, so those
    stay) and ClusterFirstWithHostNet pods change: ``dnsPolicy: None`` with the host DNS as
    nameserver and the search path and ndots the kubelet would give them, then the pod's own
    dnsConfig searches and options after ours. Pods with Default or None keep their own.
    """
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    if policy == "ClusterFirst" and spec.get("hostNetwork"):
        return spec
    if policy not in ("ClusterFirst", "ClusterFirstWithHostNet"):
        return spec
    own = spec.get("dnsConfig") or {}
    searches = [f"{namespace}.svc.{CLUSTER_DOMAIN}", f"svc.{CLUSTER_DOMAIN}", CLUSTER_DOMAIN]
    searches += [s for s in own.get("searches") or [] if s not in searches]
    options = [{"name": "ndots", "value": NDOTS}]
    options += [o for o in own.get("options") or [] if o.get("name") != "ndots"]
    nameservers = [nameserver, *[n for n in own.get("nameservers") or [] if n != nameserver]]
    config = {"nameservers": nameservers[:3], "searches": searches[:32], "options": options}
    return {**spec, "dnsPolicy": "None", "dnsConfig": config}


def _member_metadata(meta: Mapping[str, Any], placement: Placement, owner: str = "") -> Obj:
    """Only name, namespace, labels and annotations carry over: everything else (uid,
    resourceVersion, ownerReferences, finalizers, managedFields, ...) belongs to the host."""
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k not in MEMBER_OWNED_LABELS}
    labels[names.LABEL_POD] = "true"
    labels[names.LABEL_MANAGED_BY] = names.MANAGED_BY_KOSMOS
    if owner:
        labels[names.LABEL_TREE_OWNER] = owner
    annotations = {
        key: value
        for key, value in (meta.get("annotations") or {}).items()
        if key not in HOST_ONLY_ANNOTATIONS and key not in _OWN_ANNOTATIONS
    }
    annotations[names.ANNOTATION_HOST_POD_UID] = str(meta.get("uid") or "")
    annotations[names.ANNOTATION_HOST_NODE] = placement.host_node
    out: Obj = {"name": meta.get("name"), "labels": labels, "annotations": annotations}
    if meta.get("namespace"):
        out["namespace"] = meta["namespace"]
    return out


def _record_synced_keys(meta: Obj) -> None:
    keys = {
        "annotations": sorted(k for k in meta["annotations"] if k != ANNOTATION_SYNCED_KEYS),
        "labels": sorted(meta["labels"]),
    }
    meta["annotations"][ANNOTATION_SYNCED_KEYS] = json.dumps(
        keys, sort_keys=True, separators=(",", ":")
    )


def _clean_spec(host_spec: Mapping[str, Any]) -> Obj:
    """The host spec without what is bound to the host: the node, a custom scheduler's name,
    admission-computed fields, the host's service-account token volume. Ephemeral containers
    go too: the apiserver rejects a pod created with them."""
    spec = copy.deepcopy(dict(host_spec))
    spec.pop("nodeName", None)
    spec.pop("ephemeralContainers", None)
    for key in ADMISSION_FIELDS:
        spec.pop(key, None)
    if spec.get("schedulerName", DEFAULT_SCHEDULER) != DEFAULT_SCHEDULER:
        del spec["schedulerName"]
    drop_token_volumes(spec)
    return spec


def _service_account(spec: Mapping[str, Any]) -> str:
    return str(spec.get("serviceAccountName") or spec.get("serviceAccount") or "default")


def is_token_volume(volume: Mapping[str, Any], service_account: str) -> bool:
    """A volume the host's ServiceAccount admission injected: its token is signed by the host
    and useless against the member apiserver. Without it the member's admission injects its
    own. A ``serviceAccountToken`` source in a user-named projected volume is minted by the
    member kubelet and stays."""
    name = str(volume.get("name") or "")
    if "projected" in volume:
        return name.startswith("kube-api-access-")
    if "secret" in volume:  # pre-1.24 token Secrets, named <sa>-token-<random>
        return name.startswith(("default-token-", f"{service_account}-token-"))
    return False


def drop_token_volumes(spec: Obj) -> None:
    """Remove the ServiceAccount admission's token volumes and their mounts (in place)."""
    account = _service_account(spec)
    volumes = spec.get("volumes") or []
    dropped = {v.get("name") for v in volumes if is_token_volume(v, account)}
    if not dropped:
        return
    _set_or_pop(spec, "volumes", [v for v in volumes if v.get("name") not in dropped])
    for key in _ALL_CONTAINERS:
        for container in spec.get(key) or []:
            mounts = container.get("volumeMounts") or []
            _set_or_pop(
                container, "volumeMounts", [m for m in mounts if m.get("name") not in dropped]
            )


def _set_or_pop(obj: Obj, key: str, value: list[Any]) -> None:
    if value:
        obj[key] = value
    else:
        obj.pop(key, None)


# -- dependencies -------------------------------------------------------------------------


def dependencies(host_pod: Obj) -> Dependencies:
    """ConfigMaps, Secrets and PVCs the member pod references (the host's token volumes and
    ``kube-root-ca.crt``, which the member has its own of, excluded), and its ServiceAccount."""
    meta = host_pod.get("metadata") or {}
    spec = host_pod.get("spec") or {}
    account = _service_account(spec)
    refs: dict[str, set[str]] = {"configmaps": set(), "secrets": set(), "pvcs": set()}
    for secret in spec.get("imagePullSecrets") or []:
        _add(refs["secrets"], secret.get("name"))
    for volume in spec.get("volumes") or []:
        if not is_token_volume(volume, account):
            _volume_refs(volume, str(meta.get("name") or ""), refs)
    for key in _ALL_CONTAINERS:
        for container in spec.get(key) or []:
            _container_refs(container, refs)
    refs["configmaps"].discard(ROOT_CA_CONFIGMAP)
    return Dependencies(
        configmaps=frozenset(refs["configmaps"]),
        secrets=frozenset(refs["secrets"]),
        pvcs=frozenset(refs["pvcs"]),
        service_account=account,
    )


def _add(found: set[str], name: Any) -> None:
    if isinstance(name, str) and name:
        found.add(name)


def _ref(obj: Mapping[str, Any], *path: str) -> Any:
    """``obj[path[0]][path[1]]...``, None where anything is missing."""
    value: Any = obj
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def _volume_refs(volume: Mapping[str, Any], pod: str, refs: dict[str, set[str]]) -> None:
    _add(refs["configmaps"], _ref(volume, "configMap", "name"))
    _add(refs["secrets"], _ref(volume, "secret", "secretName"))
    _add(refs["pvcs"], _ref(volume, "persistentVolumeClaim", "claimName"))
    if "ephemeral" in volume:  # the ephemeral-volume controller names the PVC <pod>-<volume>
        _add(refs["pvcs"], f"{pod}-{volume.get('name')}")
    for source in _ref(volume, "projected", "sources") or []:
        _add(refs["configmaps"], _ref(source, "configMap", "name"))
        _add(refs["secrets"], _ref(source, "secret", "name"))
    for plugin in _SECRET_REF_VOLUMES:
        _add(refs["secrets"], _ref(volume, plugin, "secretRef", "name"))
    _add(refs["secrets"], _ref(volume, "csi", "nodePublishSecretRef", "name"))
    _add(refs["secrets"], _ref(volume, "azureFile", "secretName"))


def _container_refs(container: Mapping[str, Any], refs: dict[str, set[str]]) -> None:
    for var in container.get("env") or []:
        _add(refs["configmaps"], _ref(var, "valueFrom", "configMapKeyRef", "name"))
        _add(refs["secrets"], _ref(var, "valueFrom", "secretKeyRef", "name"))
    for source in container.get("envFrom") or []:
        _add(refs["configmaps"], _ref(source, "configMapRef", "name"))
        _add(refs["secrets"], _ref(source, "secretRef", "name"))


# -- live member pods ---------------------------------------------------------------------


def mutable_patch(member: Obj, desired: Obj) -> Obj | None:
    """A **strategic merge patch** (``application/strategic-merge-patch+json``) that brings the
    live member pod to ``desired`` as far as a live pod may change, or None if nothing to do.

    Only what Kubernetes lets change is compared: labels, annotations, container and init
    container images (the patch lists ``{name, image}``; strategic merge matches containers
    by name), a lowered ``activeDeadlineSeconds`` and added tolerations. Everything the
    member's defaulting and admission add (image pull policy, its token volume, its own
    annotations and tolerations) is not compared, so it causes no patch. A label or
    annotation is removed only if kosmos set it (``kosmos.io/synced-keys``).
    """
    patch: Obj = {}
    metadata = _metadata_patch(member.get("metadata") or {}, desired.get("metadata") or {})
    if metadata:
        patch["metadata"] = metadata
    spec = _spec_patch(member.get("spec") or {}, desired.get("spec") or {})
    if spec:
        patch["spec"] = spec
    return patch or None


def _synced_keys(annotations: Mapping[str, str]) -> Obj:
    try:
        keys = json.loads(annotations.get(ANNOTATION_SYNCED_KEYS) or "{}")
    except ValueError:
        return {}
    return keys if isinstance(keys, dict) else {}


def _metadata_patch(live: Mapping[str, Any], want: Mapping[str, Any]) -> Obj:
    synced = _synced_keys(live.get("annotations") or {})
    out: Obj = {}
    for kind in ("labels", "annotations"):
        have, need = live.get(kind) or {}, want.get(kind) or {}
        changes: Obj = {k: v for k, v in need.items() if have.get(k) != v}
        previous = synced.get(kind)
        for key in previous if isinstance(previous, list) else []:
            if key in have and key not in need and key not in MEMBER_OWNED_LABELS:
                changes[key] = None
        if changes:
            out[kind] = changes
    return out


def _spec_patch(live: Mapping[str, Any], want: Mapping[str, Any]) -> Obj:
    out: Obj = {}
    for key in ("initContainers", "containers"):
        images = _image_changes(live.get(key) or [], want.get(key) or [])
        if images:
            out[key] = images
    deadline, current = want.get("activeDeadlineSeconds"), live.get("activeDeadlineSeconds")
    if deadline is not None and (current is None or deadline < current):
        out["activeDeadlineSeconds"] = deadline  # the apiserver only allows setting/lowering it
    tolerations = _added_tolerations(live.get("tolerations") or [], want.get("tolerations") or [])
    if tolerations is not None:
        out["tolerations"] = tolerations
    return out


def _image_changes(live: Sequence[Obj], want: Sequence[Obj]) -> list[Obj]:
    images = {c.get("name"): c.get("image") for c in live}
    return [
        {"name": c["name"], "image": c["image"]}
        for c in want
        if c.get("name") in images
        and c.get("image") is not None
        and images[c["name"]] != c["image"]
    ]


def _toleration(toleration: Mapping[str, Any]) -> Obj:
    """As the apiserver returns it: empty strings and nulls are omitted."""
    return {k: v for k, v in toleration.items() if v not in ("", None)}


def _added_tolerations(live: Sequence[Obj], want: Sequence[Obj]) -> list[Obj] | None:
    """The full new list (tolerations have no merge key, the patch replaces the list): the
    live ones unchanged, since a live pod's tolerations can only be added to, plus the missing."""
    have = [_toleration(t) for t in live]
    missing: list[Obj] = []
    for toleration in map(_toleration, want):
        if toleration not in have and toleration not in missing:
            missing.append(toleration)
    return [copy.deepcopy(dict(t)) for t in live] + missing if missing else None


def is_kosmos_pod(member_pod: Obj, owner: str = "") -> bool:
    """Whether kosmos created this member pod (only those are updated or deleted); with an
    ``owner`` (``Options.owner``), only a pod labelled with it: another control plane's pods
    in a shared member are not ours."""
    labels = labels_of(member_pod)
    if labels.get(names.LABEL_POD) != "true":
        return False
    return not owner or labels.get(names.LABEL_TREE_OWNER) == owner


def host_uid(member_pod: Obj) -> str | None:
    """The uid of the host pod this member pod mirrors."""
    uid = annotations_of(member_pod).get(names.ANNOTATION_HOST_POD_UID)
    return str(uid) if uid else None


def member_status(member_pod: Obj, host_pod: Obj) -> Obj:
    """The status to write on the host pod: the member's, copied whole (pod IPs, conditions,
    container statuses, phase, ...; hostIP(s) too, the member node's address). ``host_pod``
    is the place for a future rule that keeps some host value."""
    return copy.deepcopy(member_pod.get("status") or {})
