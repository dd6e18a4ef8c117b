"""The pod controller: a host pod bound to a leaf node has exactly one copy in its member.

Keyed ``Request(member, namespace, name)``; every pass compares the host pod (host cache) with
the member pod (member cache) and takes one step:

* host pod gone or not on this member  -> delete the member pod Kosmos made (never others);
* host pod terminating                 -> delete the member pod with the host's grace period,
  and once it is gone finalize the host pod (grace 0), as a kubelet does;
* member pod missing                   -> copy dependencies, create it (``podforge``);
  if it had already run and was deleted in the member, a controller-owned host pod is
  deleted so its owner replaces it (a bare pod is simply recreated);
* member pod present                   -> patch what may change on a live pod, and write the
  member's status onto the host pod;
* member pod present, not Kosmos's     -> adopt it if it is the pod a migration rebuilt the
  host pod for (``adopt``: the handshake, and how a migration releases it), else
  ``NameConflict``: a foreign pod is never changed or deleted.

Member pods have the host pod's name, so a crash between steps can never duplicate one:
a second create meets AlreadyExists, and a member pod left from an older host pod of the same
name (different ``kosmos.io/host-pod-uid``) is deleted before the new one is made. A member
that cannot be reached simply fails the step and the request is retried: nothing is deleted
because a member is away.
"""

from __future__ import annotations

import contextlib
import logging
import time
from datetime import UTC, datetime

import orjson

from kosmos.api.objects import (
    Obj,
    condition_true,
    is_deleting,
    labels_of,
    name_of,
    namespace_of,
    parse_time,
    pod_phase,
    pod_terminal,
)
from kosmos.api.resources import NAMESPACES, PODS
from kosmos.clustertree import adopt, metrics
from kosmos.clustertree.copies import ensure_dependencies
from kosmos.clustertree.placement import Placement, placement_of
from kosmos.clustertree.podforge import (
    HostContext,
    host_uid,
    is_kosmos_pod,
    member_pod,
    member_status,
    mutable_patch,
)
from kosmos.clustertree.tree import Tree
from kosmos.kube.component import HOST
from kosmos.kube.controller import Request, Result, TerminalError
from kosmos.kube.errors import AlreadyExists, Conflict, Invalid, NotFound
from kosmos.kube.manager import ClusterNotFound

log = logging.getLogger("kosmos.clustertree.pods")

#: a status change that is neither a phase nor a readiness change (a container waiting,
#: a restart count, an IP while Pending) waits this long for what follows it, so a start
#: that goes Pending -> Running within it costs the host one write, not one per member event
STATUS_COALESCE_SECONDS = 1.0
#: the pod latency stages (``metrics.pod_sync_seconds``), one bit each in a pod's memo
STAGES = {"member_created": 1, "member_running": 2, "host_status": 4}


def _age(pod: Obj) -> float:
    created = pod["metadata"].get("creationTimestamp")
    if not created:
        return 0.0
    started = parse_time(created)
    return max(0.0, (datetime.now(UTC) - started).total_seconds())


def _digest(status: Obj) -> bytes:
    """What must agree between member and host status (ignoring server-side formatting).

    While a pod is Pending its conditions (the member scheduler's PodScheduled) are left
    out: the host already shows it scheduled, and one write per start instead of two keeps
    the host's write budget for pods that became Running.
    """
    pending = status.get("phase", "Pending") == "Pending"
    summary = {
        "phase": status.get("phase"),
        "podIP": status.get("podIP"),
        "reason": status.get("reason"),
        "startTime": status.get("startTime"),
        "conditions": []
        if pending
        else sorted((c["type"], c["status"]) for c in status.get("conditions") or []),
        "containers": [
            (c.get("name"), c.get("ready"), c.get("restartCount"), sorted(c.get("state") or {}))
            for c in status.get("containerStatuses") or []
        ],
    }
    return orjson.dumps(summary, option=orjson.OPT_SORT_KEYS)


class PodReconciler:
    def __init__(self, tree: Tree) -> None:
        self.tree = tree
        self._namespaces: dict[str, set[str]] = {}
        #: host pod uid -> latency stages recorded, a bit each (``STAGES``): a set per pod
        #: cost ~240 B more for each pod's life
        self._observed: dict[str, int] = {}
        self._unsynced: dict[str, float] = {}  # host pod uid -> when a held change was seen

    async def __call__(self, request: Request) -> Result | None:
        cluster, namespace, name = request.cluster, request.namespace, request.name
        if self.tree.reserved(namespace):
            return None
        try:
            cache = self.tree.member(cluster, PODS)
        except ClusterNotFound:
            return None
        if not cache.has_synced:
            return Result(requeue_after=1.0)
        key = f"{namespace}/{name}"
        host = self.tree.pods.store.get(key)
        member = cache.store.get(key)
        if host is None or self.tree.cluster_of_pod(host) != cluster:
            if host is not None and not self.tree.cluster_of_pod(host) and _same(member, host):
                return None  # bound to a node our cache does not know yet: wait, delete nothing
            if member is not None and is_kosmos_pod(member, self.tree.options.owner):
                await self._delete_member(cluster, member, None)
            if host is None and member is not None:
                self._forget(host_uid(member) or "")  # what is kept per host pod uid
            return None
        if is_deleting(host):
            return await self._terminate(cluster, host, member)
        if member is None:
            return await self._create_or_replace(cluster, host)
        if not is_kosmos_pod(member, self.tree.options.owner):
            if adopt.handshake(host, member):  # a migrated pod: see ``adopt``
                await adopt.adopt(self.tree, cluster, host, member)
                return Result(requeue_after=1.0)
            await self.tree.recorder.record(
                host,
                "Warning",
                "NameConflict",
                f"member {cluster} already has a pod {key} that Kosmos did not create",
            )
            raise TerminalError(f"{cluster}: pod {key} exists and is not Kosmos's", "NameConflict")
        if host_uid(member) != host["metadata"]["uid"]:
            if adopt.half_released(member):
                return None  # never delete a migrated pod on a partial release
            await self._delete_member(cluster, member, 0)  # left from an older host pod
            return Result(requeue_after=1.0)
        if is_deleting(member):
            return Result(requeue_after=2.0)  # deleted in the member; act once it is gone
        return await self._update(cluster, host, member)

    # -- steps -----------------------------------------------------------------------------

    async def _create_or_replace(self, cluster: str, host: Obj) -> Result | None:
        status = host.get("status") or {}
        if status.get("startTime") and not pod_terminal(host):
            # it ran in the member and is gone there: let its owner replace it
            owners = host["metadata"].get("ownerReferences") or []
            if any(ref.get("controller") for ref in owners):
                await self.tree.recorder.record(
                    host,
                    "Warning",
                    "MemberPodDeleted",
                    f"the pod was deleted in member {cluster}; deleting it so its owner "
                    "replaces it",
                )
                await self._delete_host(host)
                return None
        if pod_terminal(host):
            return None
        await self._create(cluster, host)
        return None

    async def _create(self, cluster: str, host: Obj) -> None:
        meta = host["metadata"]
        namespace = meta["namespace"]
        client = self.tree.manager.client(cluster)
        await self._ensure_namespace(cluster, namespace)
        await ensure_dependencies(self.tree, cluster, host)
        desired = member_pod(host, self._placement(cluster, host), self._context(host))
        try:
            await client.create(PODS, desired)
        except AlreadyExists:
            return  # our cache lags; the member pod's event brings us back
        except Invalid as exc:
            await self.tree.recorder.record(host, "Warning", "SyncFailed", str(exc))
            raise TerminalError(str(exc), "SyncFailed") from exc
        self._stage(cluster, host, "member_created")
        log.debug("%s: created pod %s/%s", cluster, namespace, meta["name"])

    async def _update(self, cluster: str, host: Obj, member: Obj) -> Result | None:
        desired = member_pod(host, self._placement(cluster, host), self._context(host))
        patch = mutable_patch(member, desired)
        if adopt.is_migrated(member):
            patch, dropped = adopt.without_images(patch)
            if dropped:
                message = f"adopted pod keeps its images (not set: {', '.join(dropped)})"
                await self.tree.recorder.record(host, "Warning", "ImageNotChanged", message)
        meta = member["metadata"]
        if patch:
            await self.tree.manager.client(cluster).patch(
                PODS, meta["name"], patch, namespace=meta["namespace"], patch_type="strategic"
            )
        return await self._status_up(cluster, host, member)

    async def _status_up(self, cluster: str, host: Obj, member: Obj) -> Result | None:
        running = pod_phase(member) == "Running"
        if running:
            self._stage(cluster, host, "member_running")
        uid = host["metadata"]["uid"]
        if _digest(member.get("status") or {}) == _digest(host.get("status") or {}):
            self._unsynced.pop(uid, None)
            return None
        if not _urgent(member, host):
            seen = self._unsynced.setdefault(uid, time.monotonic())
            wait = seen + STATUS_COALESCE_SECONDS - time.monotonic()
            if wait > 0:
                return Result(requeue_after=wait)
        self._unsynced.pop(uid, None)
        status = member_status(member, host)
        for key in host.get("status") or {}:
            status.setdefault(key, None)
        meta = host["metadata"]
        with contextlib.suppress(NotFound):
            await self.tree.manager.client(HOST).patch(
                PODS,
                meta["name"],
                {"status": status},
                namespace=meta["namespace"],
                subresource="status",
            )
        if running:
            self._stage(cluster, host, "host_status")
        return None

    async def _terminate(self, cluster: str, host: Obj, member: Obj | None) -> Result | None:
        if (
            member is not None
            and is_kosmos_pod(member, self.tree.options.owner)
            and _same(member, host)
        ):
            if not is_deleting(member):
                grace = host["metadata"].get("deletionGracePeriodSeconds")
                await self._delete_member(cluster, member, grace)
            return Result(requeue_after=2.0)
        await self._delete_host(host)
        self._forget(host["metadata"]["uid"])
        return None

    # -- helpers ---------------------------------------------------------------------------

    async def _delete_member(self, cluster: str, member: Obj, grace: int | None) -> None:
        meta = member["metadata"]
        with contextlib.suppress(NotFound, Conflict):
            await self.tree.manager.client(cluster).delete(
                PODS, meta["name"], meta["namespace"], uid=meta["uid"], grace_period_seconds=grace
            )

    async def _delete_host(self, host: Obj) -> None:
        meta = host["metadata"]
        with contextlib.suppress(NotFound, Conflict):
            await self.tree.manager.client(HOST).delete(
                PODS, meta["name"], meta["namespace"], uid=meta["uid"], grace_period_seconds=0
            )

    async def _ensure_namespace(self, cluster: str, namespace: str) -> None:
        known = self._namespaces.setdefault(cluster, set())
        if namespace in known:
            return
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
        with contextlib.suppress(AlreadyExists):
            await self.tree.manager.client(cluster).create(NAMESPACES, body)
        known.add(namespace)

    def _forget(self, uid: str) -> None:
        self._observed.pop(uid, None)
        self._unsynced.pop(uid, None)

    def forget_cluster(self, cluster: str) -> None:
        self._namespaces.pop(cluster, None)

    def _placement(self, cluster: str, host: Obj) -> Placement:
        node_name = host["spec"]["nodeName"]
        labels = labels_of(self.tree.leaf_nodes.store.get(node_name) or {})
        leaf = self.tree.leaf(cluster, node_name)
        if leaf is not None:
            return placement_of(leaf, labels)
        return Placement(cluster=cluster, host_node=node_name, node_labels=labels)

    def _context(self, host: Obj) -> HostContext:
        namespace = namespace_of(host)
        services = self.tree.services.store.by_index("namespace", namespace)
        policies = self.tree.cluster_policies.store.list() or self.tree.policies.store.by_index(
            "namespace", namespace
        )
        policies = sorted(policies, key=name_of)
        node = self.tree.leaf_nodes.store.get(host["spec"]["nodeName"]) or {}
        return HostContext(
            services=services,
            policies=policies,
            host_node_labels=labels_of(node),
            host_dns=self._host_dns(),
            owner=self.tree.options.owner,
        )

    def _host_dns(self) -> str:
        """Central mode only: the host DNS Service's ClusterIP ("" if it has none)."""
        options = self.tree.options
        if options.multi_cluster_service:
            return ""
        namespace, name = options.root_dns_service
        service = self.tree.services.store.get(f"{namespace}/{name}") or {}
        ip = (service.get("spec") or {}).get("clusterIP") or ""
        return "" if ip == "None" else str(ip)

    def _stage(self, cluster: str, host: Obj, stage: str) -> None:
        uid = host["metadata"]["uid"]
        bit = STAGES[stage]
        seen = self._observed.get(uid, 0)
        if not seen & bit:
            self._observed[uid] = seen | bit
            metrics.pod_sync_seconds.labels(cluster, stage).observe(_age(host))


def _urgent(member: Obj, host: Obj) -> bool:
    """A change others wait for, written at once: the phase or readiness (the pod startup
    SLI ends when the host pod is Ready)."""
    return pod_phase(member) != pod_phase(host) or condition_true(member, "Ready") != (
        condition_true(host, "Ready")
    )


def _same(member: Obj | None, host: Obj) -> bool:
    return member is not None and host_uid(member) == host["metadata"].get("uid")
