"""Applying and removing a list of objects the way install/uninstall need it.

Server-side apply with one field manager makes every run converge to the same objects
(re-running is a no-op), and a server-side dry run of the whole list before the first write
catches invalid objects and missing permissions while nothing is changed yet. Waits poll with
a deadline so a stuck rollout or finalizer becomes one clear error, not a hang.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from kosmos.api.objects import Obj, condition_true
from kosmos.api.resources import CUSTOMRESOURCEDEFINITIONS, NAMESPACES, Resource
from kosmos.kube.client import Client
from kosmos.kube.errors import NotFound
from kosmos.ops.manifests import FIELD_MANAGER, display_name

POLL_SECONDS = 0.5


class WaitTimeout(Exception):
    """A wait ran past its deadline; the message says what was still pending."""


@dataclass
class Step:
    """One object of a plan and what applying it did (or would do)."""

    resource: Resource
    body: Obj
    action: str = "created"  # created | configured | unchanged
    result: Obj | None = None  # the server's answer (dry run or real)
    unchecked: str = ""  # why a dry run could not check it yet

    @property
    def name(self) -> str:
        return display_name(self.resource, self.body)

    def line(self, dry_run: bool) -> str:
        """A kubectl-like result line: ``namespace/kosmos-system created (server dry run)``."""
        if self.unchecked:
            return f"{self.name} {self.action} (not checked: {self.unchecked})"
        if not dry_run:
            return f"{self.name} {self.action}"
        return (
            f"{self.name} {self.action} ({'dry run' if self.result is None else 'server dry run'})"
        )


def strip(obj: Obj) -> Obj:
    """An object as users want to read it: without managedFields."""
    obj.get("metadata", {}).pop("managedFields", None)
    return obj


def _comparable(obj: Obj) -> Obj:
    meta = {
        k: v
        for k, v in obj.get("metadata", {}).items()
        if k not in {"resourceVersion", "managedFields", "generation"}
    }
    return {**{k: v for k, v in obj.items() if k != "status"}, "metadata": meta}


async def get_or_none(
    client: Client, resource: Resource, name: str, namespace: str | None = None
) -> Obj | None:
    try:
        return await client.get(resource, name, namespace)
    except NotFound:
        return None


async def apply(client: Client, resource: Resource, body: Obj, *, dry_run: bool) -> Step:
    """Server-side apply one object (forcing ownership: install is the authority on it)."""
    meta = body["metadata"]
    existing = await get_or_none(client, resource, meta["name"], meta.get("namespace"))
    result = await client.apply(
        resource, body, field_manager=FIELD_MANAGER, force=True, dry_run=dry_run
    )
    if existing is None:
        action = "created"
    elif _comparable(existing) == _comparable(result):
        action = "unchanged"
    else:
        action = "configured"
    return Step(resource, body, action, result)


async def preflight(client: Client, objects: Iterable[tuple[Resource, Obj]]) -> list[Step]:
    """Dry-run every object whose prerequisites exist; the rest are marked unchecked.

    A namespaced object cannot be dry-run before its namespace exists, nor a custom object
    before its CRD is established -- nor, on an upgrade, against the schema its CRD has
    before this apply changes it: a field the new release adds would be refused as "not
    declared in schema" by the old one. Those are reported, everything else is checked.
    """
    objects = list(objects)
    namespaces = {b["metadata"]["namespace"] for _, b in objects if "namespace" in b["metadata"]}
    missing_ns = {ns for ns in namespaces if await get_or_none(client, NAMESPACES, ns) is None}
    crds = {
        (c["spec"]["group"], c["spec"]["names"]["plural"]): c
        for r, c in objects
        if r == CUSTOMRESOURCEDEFINITIONS
    }
    steps = []
    for resource, body in objects:
        namespace = body["metadata"].get("namespace")
        crd = crds.get((resource.group, resource.plural))
        why = await _not_checkable(client, crd) if crd else ""
        if namespace in missing_ns:
            steps.append(
                Step(resource, body, unchecked=f"namespace {namespace} does not exist yet")
            )
        elif why:
            steps.append(Step(resource, body, unchecked=why))
        else:
            steps.append(await apply(client, resource, body, dry_run=True))
    return steps


async def _not_checkable(client: Client, crd: Obj) -> str:
    """Why a custom object of ``crd`` (as this apply has it) cannot be dry-run now, or ""."""
    name = crd["metadata"]["name"]
    installed = await get_or_none(client, CUSTOMRESOURCEDEFINITIONS, name)
    if installed is None or not _established(installed):
        return f"CRD {name} is not installed yet"
    if _schemas(installed) != _schemas(crd):
        return f"CRD {name} changes in this apply; checked when applied"
    return ""


def _schemas(crd: Obj) -> dict[str, Obj]:
    return {v["name"]: v.get("schema") or {} for v in crd["spec"].get("versions") or []}


async def established(client: Client, crd_name: str) -> bool:
    crd = await get_or_none(client, CUSTOMRESOURCEDEFINITIONS, crd_name)
    return crd is not None and _established(crd)


def _established(crd: Obj) -> bool:
    return not crd["metadata"].get("deletionTimestamp") and condition_true(crd, "Established")


async def poll(
    what: str,
    timeout: float,
    pending: Callable[[], Awaitable[str]],
    *,
    interval: float = POLL_SECONDS,
    report: Callable[[str], None] | None = None,
) -> None:
    """Call ``pending()`` (async; returns a description of what is pending, or "") until done.

    ``report`` hears each new description, so a long wait says what it is waiting for.
    """
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        left = await pending()
        if not left:
            return
        if report is not None and left != last:
            report(left)
        last = left
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out after {timeout:g}s waiting for {what}: {left}")
        await asyncio.sleep(interval)


async def wait_established(client: Client, crd_names: list[str], timeout: float) -> None:
    async def pending() -> str:
        waiting = [n for n in crd_names if not await established(client, n)]
        return ", ".join(waiting) + (" not Established" if waiting else "")

    await poll("CRDs to be Established", timeout, pending)


def unavailable(deployment: Obj) -> str:
    """Why a Deployment is not (yet) fully rolled out and Available; "" when it is."""
    spec, status = deployment.get("spec", {}), deployment.get("status") or {}
    want = spec.get("replicas", 1)
    if status.get("observedGeneration", 0) < deployment["metadata"].get("generation", 0):
        return "rollout not observed yet"
    for key in ("updatedReplicas", "availableReplicas"):
        if status.get(key, 0) < want:
            return f"{status.get(key, 0)}/{want} {key[: -len('Replicas')]}"
    # As `kubectl rollout status`: an old pod still serving is not the new version rolled out.
    old = status.get("replicas", 0) - status.get("updatedReplicas", 0)
    if old > 0:
        return f"{old} old replicas pending termination"
    if not condition_true(deployment, "Available"):
        return "not Available"
    return ""


async def delete(client: Client, resource: Resource, name: str, namespace: str | None) -> bool:
    """Delete if present; False when it was already gone (uninstall is idempotent)."""
    try:
        await client.delete(resource, name, namespace, propagation="Background")
    except NotFound:
        return False
    return True


Target = tuple[Resource, str, str | None]


def target_name(target: Target) -> str:
    return f"{target[0].kind.lower()}/{target[1]}"


async def wait_gone(client: Client, items: list[Target], timeout: float) -> list[Target]:
    """Wait until none of ``items`` exists; returns those still present at the deadline."""
    left: list[Target] = []

    async def pending() -> str:
        left[:] = [t for t in items if await get_or_none(client, *t) is not None]
        return ", ".join(target_name(t) for t in left)

    try:
        await poll("deletion", timeout, pending)
    except WaitTimeout:
        return left
    return []


def summarize(actions: list[str]) -> str:
    """``17 objects: 2 created, 15 unchanged`` (actions in a stable order)."""
    counts = Counter(actions)
    order = ("created", "configured", "unchanged")
    parts = [f"{counts[a]} {a}" for a in order if counts[a]]
    parts += [f"{n} {a}" for a, n in sorted(counts.items()) if a not in order]
    return f"{len(actions)} objects: {', '.join(parts) or 'none'}"
