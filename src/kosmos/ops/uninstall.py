"""Removing what ``install`` created, in the reverse order (``kosmosctl uninstall``).

Clusters go first, while the controllers still run and can release their finalizers; then
the Deployments and RBAC; then the CRDs (a CRD still holding objects is kept unless forced,
since deleting a CRD deletes every object of it); then the namespace. Every delete tolerates
NotFound, so an interrupted uninstall is finished by running it again. Member clusters still
joined make it refuse, naming them, unless forced.
"""

from __future__ import annotations

from collections.abc import Callable

from kosmos.api import link, names
from kosmos.api.objects import Obj
from kosmos.api.resources import (
    CLUSTERS,
    CUSTOMRESOURCEDEFINITIONS,
    LEASES,
    NAMESPACES,
    PODS,
    VIRTUAL_CLUSTERS,
    Resource,
)
from kosmos.kube.client import Client
from kosmos.kube.errors import KubeError, NotFound
from kosmos.mcs import app as mcs_app
from kosmos.ops import apply as applier
from kosmos.ops import hostlink, linkside, manifests, mcsdns, probeside, scheduling
from kosmos.ops.errors import OperationError
from kosmos.ops.host import Host
from kosmos.ops.manifests import InstallOptions
from kosmos.ops.progress import Progress

MANAGER = manifests.CLUSTER_MANAGER.object_name
#: Namespaces uninstall never deletes, even when told to install into one of them.
PROTECTED_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})

#: Hears each object as soon as it is deleted (``deployment.apps/kosmos-scheduler deleted``).
Deleted = Callable[[str], None]


def is_root(cluster: Obj) -> bool:
    annotations = cluster["metadata"].get("annotations") or {}
    return annotations.get(names.ANNOTATION_CLUSTER_ROLE) == "root"


async def uninstall(
    hosts: Host, namespace: str, *, force: bool, wait: bool, timeout: float, deleted: Deleted
) -> list[str]:
    """Remove Kosmos from the host; returns the lines of what was deleted."""
    progress = Progress()
    client = await hosts.client()
    clusters = await _clusters_to_delete(client, force)
    tenants = await _virtual_clusters_to_delete(client, force)
    lines: list[str] = []

    def record(line: str) -> None:
        deleted(line)  # at once: an uninstall that fails later still shows what it did
        lines.append(line)

    await _remove_virtual_clusters(client, tenants, timeout=timeout, record=record)
    await _remove_clusters(
        client, clusters, force=force, timeout=timeout, record=record, progress=progress
    )
    if await hostlink.tear_down(client, namespace, progress):
        record(f"daemonset.apps/{linkside.AGENT} deleted")
    await linkside.remove_all(client, progress)
    await mcsdns.unwire(client, "host", progress)
    options = InstallOptions(namespace=namespace, migration=True)  # every optional object
    for resource, body in reversed(manifests.all_component_objects(options)):
        await _delete(client, resource, body, record)
    await forget_mcs(client, namespace, timeout, progress)
    gone = await _remove_crds(client, force, record, progress)
    if await _delete_namespace(client, namespace, record, progress):
        gone.append((NAMESPACES, namespace, None))
    if wait and gone:
        progress(f"waiting for {len(gone)} objects to finish deleting")
        left = await applier.wait_gone(client, gone, timeout)
        if left:
            raise OperationError(
                f"timed out after {timeout:g}s; still deleting: {_names(left)} "
                "(it continues in the background; re-run uninstall to check)"
            )
    progress("Kosmos uninstalled" if lines else "nothing to uninstall")
    return lines


async def forget_mcs(client: Client, namespace: str, timeout: float, progress: Progress) -> None:
    """The host's imports, derived Services and MCS slices, once no cluster-manager pod runs:
    a terminating one still reconciles and would re-create what is removed."""
    selector = ",".join(f"{k}={v}" for k, v in manifests.selector(MANAGER).items())

    async def running() -> str:
        pods = (await client.list(PODS, namespace=namespace, label_selector=selector)).items
        return ", ".join(p["metadata"]["name"] for p in pods)

    try:
        await applier.poll(f"{MANAGER} pods to stop", timeout, running, report=progress)
    except applier.WaitTimeout:
        progress(f"{MANAGER} still running: the MCS imports in the host may come back")
    try:
        await mcs_app.forget_member(client)
    except KubeError as exc:  # e.g. a CRD's storage still initializing: not worth failing for
        progress(f"could not remove the host's MCS imports and derived Services ({exc})")


async def release_host(client: Client, *, timeout: float, progress: Progress) -> list[str]:
    """What must happen while the controllers still run, and no manifest can say: refuse when
    members or virtual clusters remain, delete the root Cluster and wait for its finalizers,
    remove the agent identities joins left and the clusterset.local stanza. Run by the Helm
    chart's pre-delete hook (``kosmos helm-hook pre-delete``), before Helm deletes the rest."""
    lines: list[str] = []
    clusters = await _clusters_to_delete(client, force=False)
    await _virtual_clusters_to_delete(client, force=False)
    await _remove_clusters(
        client, clusters, force=False, timeout=timeout, record=lines.append, progress=progress
    )
    await linkside.remove_all(client, progress)
    await mcsdns.unwire(client, "host", progress)
    return lines


async def remove_leases(client: Client, namespace: str, progress: Progress) -> None:
    """The Leases the components hold (leader election) and the agents take (ClusterLink
    gateways): objects of no manifest. ``uninstall`` deletes the namespace with them; the Helm
    chart leaves the namespace, so its post-delete hook removes them here."""
    elected = {c.lease for c in manifests.COMPONENTS} | {scheduling.NAME, scheduling.EXTENDER_LEASE}
    for ns in sorted({namespace, names.SYSTEM_NAMESPACE}):
        try:
            leases = (await client.list(LEASES, ns)).items
        except NotFound:
            continue
        for lease in leases:
            name = lease["metadata"]["name"]
            ours = name in elected or name.startswith(link.GATEWAY_LEASE_PREFIX)
            if ours and await applier.delete(client, LEASES, name, ns):
                progress(f"lease.coordination.k8s.io/{name} deleted")


async def _clusters_to_delete(client: Client, force: bool) -> list[Obj]:
    """The root Cluster, and with ``force`` the members; without it, members refuse."""
    clusters = await _list_or_empty(client, CLUSTERS)
    members = sorted(c["metadata"]["name"] for c in clusters if not is_root(c))
    if members and not force:
        raise OperationError(
            f"refusing to uninstall: member clusters still joined: {', '.join(members)} "
            "(unjoin them first, or pass --force to delete them)"
        )
    return clusters if force else [c for c in clusters if is_root(c)]


async def _virtual_clusters_to_delete(client: Client, force: bool) -> list[Obj]:
    """VirtualClusters hold host nodes and a finalizer only kubenest's operator releases
    (after giving the nodes back): without ``force`` they make uninstall refuse."""
    tenants = await _list_or_empty(client, VIRTUAL_CLUSTERS)
    if tenants and not force:
        keys = sorted(f"{t['metadata']['namespace']}/{t['metadata']['name']}" for t in tenants)
        raise OperationError(
            f"refusing to uninstall: virtual clusters still exist: {', '.join(keys)} "
            "(delete them first, which returns their nodes to the host, or pass --force to "
            "delete them)"
        )
    return tenants


async def _remove_virtual_clusters(
    client: Client, tenants: list[Obj], *, timeout: float, record: Deleted
) -> None:
    """Delete them while the operator still runs, and wait: it returns their nodes, stops
    their control planes and then releases the finalizer."""
    for tenant in tenants:
        await _delete(client, VIRTUAL_CLUSTERS, tenant, record)
    items: list[applier.Target] = [
        (VIRTUAL_CLUSTERS, t["metadata"]["name"], t["metadata"]["namespace"]) for t in tenants
    ]
    left = await applier.wait_gone(client, items, timeout) if items else []
    if left:
        raise OperationError(
            f"{_names(left)} still present after {timeout:g}s (is the "
            "virtual-cluster-operator running? it returns their nodes, then releases them); "
            "re-run uninstall once they are gone"
        )


async def _remove_clusters(
    client: Client,
    clusters: list[Obj],
    *,
    force: bool,
    timeout: float,
    record: Deleted,
    progress: Progress,
) -> None:
    """Delete the Clusters; a forced uninstall takes the members' agents and probers too."""
    agents = [
        (c, await linkside.member_client(client, c, linked_only=False))
        for c in clusters
        if not is_root(c)
    ]
    try:
        for cluster in clusters:
            await _delete(client, CLUSTERS, cluster, record)
        await _finalized(client, clusters, force=force, timeout=timeout, progress=progress)
        for cluster, member in agents:
            await probeside.tear_down_member(client, member, cluster, progress)
    finally:
        for _, member in agents:
            if member is not None:
                await member.close()


async def _remove_crds(
    client: Client, force: bool, record: Deleted, progress: Progress
) -> list[applier.Target]:
    """Delete the CRDs (one still holding objects only with ``force``); returns those deleted."""
    gone: list[applier.Target] = []
    for resource, body in manifests.crd_objects():
        name = body["metadata"]["name"]
        remaining = await _instances(client, body)
        if remaining and not force:
            progress(f"keeping CRD {name}: {remaining} object(s) of it remain (--force deletes)")
            continue
        if await _delete(client, resource, body, record):
            gone.append((CUSTOMRESOURCEDEFINITIONS, name, None))
    return gone


async def _delete(client: Client, resource: Resource, body: Obj, record: Deleted) -> bool:
    meta = body["metadata"]
    if await applier.delete(client, resource, meta["name"], meta.get("namespace")):
        line = f"{manifests.display_name(resource, body)} deleted"
        record(line)
        return True
    return False


async def _list_or_empty(client: Client, resource: Resource) -> list[Obj]:
    """Objects of a kind; none when its CRD is not installed (404 on the collection)."""
    try:
        return (await client.list(resource)).items
    except NotFound:
        return []


async def _finalized(
    client: Client, clusters: list[Obj], *, force: bool, timeout: float, progress: Progress
) -> None:
    """Wait for deleted Clusters to go: their finalizers need the controllers still running.

    A finalizer nobody releases within the timeout is removed with --force, else reported.
    """
    resource = CLUSTERS
    if not clusters:
        return
    items: list[applier.Target] = [(resource, c["metadata"]["name"], None) for c in clusters]
    left = await applier.wait_gone(client, items, timeout)
    if not left:
        return
    if not force:
        raise OperationError(
            f"{_names(left)} still present after {timeout:g}s (a finalizer is not released; "
            "is the cluster-manager running?); re-run with --force to remove the finalizers"
        )
    for _, name, _ in left:
        try:
            await client.patch(resource, name, {"metadata": {"finalizers": None}})
        except NotFound:
            continue
        progress(f"removed the finalizers of cluster {name}")
    await applier.wait_gone(client, left, timeout)


def _names(targets: list[applier.Target]) -> str:
    return ", ".join(applier.target_name(t) for t in targets)


async def _instances(client: Client, crd: Obj) -> int:
    """How many objects of a CRD exist (0 when the CRD is gone); one page is enough to know."""
    spec = crd["spec"]
    resource = Resource(
        spec["group"],
        spec["versions"][0]["name"],
        spec["names"]["plural"],
        spec["names"]["kind"],
        spec["scope"] == "Namespaced",
    )
    try:
        page = await client.request(
            "GET", resource.path(), what=f"list {resource}", params={"limit": 1}
        )
    except NotFound:
        return 0
    items = page.get("items") or []
    more = (page.get("metadata") or {}).get("remainingItemCount")
    return len(items) + int(more or 0)


async def _delete_namespace(
    client: Client, namespace: str, record: Deleted, progress: Progress
) -> bool:
    """Delete the namespace unless it is a system one or kosmosctl never labelled it."""
    current = await applier.get_or_none(client, NAMESPACES, namespace)
    if current is None:
        return False
    managed = (current["metadata"].get("labels") or {}).get("app.kubernetes.io/managed-by")
    if namespace in PROTECTED_NAMESPACES:
        progress(f"keeping namespace {namespace}: a system namespace")
        return False
    if managed != manifests.MANAGED_BY:
        progress(f"keeping namespace {namespace}: not labelled as managed by kosmosctl")
        return False
    body = {"metadata": {"name": namespace}}
    return await _delete(client, NAMESPACES, body, record)
