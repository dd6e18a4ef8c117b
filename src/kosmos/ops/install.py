"""Installing Kosmos into the host cluster (``kosmosctl install``).

Order matters and is fixed: a server-side dry run of everything first (so an invalid object
or a missing permission stops the install before anything is written), then the CRDs (and
wait until they are Established, since the root Cluster is one of their objects), then the
namespace, each enabled component's ServiceAccount, RBAC and Deployment, and the root Cluster.
Every object is server-side applied by field manager ``kosmosctl``, so re-running converges
instead of failing on AlreadyExists, and an upgrade is just a re-run with another version.
"""

from __future__ import annotations

from collections.abc import Callable

from kosmos.api.resources import CUSTOMRESOURCEDEFINITIONS, DEPLOYMENTS, VIRTUAL_CLUSTERS
from kosmos.kube.client import Client
from kosmos.kube.errors import KubeError, NotFound
from kosmos.ops import apply as applier
from kosmos.ops import hostlink, manifests, mcsdns, rollout
from kosmos.ops.errors import OperationError
from kosmos.ops.host import Host
from kosmos.ops.manifests import InstallOptions, Planned
from kosmos.ops.progress import Progress

#: Hears every object as it is applied, deleted or (dry run) checked.
Report = Callable[[applier.Step], None]


async def install(
    hosts: Host,
    options: InstallOptions,
    report: Report,
    *,
    dry_run: bool,
    wait: bool,
    timeout: float,
) -> None:
    """Install (or upgrade, or reconfigure) Kosmos; with ``dry_run`` only check and report."""
    progress = Progress()
    client = await hosts.client()
    objects = manifests.install_objects(options)
    progress(f"checking {len(objects)} objects with a server-side dry run")
    try:
        plan = await applier.preflight(client, objects)
    except KubeError as exc:
        raise OperationError(f"dry run failed, nothing was changed: {exc}") from exc
    removals = await _removals(client, options)
    await _keep_tenants_served(client, removals)
    if dry_run:
        for step in plan + removals:
            report(step)
        progress(f"dry run: {len(plan)} objects checked, nothing changed")
        return
    done: list[applier.Step] = []

    def reported(step: applier.Step) -> None:
        done.append(step)
        report(step)

    try:
        await _apply(
            client,
            objects,
            removals,
            report=reported,
            progress=progress,
            wait=wait,
            timeout=timeout,
        )
        await _cluster_dns(client, options, progress)
        await _host_agents(client, options, progress, wait=wait, timeout=timeout)
    except rollout.RolloutFailed as exc:
        raise OperationError(
            f"{exc}\n(every object is applied; fix the cause, e.g. --image-repository/--version, "
            "and re-run install, or run uninstall to remove them)"
        ) from exc
    except (KubeError, applier.WaitTimeout) as exc:
        raise OperationError(
            f"{exc} ({len(done)} of {len(objects)} objects applied; re-run install "
            "to finish, or run uninstall to remove them)"
        ) from exc
    progress(f"installed Kosmos {options.version} in namespace {options.namespace}")


async def _cluster_dns(client: Client, options: InstallOptions, progress: Progress) -> None:
    """Forward clusterset.local from the host's DNS to kosmos-coredns, or undo that."""
    if options.enable_mcs_dns:
        await mcsdns.wire(client, options.namespace, "host", progress)
    else:
        await mcsdns.unwire(client, "host", progress)


async def _host_agents(
    client: Client, options: InstallOptions, progress: Progress, *, wait: bool, timeout: float
) -> None:
    """The host's own ClusterLink agents when link is enabled (the root Cluster is a peer)."""
    if not options.enable_link:
        await hostlink.tear_down(client, options.namespace, progress)
        return
    if await hostlink.set_up(client, options, progress) and wait:
        await hostlink.wait(client, options, timeout, progress)


async def _apply(
    client: Client,
    objects: list[Planned],
    removals: list[applier.Step],
    *,
    report: Report,
    progress: Progress,
    wait: bool,
    timeout: float,
) -> None:
    """Apply everything, delete what disabled components left, wait for the Deployments."""
    await apply_all(client, objects, report, progress, timeout)
    for step in removals:
        meta = step.body["metadata"]
        await applier.delete(client, step.resource, meta["name"], meta.get("namespace"))
        report(step)
    deployments: list[rollout.Workload] = [
        (DEPLOYMENTS, b["metadata"]["namespace"], b["metadata"]["name"])
        for r, b in objects
        if r == DEPLOYMENTS
    ]
    if wait and deployments:
        progress(f"waiting for {len(deployments)} Deployments to be Available")
        await rollout.wait(
            client, deployments, timeout, report=lambda why: progress(f"waiting: {why}")
        )


async def apply_all(
    client: Client,
    objects: list[Planned],
    report: Report,
    progress: Callable[[str], None],
    timeout: float,
) -> None:
    """Server-side apply ``objects`` in order, CRDs first and Established before the rest."""
    crds = [(r, b) for r, b in objects if r == CUSTOMRESOURCEDEFINITIONS]
    for resource, body in crds:
        report(await applier.apply(client, resource, body, dry_run=False))
    progress(f"waiting for {len(crds)} CRDs to be Established")
    await applier.wait_established(client, [b["metadata"]["name"] for _, b in crds], timeout)
    for resource, body in objects:
        if resource != CUSTOMRESOURCEDEFINITIONS:
            report(await applier.apply(client, resource, body, dry_run=False))


async def _keep_tenants_served(client: Client, removals: list[applier.Step]) -> None:
    """Refuse to remove kubenest's operator while VirtualClusters exist: only it returns
    their nodes and releases their finalizers (a re-run without --enable-kubenest would
    otherwise strand them)."""
    operator = manifests.VIRTUAL_CLUSTER_OPERATOR.object_name
    if not any(
        s.resource == DEPLOYMENTS and s.body["metadata"]["name"] == operator for s in removals
    ):
        return
    try:
        tenants = (await client.list(VIRTUAL_CLUSTERS)).items
    except NotFound:  # no CRD, no tenant
        return
    if tenants:
        keys = sorted(f"{t['metadata']['namespace']}/{t['metadata']['name']}" for t in tenants)
        raise OperationError(
            f"refusing to remove kubenest's operator: virtual clusters still exist: "
            f"{', '.join(keys)} (pass --enable-kubenest to keep it, or delete them first); "
            "nothing was changed"
        )


async def _removals(client: Client, options: InstallOptions) -> list[applier.Step]:
    """Objects of disabled components that an earlier install left: to be deleted."""
    out = []
    for resource, body in reversed(manifests.disabled_objects(options)):
        meta = body["metadata"]
        current = await applier.get_or_none(client, resource, meta["name"], meta.get("namespace"))
        if current is not None:
            out.append(applier.Step(resource, body, "deleted"))
    return out
