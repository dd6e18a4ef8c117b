"""The object vocabulary: Kubernetes objects as raw JSON dicts, and the questions we ask them.

Every layer handles objects as the ``dict`` the apiserver sent (no typed wrappers on hot
paths). This module is the one place that knows how to read their metadata, whether a node
is Ready, whether a pod is finished, and how a condition in ``status.conditions`` changes,
so each of those rules is written once and every component answers them the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

#: A Kubernetes object (or any part of one) as decoded JSON.
Obj = dict[str, Any]

#: Pod phases after which no container runs again: such pods hold no resources.
TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})


# -- time ------------------------------------------------------------------------------------


def now() -> str:
    """The current time as the apiserver writes timestamps (RFC 3339, seconds, UTC)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_now() -> str:
    """The current time as a MicroTime (Lease ``renewTime``/``acquireTime``): microseconds."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: str) -> datetime:
    """A timestamp the apiserver wrote (``...Z`` or with an offset, optional fraction)."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# -- metadata --------------------------------------------------------------------------------


def name_of(obj: Mapping[str, Any]) -> str:
    return str(obj["metadata"]["name"])


def namespace_of(obj: Mapping[str, Any]) -> str:
    """The object's namespace; "" for a cluster-scoped object."""
    return str(obj["metadata"].get("namespace") or "")


def key_of(obj: Mapping[str, Any]) -> str:
    """The cache key: ``namespace/name``, or ``name`` for a cluster-scoped object."""
    namespace = namespace_of(obj)
    return f"{namespace}/{name_of(obj)}" if namespace else name_of(obj)


def labels_of(obj: Mapping[str, Any]) -> dict[str, str]:
    return obj.get("metadata", {}).get("labels") or {}


def annotations_of(obj: Mapping[str, Any]) -> dict[str, str]:
    return obj.get("metadata", {}).get("annotations") or {}


def is_deleting(obj: Mapping[str, Any]) -> bool:
    """The object has a deletionTimestamp: finalizers are all that keep it."""
    return bool(obj.get("metadata", {}).get("deletionTimestamp"))


# -- nodes and pods ----------------------------------------------------------------------------


def node_ready(node: Mapping[str, Any]) -> bool:
    """The node's Ready condition is True (kubelet posts it; absent means not ready)."""
    return condition_true(node, "Ready")


def pod_phase(pod: Mapping[str, Any]) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def pod_terminal(pod: Mapping[str, Any]) -> bool:
    """The pod finished (Succeeded or Failed): it holds no resources any more."""
    return pod_phase(pod) in TERMINAL_PHASES


# -- conditions ----------------------------------------------------------------------------


def conditions_of(obj: Mapping[str, Any]) -> list[Obj]:
    return list((obj.get("status") or {}).get("conditions") or [])


def find_condition(conditions: list[Obj], kind: str) -> Obj | None:
    return next((c for c in conditions if c.get("type") == kind), None)


def condition_of(obj: Mapping[str, Any], kind: str) -> Obj | None:
    """The object's condition of this type, if it has one."""
    return find_condition(conditions_of(obj), kind)


def condition_true(obj: Mapping[str, Any], kind: str) -> bool:
    found = condition_of(obj, kind)
    return found is not None and found.get("status") == "True"


def set_condition(conditions: list[Obj], new: Obj, at: str | None = None) -> bool:
    """Put ``new`` into ``conditions`` in place; True if anything changed.

    The rule of apimachinery's ``meta.SetStatusCondition``: a condition whose status stays
    keeps its ``lastTransitionTime`` (the time is when the status last *changed*, not when
    it was last written); reason, message and observedGeneration are updated either way.
    A new or flipped condition takes ``new``'s time, else ``at``, else now.
    """
    stamp = new.get("lastTransitionTime") or at or now()
    existing = find_condition(conditions, new["type"])
    if existing is None:
        conditions.append({**new, "lastTransitionTime": stamp})
        return True
    changed = False
    if existing.get("status") != new["status"]:
        existing["status"] = new["status"]
        existing["lastTransitionTime"] = stamp
        changed = True
    for field in ("reason", "message", "observedGeneration"):
        if field in new and existing.get(field) != new[field]:
            existing[field] = new[field]
            changed = True
    return changed


def with_condition(conditions: list[Obj], new: Obj, at: str | None = None) -> list[Obj]:
    """A copy of ``conditions`` with ``new`` set (see ``set_condition``); inputs untouched."""
    copied = [dict(c) for c in conditions]
    set_condition(copied, new, at)
    return copied
