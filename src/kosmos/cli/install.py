"""``kosmosctl install``: put the Kosmos control plane into the host cluster.

Order matters and is fixed: a server-side dry run of everything first (so an invalid object
or a missing permission stops the install before anything is written), then the CRDs (and
wait until they are Established, since the root Cluster is one of their objects), then the
namespace, each enabled component's ServiceAccount, RBAC and Deployment, and the root Cluster.
Every object is server-side applied by field manager ``kosmosctl``, so re-running converges
instead of failing on AlreadyExists, and an upgrade is just a re-run with another --version.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import click
import yaml

from kosmos.api import names
from kosmos.api.resources import CUSTOMRESOURCEDEFINITIONS, DEPLOYMENTS
from kosmos.api.schema import is_dns1123_label
from kosmos.cli import apply as applier
from kosmos.cli import manifests
from kosmos.cli.context import CliContext, pass_cli
from kosmos.cli.manifests import InstallOptions
from kosmos.cli.output import Progress
from kosmos.kube.client import Client
from kosmos.kube.errors import KubeError


def namespace_option(f: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "-n",
        "--namespace",
        default=names.SYSTEM_NAMESPACE,
        show_default=True,
        callback=_check_namespace,
        help="Namespace of the Kosmos components.",
    )(f)


def _check_namespace(_: click.Context, __: click.Parameter, value: str) -> str:
    if not is_dns1123_label(value):
        raise click.BadParameter(f"{value!r} is not a valid namespace name")
    return value


def timeout_option(f: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "--timeout",
        type=click.FloatRange(min=1),
        default=120,
        show_default=True,
        help="Seconds to wait for each wait step before failing.",
    )(f)


@click.command()
@namespace_option
@click.option(
    "--version",
    "version",
    default=manifests.default_version(),
    show_default=True,
    help="Image tag of the Kosmos components.",
)
@click.option(
    "--image-repository",
    "--private-image-registry",
    "image_repository",
    default=manifests.DEFAULT_IMAGE_REPOSITORY,
    show_default=True,
    help="Registry and path of the kosmos image (<repository>/kosmos:<version>).",
)
@click.option(
    "--enable-tree/--disable-tree",
    default=True,
    show_default=True,
    help="ClusterTree (cluster-manager). Disabling removes an installed one.",
)
@click.option(
    "--enable-link/--disable-link",
    default=True,
    show_default=True,
    help="ClusterLink (network-manager). Disabling removes an installed one.",
)
@click.option(
    "--enable-scheduler/--disable-scheduler",
    default=True,
    show_default=True,
    help="kosmos-scheduler (kube-scheduler + extender). Disabling removes an installed one.",
)
@click.option("--cni", default="calico", show_default=True, help="CNI of the host cluster.")
@click.option(
    "--default-nic",
    default="*",
    show_default=True,
    help="Tunnel NIC on the host's nodes (* = autodetect).",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Check everything with a server-side dry run and print it; change nothing.",
)
@click.option(
    "--wait/--no-wait",
    default=False,
    show_default=True,
    help="Wait until the Deployments are Available (CRDs are always waited for).",
)
@timeout_option
@click.option(
    "-o",
    "--output",
    type=click.Choice(["name", "yaml", "json"]),
    default="name",
    show_default=True,
    help="Print one line per object, or the objects themselves.",
)
@pass_cli
def install(
    cli_ctx: CliContext,
    *,
    namespace: str,
    version: str,
    image_repository: str,
    enable_tree: bool,
    enable_link: bool,
    enable_scheduler: bool,
    cni: str,
    default_nic: str,
    dry_run: bool,
    wait: bool,
    timeout: float,
    output: str,
) -> None:
    """Install Kosmos into the host cluster (idempotent).

    Re-run it to upgrade (--version) or reconfigure.

    Creates the kosmos.io CRDs, the namespace, the cluster-manager (ClusterTree),
    network-manager (ClusterLink) and kosmos-scheduler (kube-scheduler with the Kosmos
    extender) with least-privilege RBAC, and the root Cluster kosmos-control-cluster. A
    component disabled with --disable-tree/--disable-link/--disable-scheduler is not
    installed, and removed if an earlier install created it.
    """
    options = InstallOptions(
        namespace=namespace,
        image_repository=image_repository,
        version=version,
        enable_tree=enable_tree,
        enable_link=enable_link,
        enable_scheduler=enable_scheduler,
        cni=cni,
        default_nic=default_nic,
    )
    report = Report(output, dry_run)
    cli_ctx.run(_install(cli_ctx, options, report, wait, timeout))
    report.finish()


class Report:
    """Prints each applied object at once (``-o name``), or all objects at the end."""

    def __init__(self, output: str, dry_run: bool) -> None:
        self.output, self.dry_run = output, dry_run
        self.steps: list[applier.Step] = []

    def __call__(self, step: applier.Step) -> None:
        self.steps.append(step)
        if self.output == "name":
            click.echo(step.line(self.dry_run))

    def finish(self) -> None:
        items = [applier.strip(step.result or step.body) for step in self.steps]
        if self.output == "json":
            click.echo(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}, indent=2))
        elif self.output == "yaml":
            click.echo(yaml.safe_dump_all(items, sort_keys=False), nl=False)


async def _install(
    cli_ctx: CliContext, options: InstallOptions, report: Report, wait: bool, timeout: float
) -> None:
    progress = Progress()
    client = await cli_ctx.host()
    objects = manifests.install_objects(options)
    progress(f"checking {len(objects)} objects with a server-side dry run")
    try:
        plan = await applier.preflight(client, objects)
    except KubeError as exc:
        raise click.ClickException(f"dry run failed, nothing was changed: {exc}") from exc
    removals = await _removals(client, options)
    if report.dry_run:
        for step in plan + removals:
            report(step)
        progress(f"dry run: {len(plan)} objects checked, nothing changed")
        return
    try:
        await apply_all(client, objects, report, progress, timeout)
        for step in removals:
            meta = step.body["metadata"]
            await applier.delete(client, step.resource, meta["name"], meta.get("namespace"))
            report(step)
        deployments = [
            (b["metadata"]["namespace"], b["metadata"]["name"])
            for r, b in objects
            if r == DEPLOYMENTS
        ]
        if wait and deployments:
            progress(f"waiting for {len(deployments)} Deployments to be Available")
            await applier.wait_available(client, DEPLOYMENTS, deployments, timeout)
    except (KubeError, applier.WaitTimeout) as exc:
        raise click.ClickException(
            f"{exc} ({len(report.steps)} of {len(objects)} objects applied; re-run install "
            "to finish, or run uninstall to remove them)"
        ) from exc
    progress(f"installed Kosmos {options.version} in namespace {options.namespace}")


async def apply_all(
    client: Client,
    objects: list[manifests.Planned],
    report: Callable[[applier.Step], None],
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


async def _removals(client: Client, options: InstallOptions) -> list[applier.Step]:
    """Objects of disabled components that an earlier install left: to be deleted."""
    out = []
    for resource, body in reversed(manifests.disabled_objects(options)):
        meta = body["metadata"]
        current = await applier.get_or_none(client, resource, meta["name"], meta.get("namespace"))
        if current is not None:
            out.append(applier.Step(resource, body, "deleted"))
    return out
