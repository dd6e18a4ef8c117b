"""``kosmosctl join cluster`` and ``kosmosctl unjoin cluster``: flags and output.

The flags and the kubeconfig are checked here, before anything connects; the join itself
(:func:`kosmos.ops.join.join_member`) checks the clusters before it creates anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from kosmos.api import names
from kosmos.cli.install import log_format_option
from kosmos.cli.invocation import CliContext, pass_cli
from kosmos.ops.join import join_member, unjoin_member
from kosmos.ops.manifests import parse_node_selector
from kosmos.ops.membership import (
    JoinOptions,
    MembershipError,
    check_name,
    flatten_kubeconfig,
    parse_elastic_ips,
    parse_leaf_model,
)
from kosmos.ops.progress import Progress


@click.group()
def join() -> None:
    """Join a member cluster to Kosmos."""


@click.group()
def unjoin() -> None:
    """Remove a member cluster from Kosmos."""


@join.command("cluster")
@click.option("--name", required=True, help="Name of the member in Kosmos (DNS label).")
@click.option(
    "--kubeconfig",
    "member_kubeconfig",
    required=True,
    type=click.Path(dir_okay=False),
    help="Kubeconfig of the member cluster.",
)
@click.option("--context", "member_context", help="Context of the member kubeconfig.")
@click.option("-n", "--namespace", default=names.SYSTEM_NAMESPACE, show_default=True)
@click.option("--cni", default="calico", show_default=True)
@click.option("--default-nic", default="*", show_default=True, help="Tunnel NIC; * = detect.")
@click.option(
    "--network-type", type=click.Choice(["p2p", "gateway"]), default="p2p", show_default=True
)
@click.option(
    "--direct-routing",
    is_flag=True,
    help="Gateway mode: internal nodes route to their gateway over their NIC, no vx-local "
    "(the nodes must share one L2 segment).",
)
@click.option(
    "--ip-family", type=click.Choice(["all", "ipv4", "ipv6"]), default="all", show_default=True
)
@click.option("--enable-all", is_flag=True, help="ClusterLink and ClusterTree (default).")
@click.option("--enable-link", is_flag=True, help="ClusterLink only (unless --enable-tree).")
@click.option("--enable-tree", is_flag=True, help="ClusterTree only (unless --enable-link).")
@click.option(
    "--leaf-model",
    default="whole",
    show_default=True,
    help="whole | one-to-one | selector=<key=value,...>",
)
@click.option("--node-elastic-ip", default="", help="node=ip,... public IPs for tunnels.")
@click.option("--cluster-pod-cidrs", default="", help="cidr,... instead of CNI discovery.")
@click.option(
    "--use-external-apiserver",
    is_flag=True,
    help="Discover the service CIDR by asking the apiserver.",
)
@click.option(
    "--image-repository",
    default=None,
    help="Registry and path of the agents' image (<repository>/kosmos:<version>) "
    "[default: the install's, docker.io/kosmos].",
)
@click.option("--version", "version", default=None, help="Image tag of the agents.")
@click.option(
    "--link-apiserver",
    default=None,
    help="The host apiserver's URL as the member's nodes reach it, for the ClusterLink "
    "agents [default: the host kubeconfig's].",
)
@click.option(
    "--mcs-dns/--no-mcs-dns",
    default=True,
    show_default=True,
    help="With ClusterTree: kosmos-coredns (clusterset.local) in the member, forwarded to "
    "from its kube-system/coredns.",
)
@click.option(
    "--node-selector",
    default="",
    metavar="KEY=VALUE,...",
    help="Labels the member's Kosmos pods (kosmos-coredns) select.",
)
@log_format_option
@click.option(
    "--wait",
    "wait_seconds",
    default=120,
    show_default=True,
    help="Seconds to wait for Ready when a cluster-manager is running (0: no wait).",
)
@pass_cli
def join_cluster(cli: CliContext, /, **flags: Any) -> None:
    """Join a member cluster: checks first, then creates its Secret and Cluster.

    Re-run with the same kubeconfig to converge the member's Kosmos pods (--version,
    --image-repository, --log-format).
    """
    options = _options(flags)
    kubeconfig = _flatten(Path(flags["member_kubeconfig"]).expanduser(), flags["member_context"])
    progress = Progress()
    wait_seconds = int(flags["wait_seconds"])
    message = cli.run(join_member(cli, options, kubeconfig, wait_seconds, progress))
    click.echo(message)


def _options(flags: dict[str, Any]) -> JoinOptions:
    link, tree = flags["enable_link"], flags["enable_tree"]
    if flags["enable_all"] or not (link or tree):
        link = tree = True
    try:
        check_name(flags["name"])
        parse_leaf_model(flags["leaf_model"])
        parse_elastic_ips(flags["node_elastic_ip"])
        if flags["direct_routing"] and flags["network_type"] != "gateway":
            raise ValueError("--direct-routing needs --network-type gateway")
        selector = parse_node_selector(flags["node_selector"])
    except (MembershipError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    return JoinOptions(
        name=flags["name"],
        namespace=flags["namespace"],
        cni=flags["cni"],
        default_nic=flags["default_nic"],
        network_type=flags["network_type"],
        direct_routing=flags["direct_routing"],
        ip_family=flags["ip_family"],
        enable_link=link,
        enable_tree=tree,
        leaf_model=flags["leaf_model"],
        node_elastic_ips=flags["node_elastic_ip"],
        cluster_pod_cidrs=flags["cluster_pod_cidrs"],
        use_external_apiserver=flags["use_external_apiserver"],
        image_repository=flags["image_repository"],
        link_apiserver=flags["link_apiserver"],
        version=flags["version"],
        mcs_dns=flags["mcs_dns"],
        node_selector=selector,
        log_format=flags["log_format"],
    )


def _flatten(path: Path, context: str | None) -> str:
    try:
        return flatten_kubeconfig(path, context)
    except MembershipError as exc:
        raise click.ClickException(str(exc)) from exc


@unjoin.command("cluster")
@click.option("--name", required=True, help="Name of the member in Kosmos.")
@click.option(
    "--wait",
    "wait_seconds",
    default=120,
    show_default=True,
    help="Seconds to wait for the controllers' finalizers.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Drop remaining finalizers (objects in the member may stay behind).",
)
@pass_cli
def unjoin_cluster(cli: CliContext, name: str, wait_seconds: int, force: bool) -> None:
    """Remove a member: deletes its Cluster; controllers clean up through finalizers."""
    click.echo(cli.run(unjoin_member(cli, name, wait_seconds, force, Progress())))
