"""The PromotePolicy controller: one policy, one phase at a time, recorded before its work.

Phases: Prechecking -> Backuping -> Detaching -> Restoring -> Completed, and RollingBack ->
RolledBack (asked by ``rollback: "true"``, or after FailedDetach/FailedRestore). Precheck and
backup change nothing in the member, so their failures are final (FailedPrecheck,
FailedBackup); a failure after the first owner was deleted rolls back by itself. A phase is
written to status before its work and every step is idempotent, so a controller killed at
any point resumes the recorded phase and redoes only what is missing. Errors that retrying
can fix (a member away, a timeout, a 5xx) are retried with backoff and change no phase.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from kosmos.api import names
from kosmos.api.objects import Obj, is_deleting, name_of, namespace_of, now, with_condition
from kosmos.api.resources import CLUSTERS, NAMESPACES, PROMOTE_POLICIES
from kosmos.kube.client import Client
from kosmos.kube.component import HOST
from kosmos.kube.controller import Request, Result
from kosmos.kube.errors import BadRequest, Conflict, Forbidden, Invalid, KubeError, NotFound
from kosmos.kube.events import EventRecorder
from kosmos.kube.informer import Informer
from kosmos.kube.manager import ClusterNotFound, Manager
from kosmos.migration import archive, collect, metrics, plan, steps, store

log = logging.getLogger("kosmos.migration")

#: failures no retry fixes: the phase fails (and what was changed is rolled back)
FAILURES = (Invalid, Forbidden, BadRequest, archive.BackupError)
#: the phase a failure in each phase leads to
_FAILED = {
    "Prechecking": "FailedPrecheck",
    "Backuping": "FailedBackup",
    "Detaching": "FailedDetach",
    "Restoring": "FailedRestore",
    "RollingBack": "FailedRollback",
}
TERMINAL = frozenset(
    {"FailedPrecheck", "FailedBackup", "RolledBack", "Completed", "FailedRollback"}
)
WAIT = 1.0


class PromoteReconciler:
    def __init__(self, manager: Manager, policies: Informer, recorder: EventRecorder) -> None:
        self.manager = manager
        self.policies = policies
        self.recorder = recorder
        self.host: Client = manager.client(HOST)

    async def __call__(self, request: Request) -> Result | None:
        if self.policies.store.get(f"{request.namespace}/{request.name}") is None:
            return None
        try:
            # read, not cached: the phase this process wrote a moment ago decides what runs
            # next, and a cache a few writes behind would run an earlier phase again
            policy = await self.host.get(PROMOTE_POLICIES, request.name, request.namespace)
        except NotFound:
            return None
        phase = str((policy.get("status") or {}).get("phase") or "")
        if is_deleting(policy):
            return await self._finalize(policy, phase)
        await self._ensure_finalizer(policy)
        spec = policy.get("spec") or {}
        if spec.get("rollback") == "true" and phase in ("Completed", "FailedRollback"):
            return await self._move(policy, "RollingBack", "Rollback asked")
        if phase in ("FailedDetach", "FailedRestore"):
            return await self._move(policy, "RollingBack", f"{phase}: rolling back")
        if phase in TERMINAL:
            return None
        started = time.monotonic()
        try:
            return await self._run(policy, phase or "Prechecking")
        finally:
            metrics.reconcile_seconds.labels(phase or "Prechecking").observe(
                time.monotonic() - started
            )

    async def _run(self, policy: Obj, phase: str) -> Result | None:
        try:
            sides = await self._sides(policy)
        except ClusterNotFound:
            return await self._unjoined(policy)
        try:
            return await _PHASES[phase](self, policy, sides)
        except FAILURES as error:
            return await self._fail(policy, _FAILED[phase], steps.describe(error))

    # -- phases ---------------------------------------------------------------------------

    async def _precheck(self, policy: Obj, sides: steps.Sides) -> Result | None:
        if not (policy.get("status") or {}).get("phase"):
            await self._status(policy, {"phase": "Prechecking", "startTimestamp": now()})
        spec = policy["spec"]
        member_ns = await steps.namespace_names(sides.member)
        wanted = plan.namespaces(spec, member_ns)
        sides.namespaces = [n for n in wanted if n in member_ns]
        items = await _collect(sides, spec)
        facts = plan.Facts(
            cluster_known=True,
            leaf_nodes=[name_of(n) for n in await steps.leaf_nodes(self.host, sides.cluster)],
            member_namespaces=member_ns,
            host_namespaces=await steps.namespace_names(self.host),
            member_version=await steps.version(sides.member),
            host_version=await steps.version(self.host),
            member_counts=await _counts(sides, items),
            host_resources=await _served(self.host, sides, items),
            earlier=self._earlier(policy),
            host_writable=await steps.may_create_namespaces(self.host),
        )
        errors = plan.precheck(spec, wanted, facts)
        if errors:
            await self._status(policy, {"phase": "FailedPrecheck", "precheckErrors": errors})
            await self._condition(policy, "False", "PrecheckFailed", "; ".join(errors))
            return None
        await self._status(
            policy, {"phase": "Backuping", "namespaces": wanted, "precheckErrors": None}
        )
        return await self._backup(policy, sides, items)

    async def _backup(
        self, policy: Obj, sides: steps.Sides, items: list[Obj] | None = None
    ) -> Result | None:
        """Back up ``items`` (the precheck's collection), or collect again when a restarted
        controller resumes this phase: the member has not changed before Detaching."""
        if items is None:
            items = await _collect(sides, policy["spec"])
        meta = {"policy": sides.policy, "cluster": sides.cluster, "namespaces": sides.namespaces}
        data = archive.build({**meta, "created": now()}, items)
        where = await store.write(self.host, _key(policy), data)
        progress = {"totalItems": len(items), "itemsBackedUp": len(items)}
        await self._status(
            policy, {"phase": "Detaching", "backedupFile": where, "progress": progress}
        )
        await self.recorder.record(
            policy, "Normal", "BackedUp", f"{len(items)} objects ({len(data)} bytes) in {where}"
        )
        return Result(requeue_after=0.0)

    async def _detach(self, policy: Obj, sides: steps.Sides) -> Result | None:
        items = await self._items(policy)
        owners, waiting = await steps.detach(sides, items)
        await self._progress(policy, {"ownersDetached": owners})
        if waiting:
            return Result(requeue_after=WAIT)
        await self._status(policy, {"phase": "Restoring"})
        await self.recorder.record(policy, "Normal", "Detached", f"{owners} owners orphaned")
        return Result(requeue_after=0.0)

    async def _restore(self, policy: Obj, sides: steps.Sides) -> Result | None:
        items = await self._items(policy)
        named = [(await sides.name(o), o) for o in items]
        stages = plan.rebuild_order((r, o) for r, o in named if r != "namespaces")
        sources = [
            await sides.member.get(NAMESPACES, n) for n in sides.namespaces
        ]  # the member's namespaces still exist: nothing deletes them
        leaves = await steps.leaf_nodes(self.host, sides.cluster)
        made = await steps.create_namespaces(
            sides, sources, plan.default_leaf(sides.cluster, leaves)
        )
        pods_stage = plan.stage_of(plan.PODS)
        for stage in stages:
            if plan.stage_of(stage[0][0]) >= pods_stage:
                break
            made += await steps.create_all(sides, stage)
        total, adopted = await steps.create_pods(sides, leaves)
        await self._progress(policy, {"podsTotal": total, "podsAdopted": adopted})
        if adopted < total:
            return Result(requeue_after=WAIT)
        for stage in stages:
            if plan.stage_of(stage[0][0]) > pods_stage:
                made += await steps.create_all(sides, stage)
        await self._status(policy, {"phase": "Completed", "completionTimestamp": now()})
        await self._condition(policy, "True", "Completed", f"{total} pods adopted")
        await self.recorder.record(policy, "Normal", "Completed", f"{total} pods adopted")
        return None

    async def _rollback(self, policy: Obj, sides: steps.Sides) -> Result | None:
        await steps.release_pods(sides)
        items = await self._items(policy)
        left = await steps.remove_host_side(sides, [o for o in items if not namespace_of(o)])
        if left:
            return Result(requeue_after=WAIT)
        restored = await steps.restore_owners(sides, items)
        await self._status(policy, {"phase": "RolledBack", "completionTimestamp": now()})
        reason = (policy.get("status") or {}).get("failureReason")
        message = f"{restored} owners restored in {sides.cluster}"
        await self._condition(
            policy, "False", "RolledBack", f"{reason}; {message}" if reason else message
        )
        await self.recorder.record(policy, "Normal", "RolledBack", message)
        return None

    # -- helpers --------------------------------------------------------------------------

    async def _sides(self, policy: Obj) -> steps.Sides:
        cluster = str(policy["spec"]["clusterName"])
        member = self.manager.client(cluster)  # ClusterNotFound: not (yet) registered
        namespaces = list((policy.get("status") or {}).get("namespaces") or [])
        return steps.Sides(self.host, member, cluster, plan.policy_key(policy), namespaces)

    async def _unjoined(self, policy: Obj) -> Result | None:
        cluster = str(policy["spec"]["clusterName"])
        try:
            await self.host.get(CLUSTERS, cluster)
        except NotFound:
            if str((policy.get("status") or {}).get("phase") or "") in ("", "Prechecking"):
                message = f"cluster {cluster!r} is not joined (no Cluster of that name)"
                await self._status(policy, {"phase": "FailedPrecheck", "precheckErrors": [message]})
                await self._condition(policy, "False", "PrecheckFailed", message)
                return None
        return Result(requeue_after=2.0)  # joined, its client not registered yet: wait

    async def _items(self, policy: Obj) -> list[Obj]:
        return list(archive.read(await store.read(self.host, _key(policy))).items)

    def _earlier(self, policy: Obj) -> list[tuple[str, str, list[str]]]:
        mine = (policy["metadata"].get("creationTimestamp") or "", plan.policy_key(policy))
        out = []
        for other in self.policies.store.list():
            status = other.get("status") or {}
            key = (other["metadata"].get("creationTimestamp") or "", plan.policy_key(other))
            if key >= mine or status.get("phase") in (
                "FailedPrecheck",
                "FailedBackup",
                "RolledBack",
            ):
                continue
            spec = other.get("spec") or {}
            wanted = status.get("namespaces") or spec.get("includedNamespaces") or []
            out.append((key[1], str(spec.get("clusterName")), list(wanted)))
        return out

    async def _move(self, policy: Obj, phase: str, message: str) -> Result:
        await self._status(policy, {"phase": phase})
        await self.recorder.record(policy, "Normal", phase, message)
        return Result(requeue_after=0.0)

    async def _fail(self, policy: Obj, phase: str, reason: str) -> Result | None:
        log.warning("PromotePolicy %s: %s: %s", plan.policy_key(policy), phase, reason)
        await self._status(policy, {"phase": phase, "failureReason": reason})
        await self._condition(policy, "False", phase, reason)
        await self.recorder.record(policy, "Warning", phase, reason)
        return Result(requeue_after=0.0) if phase in ("FailedDetach", "FailedRestore") else None

    async def _progress(self, policy: Obj, values: dict[str, int]) -> None:
        current = ((policy.get("status") or {}).get("progress")) or {}
        if any(current.get(k) != v for k, v in values.items()):
            await self._status(policy, {"progress": values})

    async def _condition(self, policy: Obj, status: str, reason: str, message: str) -> None:
        conditions = ((policy.get("status") or {}).get("conditions")) or []
        new = {"type": "Succeeded", "status": status, "reason": reason, "message": message[:32000]}
        await self._status(policy, {"conditions": with_condition(conditions, new)})

    async def _status(self, policy: Obj, values: dict[str, Any]) -> None:
        """Merge ``values`` into status (the phase write that makes a crash resumable)."""
        meta = policy["metadata"]
        await self.host.patch(
            PROMOTE_POLICIES,
            meta["name"],
            {"status": values},
            namespace=meta["namespace"],
            subresource="status",
        )
        status = policy.setdefault("status", {})
        for key, value in values.items():
            if isinstance(value, dict) and isinstance(status.get(key), dict):
                status[key] = {**status[key], **value}
            elif value is None:
                status.pop(key, None)
            else:
                status[key] = value
        if "phase" in values:
            metrics.phases.labels(values["phase"]).inc()

    async def _ensure_finalizer(self, policy: Obj) -> None:
        finalizers = list(policy["metadata"].get("finalizers") or [])
        if names.FINALIZER_PROMOTE in finalizers:
            return
        await self._finalizers(policy, [*finalizers, names.FINALIZER_PROMOTE])

    async def _finalize(self, policy: Obj, phase: str) -> Result | None:
        """A policy goes once it rests; its backup goes with it (a finished migration is the
        host's to manage, a rolled-back one the member's)."""
        if phase and phase not in TERMINAL:
            return Result(requeue_after=WAIT)  # let the running phase finish first
        await store.delete(self.host, _key(policy))
        finalizers = [
            f for f in policy["metadata"].get("finalizers") or [] if f != names.FINALIZER_PROMOTE
        ]
        with contextlib.suppress(NotFound):
            await self._finalizers(policy, finalizers)
        return None

    async def _finalizers(self, policy: Obj, finalizers: list[str]) -> None:
        meta = policy["metadata"]
        body = {"metadata": {"finalizers": finalizers, "resourceVersion": meta["resourceVersion"]}}
        with contextlib.suppress(Conflict):
            await self.host.patch(PROMOTE_POLICIES, meta["name"], body, namespace=meta["namespace"])


async def _collect(sides: steps.Sides, spec: Obj) -> list[Obj]:
    return await collect.collect(
        sides.member,
        list(sides.namespaces),
        spec.get("includedNamespaceScopedResources") or ["*"],
        spec.get("excludedNamespaceScopedResources") or [],
    )


def _key(policy: Obj) -> str:
    return store.key_for(namespace_of(policy), name_of(policy))


async def _counts(sides: steps.Sides, items: list[Obj]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for obj in items:
        name = await sides.name(obj)
        counts[name] = counts.get(name, 0) + 1
    return counts


async def _served(host: Client, sides: steps.Sides, items: list[Obj]) -> frozenset[str]:
    served = set()
    for api_version, kind in {(str(o["apiVersion"]), str(o["kind"])) for o in items}:
        with contextlib.suppress(KubeError):
            resource = await host.resource_for(api_version, kind)
            served.add(plan.resource_name(resource.api_version, resource.plural))
    return frozenset(served)


Phase = Callable[[PromoteReconciler, Obj, steps.Sides], Awaitable[Result | None]]
_PHASES: dict[str, Phase] = {
    "Prechecking": PromoteReconciler._precheck,
    "Backuping": PromoteReconciler._backup,
    "Detaching": PromoteReconciler._detach,
    "Restoring": PromoteReconciler._restore,
    "RollingBack": PromoteReconciler._rollback,
}
