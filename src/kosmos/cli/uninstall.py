"""``kosmosctl uninstall``: remove what ``install`` created, in the reverse order.

Clusters go first, while the controllers still run and can release their finalizers; then
the Deployments and RBAC; then the CRDs (a CRD still holding objects is kept unless --force,
since deleting a CRD deletes every object of it); then the namespace. Every delete tolerates
NotFound, so an interrupted uninstall is finished by running it again. Member clusters still
joined make it refuse, naming them, unless --force.
"""

from __future__ import annotations

import click

from kosmos.api import names
from kosmos.api.cluster import Cluster
from kosmos.api.objects import Obj
from kosmos.api.resources import CUSTOMRESOURCEDEFINITIONS, NAMESPACES, Resource
from kosmos.api.schema import kind_info
from kosmos.cli import apply as applier
from kosmos.cli import linkside, manifests
from kosmos.cli.context import CliContext, pass_cli
from kosmos.cli.install import namespace_option, timeout_option
from kosmos.cli.manifests import InstallOptions
from kosmos.cli.output import Progress
from kosmos.kube.client import Client
from kosmos.kube.errors import NotFound

#: Namespaces uninstall never deletes, even when told to install into one of them.
PROTECTED_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})


@click.command()
@namespace_option
@click.option(
    "--force",
    is_flag=True,
    help="Also delete joined member Clusters, CRDs that still hold objects, and finalizers "
    "that keep Clusters from going away.",
)
@click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="Wait until the CRDs and the namespace are gone.",
)
@timeout_option
@pass_cli
def uninstall(cli_ctx: CliContext, namespace: str, force: bool, wait: bool, timeout: float) -> None:
    """Remove Kosmos from the host cluster (idempotent).

    Refuses while member clusters are joined (unjoin them first), unless --force.
    """
    cli_ctx.run(_uninstall(cli_ctx, namespace, force, wait, timeout))


def is_root(cluster: Obj) -> bool:
    annotations = cluster["metadata"].get("annotations") or {}
    return annotations.get(names.ANNOTATION_CLUSTER_ROLE) == "root"


async def _uninstall(
    cli_ctx: CliContext, namespace: str, force: bool, wait: bool, timeout: float
) -> list[str]:
    progress = Progress()
    client = await cli_ctx.host()
    options = InstallOptions(namespace=namespace)
    clusters = await _list_or_empty(client, kind_info(Cluster).resource)
    members = sorted(c["metadata"]["name"] for c in clusters if not is_root(c))
    if members and not force:
        raise click.ClickException(
            f"refusing to uninstall: member clusters still joined: {', '.join(members)} "
            "(unjoin them first, or pass --force to delete them)"
        )
    lines: list[str] = []
    targets = clusters if force else [c for c in clusters if is_root(c)]
    agents = [(c, await linkside.member_client(client, c)) for c in targets if not is_root(c)]
    try:
        await _delete_clusters(
            client, clusters=targets, force=force, timeout=timeout, lines=lines, progress=progress
        )
        for cluster, member in agents:  # a forced uninstall takes the members' agents too
            await linkside.tear_down(client, member, cluster, progress)
    finally:
        for _, member in agents:
            if member is not None:
                await member.close()
    await linkside.remove_all(client, progress)
    for resource, body in reversed(manifests.all_component_objects(options)):
        await _delete(client, resource, body, lines)
    gone: list[applier.Target] = []
    for resource, body in manifests.crd_objects():
        name = body["metadata"]["name"]
        remaining = await _instances(client, body)
        if remaining and not force:
            progress(f"keeping CRD {name}: {remaining} object(s) of it remain (--force deletes)")
            continue
        if await _delete(client, resource, body, lines):
            gone.append((CUSTOMRESOURCEDEFINITIONS, name, None))
    if await _delete_namespace(client, namespace, lines, progress):
        gone.append((NAMESPACES, namespace, None))
    if wait and gone:
        progress(f"waiting for {len(gone)} objects to finish deleting")
        left = await applier.wait_gone(client, gone, timeout)
        if left:
            raise click.ClickException(
                f"timed out after {timeout:g}s; still deleting: {_names(left)} "
                "(it continues in the background; re-run uninstall to check)"
            )
    progress("Kosmos uninstalled" if lines else "nothing to uninstall")
    return lines


async def _delete(client: Client, resource: Resource, body: Obj, lines: list[str]) -> bool:
    meta = body["metadata"]
    if await applier.delete(client, resource, meta["name"], meta.get("namespace")):
        line = f"{manifests.display_name(resource, body)} deleted"
        click.echo(line)  # at once: an uninstall that fails later still shows what it did
        lines.append(line)
        return True
    return False


async def _list_or_empty(client: Client, resource: Resource) -> list[Obj]:
    """Objects of a kind; none when its CRD is not installed (404 on the collection)."""
    try:
        return (await client.list(resource)).items
    except NotFound:
        return []


async def _delete_clusters(
    client: Client,
    *,
    clusters: list[Obj],
    force: bool,
    timeout: float,
    lines: list[str],
    progress: Progress,
) -> None:
    """Delete Clusters and wait for them: their finalizers need the controllers still running.

    A finalizer nobody releases within the timeout is removed with --force, else reported.
    """
    resource = kind_info(Cluster).resource
    for cluster in clusters:
        await _delete(client, resource, cluster, lines)
    if not clusters:
        return
    items: list[applier.Target] = [(resource, c["metadata"]["name"], None) for c in clusters]
    left = await applier.wait_gone(client, items, timeout)
    if not left:
        return
    if not force:
        raise click.ClickException(
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
    client: Client, namespace: str, lines: list[str], progress: Progress
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
    return await _delete(client, NAMESPACES, body, lines)
