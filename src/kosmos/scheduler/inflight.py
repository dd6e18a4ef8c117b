"""Host pods bound to a leaf node whose member copy is not bound to a member node yet.

Between the host binding a pod to a leaf node and the member's scheduler binding its copy,
the pod holds resources in no member cache, yet it will take room on one of the member's
nodes. This tracker follows both sides: host pod events add a pod bound to a leaf node, and
member pod events (copies carry the host pod's UID in ``kosmos.io/host-pod-uid``) remove it
once the copy is bound. Both sides may arrive in any order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from kosmos.api import names
from kosmos.api.objects import Obj
from kosmos.kube.informer import UpsertHandler
from kosmos.scheduler.capacity import Resources, holds_resources, scheduling_request

IsLeaf = Callable[[str], bool]


def _uid(pod: Obj) -> str:
    return str(pod.get("metadata", {}).get("uid", ""))


def host_uid(member_pod: Obj) -> str:
    annotations = member_pod.get("metadata", {}).get("annotations") or {}
    return str(annotations.get(names.ANNOTATION_HOST_POD_UID) or "")


class Flying(NamedTuple):
    """What a pod in flight will take, and which member nodes' taints it tolerates."""

    request: Resources
    tolerations: list[Obj]


class InFlight:
    """Per leaf node: host pod UID -> its requests, while its member copy is unbound."""

    def __init__(self, is_leaf: IsLeaf) -> None:
        self._is_leaf = is_leaf
        self._by_leaf: dict[str, dict[str, Flying]] = {}
        self._leaf_of: dict[str, str] = {}
        self._bound_copies: set[str] = set()
        #: host pod UID -> the member node its room was taken from (see ``Caches.rooms``),
        #: decided once so each filter call need not re-place every pod in flight
        self.assigned: dict[str, str] = {}

    def entries(self, leaf: str) -> list[tuple[str, Flying]]:
        return list(self._by_leaf.get(leaf, {}).items())

    def __len__(self) -> int:
        return len(self._leaf_of)

    def _drop(self, uid: str) -> None:
        self.assigned.pop(uid, None)
        leaf = self._leaf_of.pop(uid, None)
        if leaf is not None:
            pods = self._by_leaf.get(leaf, {})
            pods.pop(uid, None)
            if not pods:
                self._by_leaf.pop(leaf, None)

    def host_pod(self, pod: Obj) -> None:
        """A host pod was added or changed."""
        uid = _uid(pod)
        node = pod.get("spec", {}).get("nodeName") or ""
        flying = (
            bool(uid)
            and uid not in self._bound_copies
            and holds_resources(pod)
            and self._is_leaf(node)
        )
        if flying and self._leaf_of.get(uid) == node:
            return  # a status update (requests are immutable; the room stays where it was taken)
        self._drop(uid)
        if not flying:
            return
        tolerations = list(pod.get("spec", {}).get("tolerations") or [])
        self._by_leaf.setdefault(node, {})[uid] = Flying(scheduling_request(pod), tolerations)
        self._leaf_of[uid] = node

    def host_pod_gone(self, pod: Obj) -> None:
        self._drop(_uid(pod))

    def member_pod(self, pod: Obj) -> None:
        """A member pod was added or changed: a bound copy ends its host pod's flight."""
        uid = host_uid(pod)
        if not uid:
            return
        if pod.get("spec", {}).get("nodeName"):
            self._bound_copies.add(uid)
            self._drop(uid)

    def member_pod_gone(self, pod: Obj) -> None:
        self._bound_copies.discard(host_uid(pod))

    def host_handler(self) -> UpsertHandler:
        """Host pod informer events -> ``host_pod`` and ``host_pod_gone``."""
        return UpsertHandler(self.host_pod, self.host_pod_gone)

    def member_handler(self) -> UpsertHandler:
        """Member pod informer events -> ``member_pod`` and ``member_pod_gone``."""
        return UpsertHandler(self.member_pod, self.member_pod_gone)
