"""The migration's steps against the clusters; each is idempotent, so a controller that
crashed in the middle of one simply runs it again (the phase is recorded before its work).

Reads are live (no caches): a migration is rare and must act on the clusters as they are,
not on a cache that may lag behind a step it took a moment ago. Every step takes what it needs
from the backup once it exists, never from the member's changed state, except the pods,
which are the live ones (a pod replaced between backup and detach is the one to carry).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from kosmos.api import names
from kosmos.api.objects import Obj, annotations_of, key_of, labels_of, name_of, namespace_of
from kosmos.api.resources import NAMESPACES, NODES, PODS, Resource
from kosmos.kube.client import Client
from kosmos.kube.errors import AlreadyExists, Conflict, Forbidden, KubeError, NotFound
from kosmos.migration import plan

#: what release removes from a member pod: it is the member's own again
RELEASE = {
    "metadata": {
        "labels": {names.LABEL_POD: None},
        "annotations": {
            names.ANNOTATION_HOST_POD_UID: None,
            names.ANNOTATION_PROMOTE_POLICY: None,
        },
    }
}


@dataclass
class Sides:
    """The two clusters of one migration and the policy's key (``ns/name``)."""

    host: Client
    member: Client
    cluster: str
    policy: str
    namespaces: Sequence[str]

    async def resource(self, client: Client, obj: Obj) -> Resource:
        return await client.resource_for(str(obj["apiVersion"]), str(obj["kind"]))

    async def name(self, obj: Obj) -> str:
        """``plural`` or ``plural.group`` of a backed-up object (member discovery)."""
        resource = await self.resource(self.member, obj)
        return plan.resource_name(resource.api_version, resource.plural)


# -- reads -----------------------------------------------------------------------------------


async def leaf_nodes(host: Client, cluster: str) -> list[Obj]:
    selector = f"{names.LABEL_OWNER_CLUSTER}={cluster}"
    return list((await host.list(NODES, label_selector=selector)).items)


async def namespace_names(client: Client) -> frozenset[str]:
    return frozenset(name_of(n) for n in (await client.list(NAMESPACES)).items)


async def version(client: Client) -> str:
    found = await client.get_raw("/version")
    return str(found.get("gitVersion", ""))


async def may_create_namespaces(host: Client) -> bool:
    """Whether this process may write in the host (a dry run: nothing is created)."""
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"generateName": "kosmos-"}}
    try:
        await host.create(NAMESPACES, body, dry_run=True)
    except Forbidden:
        return False
    return True


async def live_pods(sides: Sides) -> list[Obj]:
    pods: list[Obj] = []
    for namespace in sides.namespaces:
        pods += (await sides.member.list(PODS, namespace=namespace)).items
    return pods


# -- detach (member) -------------------------------------------------------------------------


async def detach(sides: Sides, items: Sequence[Obj]) -> tuple[int, list[str]]:
    """Delete the backed-up owners top-down with Orphan, then mark every live pod.

    Returns (owners deleted so far, what is still waited for); the pods are marked only
    once the member's garbage collector has taken every owner reference to a deleted owner
    off them, so no marked pod can still be taken by its old owner.
    """
    owners = plan.owners(items)
    gone: set[str] = set()
    for _name, owner in owners:
        meta = owner["metadata"]
        resource = await sides.resource(sides.member, owner)
        with contextlib.suppress(NotFound, Conflict):
            await sides.member.delete(
                resource, meta["name"], meta["namespace"], uid=meta["uid"], propagation="Orphan"
            )
        gone.add(meta["uid"])
    pods = await live_pods(sides)
    waiting = [
        f"pod {namespace_of(p)}/{name_of(p)} still owned"
        for p in pods
        if any(r.get("uid") in gone for r in p["metadata"].get("ownerReferences") or [])
    ]
    if not waiting:
        await _all(
            _patch_pod(sides.member, pod, _mark(sides.policy))
            for pod in pods
            if annotations_of(pod).get(names.ANNOTATION_PROMOTE_POLICY) != sides.policy
        )
    return len(owners), waiting


def _mark(policy: str) -> Obj:
    return {"metadata": {"annotations": {names.ANNOTATION_PROMOTE_POLICY: policy}}}


async def _patch_pod(client: Client, pod: Obj, patch: Obj) -> None:
    meta = pod["metadata"]
    with contextlib.suppress(NotFound):
        await client.patch(PODS, meta["name"], patch, namespace=meta["namespace"])


# -- rebuild (host) --------------------------------------------------------------------------


async def create_namespaces(sides: Sides, member_namespaces: Iterable[Obj], leaf: str) -> int:
    """The host namespaces, marked so that new pods there are bound to ``leaf``."""
    made = 0
    for source in member_namespaces:
        labels = {k: v for k, v in labels_of(source).items() if k != "kubernetes.io/metadata.name"}
        labels[names.LABEL_PROMOTED_FROM] = sides.cluster
        body = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": name_of(source),
                "labels": labels,
                "annotations": {
                    names.ANNOTATION_PROMOTE_POLICY: sides.policy,
                    names.ANNOTATION_PROMOTED_TO_NODE: leaf,
                },
            },
        }
        made += await _create(sides.host, NAMESPACES, body)
    return made


async def create_all(sides: Sides, stage: Sequence[tuple[str, Obj]]) -> int:
    """Create every object of a stage in the host; those present already are left as they
    are (a cluster-scoped one the host had, or one an earlier run made)."""
    bodies = [plan.host_object(name, obj, sides.policy) for name, obj in stage]
    resources = [await sides.resource(sides.host, body) for body in bodies]
    return sum(
        await _all(_create(sides.host, r, b) for r, b in zip(resources, bodies, strict=True))
    )


async def create_pods(sides: Sides, leaves: Sequence[Obj]) -> tuple[int, int]:
    """The host pods of every marked live member pod; returns (pods, adopted so far).

    One list per side and a create only for what is missing: this step runs again every
    second until ClusterTree has adopted every pod, and host writes are rate-limited.
    """
    pods = [
        p
        for p in await live_pods(sides)
        if annotations_of(p).get(names.ANNOTATION_PROMOTE_POLICY) == sides.policy
    ]
    hosts: dict[str, Obj] = {}
    for namespace in sides.namespaces:
        hosts |= {key_of(h): h for h in (await sides.host.list(PODS, namespace=namespace)).items}
    missing = [p for p in pods if key_of(p) not in hosts]
    await _all(
        _create(sides.host, PODS, plan.host_pod(p, plan.leaf_for(p, leaves), sides.policy))
        for p in missing
    )
    adopted = sum(
        1
        for p in pods
        if key_of(p) in hosts and plan.adopted(p, hosts[key_of(p)]["metadata"]["uid"])
    )
    return len(pods), adopted


async def _all(calls: Iterable[Awaitable[Any]], limit: int = 16) -> list[Any]:
    """Run the calls with at most ``limit`` in flight (the client's rate limiter paces them)."""
    gate = asyncio.Semaphore(limit)

    async def one(call: Awaitable[Any]) -> Any:
        async with gate:
            return await call

    return list(await asyncio.gather(*(one(c) for c in calls)))


async def _create(client: Client, resource: Resource, body: Obj) -> int:
    try:
        await client.create(resource, body)
    except AlreadyExists:
        return 0
    return 1


async def _get(client: Client, resource: Resource, name: str, namespace: str) -> Obj | None:
    try:
        return await client.get(resource, name, namespace)
    except NotFound:
        return None


# -- rollback --------------------------------------------------------------------------------


async def release_pods(sides: Sides) -> int:
    """Make the marked member pods the member's own again (ClusterTree lets them be)."""
    released = 0
    for pod in await live_pods(sides):
        if annotations_of(pod).get(names.ANNOTATION_PROMOTE_POLICY) == sides.policy:
            await _patch_pod(sides.member, pod, RELEASE)
            released += 1
    return released


async def remove_host_side(sides: Sides, cluster_scoped: Sequence[Obj]) -> list[str]:
    """Delete what the migration made in the host; returns what is still going away."""
    left = []
    for namespace in sides.namespaces:
        found = await _get(sides.host, NAMESPACES, namespace, "")
        if found is None or annotations_of(found).get(names.ANNOTATION_PROMOTE_POLICY) != (
            sides.policy
        ):
            continue
        left.append(f"host namespace {namespace}")
        if not found["metadata"].get("deletionTimestamp"):
            with contextlib.suppress(NotFound, Conflict):
                await sides.host.delete(NAMESPACES, namespace, uid=found["metadata"]["uid"])
    for obj in cluster_scoped:
        resource = await sides.resource(sides.host, obj)
        current = await _get(sides.host, resource, name_of(obj), "")
        if current and annotations_of(current).get(names.ANNOTATION_PROMOTE_POLICY) == sides.policy:
            with contextlib.suppress(NotFound, Conflict):
                await sides.host.delete(resource, name_of(obj), uid=current["metadata"]["uid"])
    return left


async def restore_owners(sides: Sides, items: Sequence[Obj]) -> int:
    """Re-create the detached owners in the member, bottom-up (an owner after what it owns),
    so each adopts the released pods (or ReplicaSets) its selector matches."""
    made = 0
    for name, owner in reversed(plan.owners(items)):
        body = plan.member_object(name, owner, sides.policy)
        made += await _create(sides.member, await sides.resource(sides.member, owner), body)
    return made


def describe(error: BaseException) -> str:
    """One line for status.failureReason."""
    if isinstance(error, KubeError):
        return str(error)
    return f"{type(error).__name__}: {error}"
