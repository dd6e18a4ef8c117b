"""Writing a VirtualCluster's status: both reconcilers write the one object, so each write
re-reads it and carries its resourceVersion (a Conflict re-reads and tries again) instead of
replacing the other reconciler's conditions with a stale list."""

from __future__ import annotations

from typing import Any

from kosmos.api.objects import Obj, name_of, namespace_of, now, set_condition
from kosmos.api.resources import VIRTUAL_CLUSTERS
from kosmos.kube.client import Client
from kosmos.kube.errors import Conflict
from kosmos.kube.events import EventRecorder
from kosmos.kubenest import phases

_ATTEMPTS = 5


async def fresh(host: Client, vc: Obj) -> Obj:
    return await host.get(VIRTUAL_CLUSTERS, name_of(vc), namespace_of(vc))


async def write(host: Client, vc: Obj, change: phases.Transition) -> Obj:
    """Apply ``change`` (phase, conditions, other status fields, Ready recomputed,
    ``updateTime`` stamped) to the current object; returns what the apiserver stored."""
    current = vc
    for attempt in range(_ATTEMPTS):
        if attempt:
            current = await fresh(host, vc)
        body = _status(current, change)
        try:
            return await host.patch(
                VIRTUAL_CLUSTERS,
                name_of(current),
                {
                    "metadata": {"resourceVersion": current["metadata"]["resourceVersion"]},
                    "status": body,
                },
                namespace=namespace_of(current),
                subresource="status",
            )
        except Conflict:
            if attempt == _ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _status(vc: Obj, change: phases.Transition) -> dict[str, Any]:
    stamp = now()
    conditions = [dict(c) for c in (vc.get("status") or {}).get("conditions") or []]
    for new in change.conditions:
        set_condition(conditions, new, stamp)
    set_condition(conditions, phases.ready_condition(conditions), stamp)
    body: dict[str, Any] = {**change.status, "conditions": conditions, "updateTime": stamp}
    if change.phase:
        body["phase"] = change.phase
    return body


async def record(recorder: EventRecorder, vc: Obj, change: phases.Transition) -> None:
    if change.event is not None:
        type_, reason, message = change.event
        await recorder.record(vc, type_, reason, message)


async def apply(host: Client, recorder: EventRecorder, vc: Obj, change: phases.Transition) -> Obj:
    """Write ``change`` and record its Event; skip the write when it would change nothing
    but the time (a level-based reconcile runs often)."""
    if not _changes(vc, change):
        return vc
    stored = await write(host, vc, change)
    await record(recorder, vc, change)
    return stored


def _changes(vc: Obj, change: phases.Transition) -> bool:
    status = vc.get("status") or {}
    if change.phase and change.phase != status.get("phase"):
        return True
    if any(status.get(k) != v for k, v in change.status.items()):
        return True
    conditions = [dict(c) for c in status.get("conditions") or []]
    changed = False
    for new in change.conditions:
        changed |= set_condition(conditions, new)
    changed |= set_condition(conditions, phases.ready_condition(conditions))
    return changed
