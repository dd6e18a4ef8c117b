"""Reservations: which cluster the extender sent a pod to, until the binding shows up.

kube-scheduler schedules one pod at a time and binds asynchronously: the next pod of a
ReplicaSet reaches the filter before the previous one's binding (and long before our
informer) says where it went. The extender therefore offers a placed pod the nodes of exactly
one cluster and records that cluster here, keyed by pod UID. Counting a workload's pods per
cluster = bound pods from the cache + reserved pods not yet seen bound.

A reservation ends when the pod is seen bound (the cache takes over), deleted, or refused
(an update with a newer resourceVersion while still unbound and ``PodScheduled=False``: the
scheduling attempt failed and the next one asks again), and at the latest after ``ttl``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from kosmos.api.objects import Obj
from kosmos.kube.informer import UpsertHandler


@dataclass(frozen=True)
class Reservation:
    uid: str
    owner: str  # owner UID
    cluster: str
    version: str  # the pod's resourceVersion when it was reserved
    at: float


def _unschedulable(pod: Obj) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c.get("type") == "PodScheduled" and c.get("status") == "False" for c in conditions)


class Ledger:
    def __init__(self, ttl: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._by_uid: dict[str, Reservation] = {}
        self._by_owner: dict[str, set[str]] = {}

    def __len__(self) -> int:
        return len(self._by_uid)

    def reserve(self, uid: str, owner: str, cluster: str, version: str) -> None:
        self.release(uid)
        self._by_uid[uid] = Reservation(uid, owner, cluster, version, self._clock())
        self._by_owner.setdefault(owner, set()).add(uid)

    def release(self, uid: str) -> None:
        old = self._by_uid.pop(uid, None)
        if old is None:
            return
        uids = self._by_owner.get(old.owner)
        if uids is not None:
            uids.discard(uid)
            if not uids:
                del self._by_owner[old.owner]

    def get(self, uid: str) -> Reservation | None:
        found = self._by_uid.get(uid)
        if found is not None and self._clock() - found.at > self.ttl:
            self.release(uid)
            return None
        return found

    def of_owner(self, owner: str) -> list[Reservation]:
        live = [self.get(uid) for uid in list(self._by_owner.get(owner, ()))]
        return [r for r in live if r is not None]

    def observe(self, pod: Obj) -> None:
        """A pod event from the cache: end the reservation the event makes obsolete."""
        meta = pod.get("metadata", {})
        found = self._by_uid.get(str(meta.get("uid", "")))
        if found is None:
            return
        settled = bool(pod.get("spec", {}).get("nodeName") or meta.get("deletionTimestamp"))
        refused = meta.get("resourceVersion") != found.version and _unschedulable(pod)
        if settled or refused:
            self.release(found.uid)

    def pod_gone(self, pod: Obj) -> None:
        """A pod was deleted: its reservation, if any, ends."""
        self.release(str(pod.get("metadata", {}).get("uid", "")))

    def handler(self) -> UpsertHandler:
        """Host pod informer events -> ``observe`` and ``pod_gone``."""
        return UpsertHandler(self.observe, self.pod_gone)

    def expire(self) -> int:
        """Drop reservations older than ``ttl``; returns how many."""
        now = self._clock()
        old = [uid for uid, r in self._by_uid.items() if now - r.at > self.ttl]
        for uid in old:
            self.release(uid)
        return len(old)
