"""``kosmosctl install``: its flags and how it prints what it applied.

The install itself (order, dry run, waits) is :func:`kosmos.ops.install.install`.
"""

from __future__ import annotations

import ipaddress
import json

import click
import yaml

from kosmos.api import names
from kosmos.api.schema import is_dns1123_label
from kosmos.cli.invocation import CliContext, output_flag, pass_cli
from kosmos.kube import logs
from kosmos.ops import apply as applier
from kosmos.ops import kubenest, manifests
from kosmos.ops.install import install as install_kosmos
from kosmos.ops.kubenest import KubenestOptions
from kosmos.ops.manifests import InstallOptions


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


def _address(_: click.Context, __: click.Parameter, value: str) -> str:
    if not value:
        return ""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an IP address") from None


def timeout_option(f: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "--timeout",
        type=click.FloatRange(min=1),
        default=120,
        show_default=True,
        help="Seconds to wait for each wait step before failing.",
    )(f)


def log_format_option(f: click.decorators.FC) -> click.decorators.FC:
    """install's and join's ``--log-format``: what the Kosmos pods they create get."""
    return click.option(
        "--log-format",
        type=click.Choice(logs.FORMATS),
        default="text",
        show_default=True,
        help="The components' logs: text, or one JSON object per line (their --log-format).",
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
@click.option(
    "--mcs-dns/--no-mcs-dns",
    default=True,
    show_default=True,
    help="With ClusterTree: kosmos-coredns (clusterset.local), forwarded to from "
    "kube-system/coredns. --no-mcs-dns removes an installed one.",
)
@click.option(
    "--enable-kubenest/--disable-kubenest",
    default=False,
    show_default=True,
    help="kubenest's virtual-cluster-operator (tenant control planes as pods of the host, "
    "--provider in-cluster). Disabling removes an installed one.",
)
@click.option(
    "--kubenest-advertise-address",
    default="",
    callback=_address,
    metavar="IP",
    help="With kubenest: the address tenants' apiservers are published on (a VIP or load "
    "balancer in front of the nodes; default: a host node's InternalIP).",
)
@click.option(
    "--kubenest-control-plane-node-selector",
    multiple=True,
    metavar="KEY=VALUE",
    help="With kubenest: tenant control-plane pods only on nodes with this label (repeatable).",
)
@click.option(
    "--kubenest-image-repository",
    default=kubenest.DEFAULT_IMAGE_REPOSITORY,
    show_default=True,
    help="With kubenest: where the etcd, kube-apiserver, kube-controller-manager, "
    "kube-scheduler and kwok images are (upstream's names and tags).",
)
@click.option(
    "--enable-migration/--disable-migration",
    default=False,
    show_default=True,
    help="Let the cluster-manager run application migrations (PromotePolicy): a ClusterRole "
    "that may create and delete any resource in the host.",
)
@click.option(
    "--node-selector",
    default="",
    metavar="KEY=VALUE,...",
    help="Labels every Kosmos pod selects: the nodes the control plane runs on.",
)
@click.option(
    "--auto-mcs-prefix",
    multiple=True,
    metavar="PREFIX",
    help="Export every Service of host namespaces with this prefix to every member "
    "(the cluster-manager's --auto-mcs-prefix; repeatable).",
)
@log_format_option
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
@output_flag("name", "yaml", "json", help="Print one line per object, or the objects themselves.")
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
    enable_kubenest: bool,
    kubenest_advertise_address: str,
    kubenest_control_plane_node_selector: tuple[str, ...],
    kubenest_image_repository: str,
    mcs_dns: bool,
    enable_migration: bool,
    node_selector: str,
    auto_mcs_prefix: tuple[str, ...],
    log_format: str,
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
    extender) with least-privilege RBAC, and the root Cluster kosmos-control-cluster; with
    ClusterLink, its agents on the host's nodes too, so the host is a peer of the members.
    With --enable-kubenest, kubenest's virtual-cluster-operator too. A component disabled
    with --disable-tree/--disable-link/--disable-scheduler/--disable-kubenest is not
    installed, and removed if an earlier install created it.
    """
    try:
        selector = manifests.parse_node_selector(node_selector)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--node-selector") from exc
    try:
        control_planes = kubenest.parse_labels(kubenest_control_plane_node_selector)
    except ValueError as exc:
        hint = "--kubenest-control-plane-node-selector"
        raise click.BadParameter(str(exc), param_hint=hint) from exc
    options = InstallOptions(
        namespace=namespace,
        image_repository=image_repository,
        version=version,
        enable_tree=enable_tree,
        enable_link=enable_link,
        enable_scheduler=enable_scheduler,
        enable_kubenest=enable_kubenest,
        kubenest=KubenestOptions(
            advertise_address=kubenest_advertise_address,
            node_selector=control_planes,
            image_repository=kubenest_image_repository,
        ),
        mcs_dns=mcs_dns,
        cni=cni,
        default_nic=default_nic,
        node_selector=selector,
        auto_mcs_prefixes=tuple(auto_mcs_prefix),
        migration=enable_migration,
        log_format=log_format,
    )
    report = Report(output, dry_run)
    cli_ctx.run(
        install_kosmos(cli_ctx, options, report, dry_run=dry_run, wait=wait, timeout=timeout)
    )
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
