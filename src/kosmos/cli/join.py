"""``kosmosctl join cluster`` and ``kosmosctl unjoin cluster``.

join checks everything before it creates anything — flags, the kubeconfig, that the member
answers, that the credentials have the rights Kosmos needs, that Kosmos is installed, and
that the Cluster validates (server-side dry run) — then creates the credentials Secret and the
Cluster, rolling the Secret back if the Cluster cannot be created. The Secret is owned by the
Cluster, so deleting the Cluster (unjoin) garbage-collects it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from pathlib import Path
from typing import Any

import click

from kosmos.api import names
from kosmos.api.cluster import Cluster
from kosmos.api.resources import NAMESPACES, NODES, SECRETS, Resource
from kosmos.api.schema import kind_info
from kosmos.cli import linkside, waiting
from kosmos.cli.context import CliContext, pass_cli
from kosmos.cli.membership import (
    REQUIRED_RIGHTS,
    JoinOptions,
    MembershipError,
    check_name,
    cluster_object,
    flatten_kubeconfig,
    leaf_models_one_to_one,
    parse_elastic_ips,
    parse_leaf_model,
    same_credentials,
    secret_name,
    secret_object,
)
from kosmos.cli.output import Progress
from kosmos.kube import config as kube_config
from kosmos.kube.client import Client
from kosmos.kube.errors import KubeError, NotFound

CLUSTERS = kind_info(Cluster).resource
ACCESS_REVIEWS = Resource(
    "authorization.k8s.io", "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview", False
)
FIELD_MANAGER = "kosmosctl"


class Refused(click.ClickException):
    """A clear, one-line refusal (exit code 1)."""


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
@click.option("--image-repository", default=None)
@click.option(
    "--wait",
    "wait_seconds",
    default=120,
    show_default=True,
    help="Seconds to wait for Ready when a cluster-manager is running (0: no wait).",
)
@pass_cli
def join_cluster(cli: CliContext, /, **flags: Any) -> None:
    """Join a member cluster: checks first, then creates its Secret and Cluster."""
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
    except MembershipError as exc:
        raise Refused(str(exc)) from exc
    return JoinOptions(
        name=flags["name"],
        namespace=flags["namespace"],
        cni=flags["cni"],
        default_nic=flags["default_nic"],
        network_type=flags["network_type"],
        ip_family=flags["ip_family"],
        enable_link=link,
        enable_tree=tree,
        leaf_model=flags["leaf_model"],
        node_elastic_ips=flags["node_elastic_ip"],
        cluster_pod_cidrs=flags["cluster_pod_cidrs"],
        use_external_apiserver=flags["use_external_apiserver"],
        image_repository=flags["image_repository"],
    )


def _flatten(path: Path, context: str | None) -> str:
    try:
        return flatten_kubeconfig(path, context)
    except MembershipError as exc:
        raise Refused(str(exc)) from exc


async def join_member(
    cli: CliContext,
    options: JoinOptions,
    kubeconfig: str,
    wait_seconds: int,
    progress: Progress,
) -> str:
    """Check, then join one member (idempotent); the one code path of every join.

    ``kubeconfig`` is the member's flattened kubeconfig text. Returns the one-line outcome;
    raises ``Refused`` (a ClickException) or ``KubeError``.
    """
    name = options.name
    member = Client(await kube_config.from_kubeconfig_text(name, kubeconfig, origin="--kubeconfig"))
    try:
        version = (await member.get_raw("/version"))["gitVersion"]
        progress(f"{name}: reachable, Kubernetes {version}")
        await _check_rights(member, name)
        leaf_models = parse_leaf_model(options.leaf_model)
        if leaf_models == []:
            leaf_models = leaf_models_one_to_one(await _join_labelled_nodes(member, name))
    finally:
        await member.close()

    host = await cli.host()
    await _check_installed(host)
    existing = await _existing(host, name)
    if existing is not None:
        if same_credentials(existing, kubeconfig):
            return f"cluster {name} is already joined"
        raise Refused(
            f"cluster {name} is already joined with another kubeconfig; "
            f"`kosmosctl unjoin cluster --name {name}` first"
        )
    cluster = cluster_object(options, leaf_models)
    await host.create(CLUSTERS, cluster, dry_run=True)  # validation before any write
    await _create(host, cluster, kubeconfig, progress)
    if options.enable_link:  # on failure this removes the Cluster again: nothing half-made
        try:
            await linkside.join(
                host,
                name,
                kubeconfig,
                namespace=options.namespace,
                repository=options.image_repository,
                progress=progress,
            )
        except linkside.LinkSetupFailed as exc:
            raise Refused(str(exc)) from exc
    if options.enable_tree:
        await waiting.wait_condition(
            host, name, wait_seconds, progress, controller="cluster-manager", condition="Ready"
        )
    if options.enable_link:
        await waiting.wait_condition(
            host,
            name,
            wait_seconds,
            progress,
            controller="network-manager",
            condition="CIDRsDiscovered",
            report_false=True,
        )
    return f"cluster {name} joined"


async def _check_rights(member: Client, name: str) -> None:
    async def allowed(group: str, resource: str, verb: str) -> bool:
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"group": group, "resource": resource, "verb": verb}},
        }
        result = await member.create(ACCESS_REVIEWS, review)
        return bool(result.get("status", {}).get("allowed"))

    verdicts = await asyncio.gather(*(allowed(*right) for right in REQUIRED_RIGHTS))
    missing = [
        f"{verb} {res}"
        for (_, res, verb), ok in zip(REQUIRED_RIGHTS, verdicts, strict=True)
        if not ok
    ]
    if missing:
        raise Refused(
            f"cluster {name}: the kubeconfig lacks rights Kosmos needs: {', '.join(missing)}"
        )


async def _join_labelled_nodes(member: Client, name: str) -> list[str]:
    nodes = await member.list(NODES, label_selector=f"{names.LABEL_JOIN}=true")
    if not nodes.items:
        raise Refused(
            f"cluster {name}: --leaf-model one-to-one needs member nodes labelled "
            f"{names.LABEL_JOIN}=true"
        )
    return sorted(n["metadata"]["name"] for n in nodes.items)


async def _check_installed(host: Client) -> None:
    try:
        await host.resource_for(names.API_VERSION, "Cluster")
        await host.get(NAMESPACES, names.SYSTEM_NAMESPACE)
    except (NotFound, KubeError) as exc:
        if (
            isinstance(exc, KubeError)
            and not isinstance(exc, NotFound)
            and "not served" not in str(exc)
        ):
            raise
        raise Refused("Kosmos is not installed in the host: run `kosmosctl install` first") from exc


async def _existing(host: Client, name: str) -> str | None:
    """The kubeconfig a joined Cluster uses, or None when it is not joined."""
    try:
        cluster = await host.get(CLUSTERS, name)
    except NotFound:
        return None
    spec = cluster.get("spec", {})
    if spec.get("kubeconfig"):
        return base64.b64decode(spec["kubeconfig"]).decode()
    ref = spec.get("kubeconfigSecretRef") or {}
    try:
        secret = await host.get(SECRETS, ref.get("name", ""), ref.get("namespace"))
    except NotFound:
        return ""
    data = secret.get("data", {}).get(ref.get("key", names.KUBECONFIG_SECRET_KEY), "")
    return base64.b64decode(data).decode()


async def _create(
    host: Client, cluster: dict[str, Any], kubeconfig: str, progress: Progress
) -> None:
    name = cluster["metadata"]["name"]
    secret = secret_object(name, kubeconfig)
    await host.apply(SECRETS, secret, field_manager=FIELD_MANAGER, force=True)
    try:
        created = await host.create(CLUSTERS, cluster)
    except KubeError:
        await host.delete(SECRETS, secret_name(name), names.SYSTEM_NAMESPACE)
        raise
    owner = {
        "apiVersion": names.API_VERSION,
        "kind": "Cluster",
        "name": name,
        "uid": created["metadata"]["uid"],
    }
    await host.patch(
        SECRETS,
        secret_name(name),
        {"metadata": {"ownerReferences": [owner]}},
        namespace=names.SYSTEM_NAMESPACE,
    )
    progress(f"{name}: Secret {names.SYSTEM_NAMESPACE}/{secret_name(name)} and Cluster created")


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


async def unjoin_member(
    cli: CliContext, name: str, wait_seconds: int, force: bool, progress: Progress
) -> str:
    """Delete a member's Cluster and wait for the controllers' finalizers (idempotent)."""
    host = await cli.host()
    try:
        cluster = await host.get(CLUSTERS, name)
    except NotFound:
        return f"cluster {name} is not joined"
    annotations = cluster["metadata"].get("annotations") or {}
    if annotations.get(names.ANNOTATION_CLUSTER_ROLE) == "root":
        raise Refused(f"cluster {name} is the host itself: use `kosmosctl uninstall`")
    member = await linkside.member_client(host, cluster)
    try:
        await host.delete(CLUSTERS, name, propagation="Background")
        await _wait_finalized(host, name, wait_seconds, force, progress)
        await linkside.tear_down(host, member, cluster, progress)
    finally:
        if member is not None:
            await member.close()
    with contextlib.suppress(NotFound):  # normally garbage-collected via its owner
        await host.delete(SECRETS, secret_name(name), names.SYSTEM_NAMESPACE)
    return f"cluster {name} unjoined"


async def _wait_finalized(
    host: Client, name: str, wait_seconds: int, force: bool, progress: Progress
) -> None:
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            current = await host.get(CLUSTERS, name)
        except NotFound:
            break
        finalizers = current["metadata"].get("finalizers") or []
        if force and finalizers:
            progress(f"{name}: dropping finalizers {finalizers}")
            await host.patch(CLUSTERS, name, {"metadata": {"finalizers": None}})
        elif time.monotonic() > deadline:
            owners = {
                names.FINALIZER_CLUSTER_MANAGER: "cluster-manager",
                names.FINALIZER_NETWORK_MANAGER: "network-manager",
            }
            waiting = sorted({owners.get(f, f) for f in finalizers})
            raise Refused(
                f"cluster {name} still finalizing ({', '.join(finalizers)}); is the "
                f"{' / '.join(waiting)} running? Re-run with --force to drop the finalizers"
            )
        progress(f"{name}: waiting for finalizers {finalizers}")
        await asyncio.sleep(1)
