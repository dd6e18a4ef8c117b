"""The leaf Node object in the host, and the patches that keep a live one up to date.

``leaf_node`` builds the whole desired Node; ``metadata_patch`` and ``status_patch`` compute the
JSON merge patches that move the live Node there, returning None when nothing changed so that
an idle cluster writes nothing (the node Lease, not the Node, carries liveness).

Label keys and taints we set are recorded in the annotations ``kosmos.io/managed-labels`` and
``kosmos.io/managed-taints``: on the next sync we remove exactly what we set and no longer
want, and leave labels or taints that users and the node lifecycle controller added alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kosmos.api import names
from kosmos.api.leafmodel import LeafNode
from kosmos.api.objects import Obj, labels_of
from kosmos.api.quantity import QuantityError, parse_quantity
from kosmos.clustertree.capacity import Free

ANNOTATION_MANAGED_LABELS = "kosmos.io/managed-labels"
ANNOTATION_MANAGED_TAINTS = "kosmos.io/managed-taints"  # "key:effect" comma list
ANNOTATION_TTL = "node.alpha.kubernetes.io/ttl"
#: set on a new leaf, then owned by kube-controller-manager's TTL controller (60 s on a host
#: of 1000+ nodes): writing it back made every leaf a patch war, both sides a write per turn
_SET_ONCE = frozenset({ANNOTATION_TTL})
LABEL_OS = "kubernetes.io/os"
LABEL_ARCH = "kubernetes.io/arch"
LABEL_BETA_OS = "beta.kubernetes.io/os"
LABEL_BETA_ARCH = "beta.kubernetes.io/arch"
LABEL_INSTANCE_TYPE = "node.kubernetes.io/instance-type"
DEFAULT_ARCH = "amd64"
DECLARED_FEATURES = ("ExtendWebSocketsToKubelet",)
_NOT_COPIED_PREFIXES = ("node-role.kubernetes.io/", "node.kubernetes.io/exclude-")
#: the member's hostname is not the leaf's, and a kwok-simulated member node does not make
#: the leaf one: the leaf's cluster may run a kwok that adopts nodes by that label (a
#: kubenest tenant's, the local environment's)
_NOT_COPIED = frozenset({names.LABEL_HOSTNAME, names.LABEL_KWOK_NODE})
_LIFECYCLE_TAINT_PREFIX = "node.kubernetes.io/"
_QUANTITY_FIELDS = ("capacity", "allocatable")
_HEARTBEAT = "lastHeartbeatTime"
_TRANSITION = "lastTransitionTime"
#: The conditions a kubelet reports that are not Ready: (type, reason, message), all False.
_QUIET_CONDITIONS = (
    ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("NetworkUnavailable", "RouteCreated", "member cluster network is managed by the member"),
)


def _uniform(values: Iterable[str | None]) -> str | None:
    """The single value every member has; None when they differ, lack it, or are none."""
    distinct = set(values)
    if len(distinct) != 1:
        return None
    return distinct.pop()


def _arch(members: Sequence[Obj]) -> str:
    archs = (
        labels_of(m).get(LABEL_ARCH) or m.get("status", {}).get("nodeInfo", {}).get("architecture")
        for m in members
    )
    return _uniform(archs) or DEFAULT_ARCH


def _topology(leaf: LeafNode, members: Sequence[Obj]) -> dict[str, str]:
    """Zone and region labels.

    Members sharing a zone give the leaf node that zone. When they span several zones the
    leaf's zone is its own name: the member cluster then acts as one failure domain in the
    host, so zone anti-affinity and topology spreading put replicas on different members
    instead of treating a multi-zone cluster as "no zone". Region is set only if uniform.
    """
    labels: dict[str, str] = {}
    zones = [labels_of(m).get(names.LABEL_ZONE) for m in members]
    zone = _uniform(zones)
    if zone is not None:
        labels[names.LABEL_ZONE] = zone
    elif any(zones):
        labels[names.LABEL_ZONE] = leaf.name
    region = _uniform(labels_of(m).get(names.LABEL_REGION) for m in members)
    if region is not None:
        labels[names.LABEL_REGION] = region
    return labels


def _member(leaf: LeafNode, members: Sequence[Obj]) -> Obj | None:
    """One-to-one: the member node the leaf mirrors."""
    if leaf.mode != "one-to-one":
        return None
    for member in members:
        if member.get("metadata", {}).get("name") == leaf.member_node:
            return member
    return None


def _copied_labels(member: Obj | None) -> dict[str, str]:
    if member is None:
        return {}
    return {
        key: value
        for key, value in labels_of(member).items()
        if key not in _NOT_COPIED and not key.startswith(_NOT_COPIED_PREFIXES)
    }


def node_labels(leaf: LeafNode, members: Sequence[Obj]) -> dict[str, str]:
    """Copied member labels (one-to-one) < derived labels < leaf model labels < identity."""
    mirrored = _member(leaf, members)
    if leaf.mode == "one-to-one":  # derive from the mirrored node only (none if it is gone)
        members = [mirrored] if mirrored is not None else []
    arch = _arch(members)
    labels = _copied_labels(mirrored)
    labels.update(
        {
            names.LABEL_HOSTNAME: leaf.name,
            LABEL_OS: "linux",
            LABEL_BETA_OS: "linux",
            LABEL_ARCH: arch,
            LABEL_BETA_ARCH: arch,
        }
    )
    instance_type = _uniform(labels_of(m).get(LABEL_INSTANCE_TYPE) for m in members)
    if instance_type is not None:
        labels[LABEL_INSTANCE_TYPE] = instance_type
    labels.update(_topology(leaf, members))
    labels.update(leaf.labels)
    # Controllers and the scheduler find leaf nodes by these: users cannot override them.
    labels[names.LABEL_NODE] = "true"
    labels[names.LABEL_ROLE] = names.LABEL_ROLE_AGENT
    labels[names.LABEL_OWNER_CLUSTER] = leaf.cluster
    return labels


def _taint_id(taint: Mapping[str, Any]) -> str:
    return f"{taint.get('key', '')}:{taint.get('effect', '')}"


def node_taints(leaf: LeafNode, member: Obj | None) -> list[Obj]:
    """The leaf's taints, then (one-to-one) the member's own, without lifecycle taints.

    ``node.kubernetes.io/*`` taints describe the member node's state (not-ready, unreachable,
    cordoned); the host's node lifecycle controller sets its own for the leaf node.
    """
    taints = {_taint_id(t): dict(t) for t in leaf.taints}
    for taint in (member or {}).get("spec", {}).get("taints") or []:
        if not str(taint.get("key", "")).startswith(_LIFECYCLE_TAINT_PREFIX):
            copied = {k: v for k, v in taint.items() if k != "timeAdded"}
            taints.setdefault(_taint_id(copied), copied)
    return list(taints.values())


def _conditions(cluster: str, ready: bool, reason: str, message: str, now: str) -> list[Obj]:
    if ready:
        first = ("Ready", "True", "KubeletReady", f"member cluster {cluster} is reachable")
    else:
        first = ("Ready", "False", reason or "ClusterNotReady", message)
    rows = [first, *((kind, "False", why, text) for kind, why, text in _QUIET_CONDITIONS)]
    return [
        {
            "type": kind,
            "status": status,
            "reason": why,
            "message": text,
            _HEARTBEAT: now,
            _TRANSITION: now,
        }
        for kind, status, why, text in rows
    ]


def leaf_node(
    leaf: LeafNode,
    members: Sequence[Obj],
    free: Free,
    *,
    address: str,
    port: int,
    kubelet_version: str,
    ready: bool = True,
    reason: str = "",
    message: str = "",
    now: str,
) -> Obj:
    """The full v1 Node for ``leaf``: create it as is, or diff it with the patch functions.

    ``address`` is our kubelet endpoint's IP; it is the only address because the apiserver
    prefers a Hostname address, which it could not resolve. ``now`` is an RFC 3339 time.
    """
    labels = node_labels(leaf, members)
    taints = node_taints(leaf, _member(leaf, members))
    arch = labels[LABEL_ARCH]
    largest = json.dumps(free.largest_node, sort_keys=True, separators=(",", ":"))
    annotations = {
        names.ANNOTATION_OWNED_BY_CLUSTER: leaf.cluster,
        names.ANNOTATION_LEAF_MODE: leaf.mode,
        names.ANNOTATION_LARGEST_FREE: largest,
        ANNOTATION_TTL: "0",
        ANNOTATION_MANAGED_LABELS: ",".join(sorted(labels)),
        ANNOTATION_MANAGED_TAINTS: ",".join(sorted(_taint_id(t) for t in taints)),
    }
    node_info = dict.fromkeys(
        ("machineID", "systemUUID", "bootID", "kernelVersion", "osImage", "kubeProxyVersion"), ""
    )
    node_info.update(
        containerRuntimeVersion=f"kosmos://{leaf.cluster}",
        kubeletVersion=kubelet_version,
        operatingSystem="linux",
        architecture=arch,
    )
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": leaf.name, "labels": labels, "annotations": annotations},
        "spec": {"taints": taints},
        "status": {
            "capacity": dict(free.allocatable),
            "allocatable": dict(free.allocatable),
            "conditions": _conditions(leaf.cluster, ready, reason, message, now),
            "addresses": [{"type": "InternalIP", "address": address}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
            "nodeInfo": node_info,
            "declaredFeatures": list(DECLARED_FEATURES),
        },
    }


def _same_quantities(current: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """Compare ResourceLists by value: the apiserver re-spells ("129000000" -> "129M")."""
    if current.keys() != desired.keys():
        return False
    try:
        return all(parse_quantity(current[k]) == parse_quantity(desired[k]) for k in desired)
    except QuantityError:
        return False


def _merge_conditions(current: list[Obj], desired: list[Obj], heartbeat: bool) -> list[Obj]:
    """Desired conditions with times carried over; conditions others own are kept after ours.

    A condition keeps its transition time while its status holds, and its heartbeat time
    unless it changed (status, reason or message) or ``heartbeat`` asks for a fresh one.
    """
    live = {c.get("type"): c for c in current}
    merged: list[Obj] = []
    for want in desired:
        have = live.get(want["type"])
        cond = dict(want)
        if have is not None and have.get("status") == want["status"]:
            cond[_TRANSITION] = have.get(_TRANSITION, want[_TRANSITION])
            unchanged = all(have.get(k) == want.get(k) for k in ("reason", "message"))
            if unchanged and not heartbeat:
                cond[_HEARTBEAT] = have.get(_HEARTBEAT, want[_HEARTBEAT])
        merged.append(cond)
    ours = {c["type"] for c in desired}
    merged.extend(c for c in current if c.get("type") not in ours)
    return merged


def _without_heartbeats(conditions: list[Obj]) -> list[Obj]:
    return [{k: v for k, v in c.items() if k != _HEARTBEAT} for c in conditions]


def _replacing(current: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    """Merge patch value replacing map ``current`` by ``desired``: null deletes stale keys."""
    return {**desired, **{k: None for k in current if k not in desired}}


def _merge_noop(current: Any, desired: Any) -> bool:
    """Whether merge-patching ``desired`` onto ``current`` changes nothing (maps merge)."""
    if isinstance(desired, Mapping) and isinstance(current, Mapping):
        return all(
            k not in current if v is None else _merge_noop(current.get(k), v)
            for k, v in desired.items()
        )
    return bool(current == desired)


def status_patch(current: Obj | None, desired: Obj, *, heartbeat: bool = False) -> Obj | None:
    """The ``status`` subresource merge patch moving ``current`` to ``desired``; None if equal.

    Heartbeat times alone never make a patch unless ``heartbeat`` is set, which refreshes them
    (the periodic status report; liveness itself travels in the node Lease).
    """
    want = desired.get("status", {})
    if current is None:
        return {"status": want}
    have = current.get("status") or {}
    patch: Obj = {}
    for key, value in want.items():
        if key == "conditions":
            continue
        if key in _QUANTITY_FIELDS:
            if not _same_quantities(have.get(key) or {}, value):
                patch[key] = _replacing(have.get(key) or {}, value)
        elif not _merge_noop(have.get(key), value):
            patch[key] = value
    live = have.get("conditions") or []
    merged = _merge_conditions(live, want.get("conditions") or [], heartbeat)
    if heartbeat:
        changed = merged != live
    else:
        changed = _without_heartbeats(merged) != _without_heartbeats(live)
    if changed:
        patch["conditions"] = merged
    return {"status": patch} if patch else None


def _managed(annotations: Mapping[str, str], key: str) -> set[str]:
    return {item for item in (annotations.get(key) or "").split(",") if item}


def _taint_tuple(taint: Mapping[str, Any]) -> tuple[str, str, str]:
    return (str(taint.get("key", "")), str(taint.get("value", "")), str(taint.get("effect", "")))


def _taints_patch(current: Obj, desired: Obj, managed: set[str]) -> list[Obj] | None:
    """Desired taints plus live ones we did not set (lifecycle, user); None if unchanged."""
    want: list[Obj] = desired.get("spec", {}).get("taints") or []
    have: list[Obj] = current.get("spec", {}).get("taints") or []
    ours = {_taint_id(t) for t in want}
    kept = [t for t in have if _taint_id(t) not in ours and _taint_id(t) not in managed]
    result = [*want, *kept]
    if sorted(map(_taint_tuple, result)) == sorted(map(_taint_tuple, have)):
        return None
    return result


def metadata_patch(current: Obj | None, desired: Obj) -> Obj | None:
    """Merge patch for labels, annotations and taints (metadata + spec); None if equal.

    Labels and taints recorded as ours in ``current`` but absent from ``desired`` are removed;
    everything else others put on the node stays. Annotations are only ever set, never removed;
    the TTL annotation only while absent (the TTL controller's afterwards).
    """
    want_meta = desired.get("metadata", {})
    if current is None:
        return {
            "metadata": {k: want_meta.get(k, {}) for k in ("labels", "annotations")},
            "spec": {"taints": desired.get("spec", {}).get("taints") or []},
        }
    have_meta = current.get("metadata", {})
    have_labels = have_meta.get("labels") or {}
    have_annotations = have_meta.get("annotations") or {}
    want_labels = want_meta.get("labels") or {}
    labels = {k: v for k, v in want_labels.items() if have_labels.get(k) != v}
    for key in _managed(have_annotations, ANNOTATION_MANAGED_LABELS) - want_labels.keys():
        if key in have_labels:
            labels[key] = None
    annotations = {
        k: v
        for k, v in (want_meta.get("annotations") or {}).items()
        if have_annotations.get(k) != v and not (k in _SET_ONCE and k in have_annotations)
    }
    taints = _taints_patch(current, desired, _managed(have_annotations, ANNOTATION_MANAGED_TAINTS))
    patch: Obj = {}
    metadata = {k: v for k, v in (("labels", labels), ("annotations", annotations)) if v}
    if metadata:
        patch["metadata"] = metadata
    if taints is not None:
        patch["spec"] = {"taints": taints}
    return patch or None
