"""The ``kosmosctl local`` commands: the local multi-cluster environment (real control planes
+ kwok), and Kosmos set up on it (:mod:`kosmos.ops.local_setup`)."""

from __future__ import annotations

import os
from dataclasses import asdict

import click

from kosmos.cli.output import FORMATS, emit, table
from kosmos.kube.errors import KubeError
from kosmos.local import components, environment, images, paths, toolchain
from kosmos.local.kubectl import KubectlError
from kosmos.local.kwokctl import KwokctlError
from kosmos.local.nodes import REAL_NODE_FAILURES
from kosmos.local.nodes.lifecycle import NodeStatus
from kosmos.local.topology import Options, PlanError
from kosmos.ops import local_incluster, local_setup
from kosmos.ops.errors import OperationError
from kosmos.ops.progress import Progress

FAILURES = (
    toolchain.ToolchainError,
    KwokctlError,
    KubectlError,
    PlanError,
    environment.LocalEnvError,
    *REAL_NODE_FAILURES,
)


@click.group()
def local() -> None:
    """Run a host cluster and member clusters as local processes.

    State lives in $KOSMOS_LOCAL_DIR (default ~/.kosmos/local); built binaries are cached in
    $KOSMOS_CACHE_DIR (default ~/.cache/kosmos).
    """


@local.command()
@click.option("--rebuild", is_flag=True, help="Rebuild even if the cache has the binaries.")
@click.option(
    "--kubernetes-version",
    metavar="VERSION",
    help="Re-pin the k8s tools module to this release (e.g. v1.36.4) before building.",
)
def toolchain_cmd(rebuild: bool, kubernetes_version: str | None) -> None:
    """Build (or reuse) control-plane, kwok and real-node binaries (kubelet, flanneld, pause...)."""
    try:
        if kubernetes_version:
            toolchain.regenerate_k8s_module(kubernetes_version)
        tools = toolchain.ensure(Progress(), rebuild=rebuild)
    except toolchain.ToolchainError as exc:
        raise click.ClickException(str(exc)) from exc
    for built in tools.groups.values():
        state = "cached" if built.reused else "built"
        click.echo(
            f"{built.group.name:7} {built.version:9} {state:6} "
            f"build {built.build_seconds:6.0f}s  peak RSS {built.peak_rss_mib:5.0f} MiB  "
            f"{built.directory}"
        )
    click.echo(f"binaries linked in {paths.bin_dir()}")


toolchain_cmd.name = "toolchain"


@local.command("images")
@click.option(
    "--only",
    type=click.Choice(images.ALL),
    multiple=True,
    help="Build only this image (repeatable); default: all.",
)
@click.option("--rebuild", is_flag=True, help="Rebuild even if the cache has the archive.")
def images_cmd(only: tuple[str, ...], rebuild: bool) -> None:
    """Build (or reuse) the images real nodes run: pause, shell, http and kosmos.

    Each is an OCI archive for `ctr -n k8s.io images import`, cached in
    $KOSMOS_CACHE_DIR/images by a digest of its inputs.
    """
    try:
        built = images.build(Progress(), keys=only or images.ALL, rebuild=rebuild)
    except (images.ImageError, toolchain.ToolchainError) as exc:
        raise click.ClickException(str(exc)) from exc
    rows = [
        [
            b.image.key,
            b.image.ref,
            f"{b.size / 2**20:.1f}Mi",
            "cached" if b.seconds is None else f"built {b.seconds:.1f}s",
            str(b.image.archive),
        ]
        for b in built
    ]
    click.echo(table(["name", "ref", "size", "built/cached", "archive"], rows))


@local.command()
@click.option("--members", default=2, show_default=True, help="Number of member clusters.")
@click.option("--nodes", default=3, show_default=True, help="kwok nodes per cluster.")
@click.option(
    "--real-nodes",
    default=0,
    show_default=True,
    help="Real nodes per cluster (kubelet, containerd, flannel, kube-proxy in a network "
    "namespace); scripts/up asks for 1.",
)
@click.option(
    "--overlap",
    is_flag=True,
    help="Give cluster1 and cluster2 the same pod and service CIDRs (global-IP scenarios).",
)
@click.option(
    "--port-base", default=16400, show_default=True, help="First port; 10 ports per cluster."
)
@click.option(
    "--with-kosmos/--without-kosmos",
    "with_kosmos",
    default=True,
    show_default=True,
    help="Set Kosmos up. With --real-nodes >= 1: `kosmosctl install` (pods on the real "
    "nodes, our image) and every member joined with ClusterTree and ClusterLink; without: "
    "CRDs, the cluster-manager and kosmos-scheduler as local processes, every member joined "
    "with ClusterTree. Then leaf nodes Ready.",
)
@click.option(
    "--sample-app",
    is_flag=True,
    help="Also run the nginx-deployment sample (3 replicas of our HTTP image on port 80) in "
    "the host's default namespace and wait until its pods run on leaf nodes (with real "
    "nodes, as real containers on the members' real nodes).",
)
def up(
    *,
    members: int,
    nodes: int,
    real_nodes: int,
    overlap: bool,
    port_base: int,
    with_kosmos: bool,
    sample_app: bool,
) -> None:
    """Start the host and member clusters and set Kosmos up on them (idempotent)."""
    if sample_app and not with_kosmos:
        raise click.UsageError("--sample-app runs on leaf nodes: it needs Kosmos")
    if sample_app and members < 1:
        raise click.UsageError("--sample-app runs on leaf nodes: it needs --members >= 1")
    options = Options(
        members=members,
        nodes=nodes,
        overlap=overlap,
        port_base=port_base,
        real_nodes=real_nodes,
    )
    progress = Progress()
    try:
        clusters = environment.up(options, progress)
    except FAILURES as exc:
        raise click.ClickException(str(exc)) from exc
    progress(f"environment up: {', '.join(c.name for c in clusters)}")
    if with_kosmos:
        try:
            local_setup.set_up(clusters, sample_app, progress)
        except (OperationError, KubeError) as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"export KUBECONFIG={environment.merged_kubeconfig()}")
    click.echo(f"export PATH={paths.bin_dir()}:$PATH")
    if with_kosmos:
        click.echo("# kubectl get nodes          # the host's nodes and one leaf node per member")
    if sample_app:
        click.echo("# kubectl get pods -o wide   # the sample app's pods, on the leaf nodes")


@local.command()
def down() -> None:
    """Stop every process of the environment and free its ports."""
    report = environment.down(Progress())
    if report.killed:
        click.echo(f"killed {len(report.killed)} processes kwokctl left behind", err=True)
    if report.real_nodes.left:
        left = "\n  ".join(report.real_nodes.left)
        raise click.ClickException(f"real nodes left behind:\n  {left}")
    if report.ports_still_bound:
        ports = ", ".join(str(p) for p in sorted(report.ports_still_bound))
        raise click.ClickException(f"ports still bound after down: {ports}")
    click.echo(f"deleted clusters: {', '.join(report.deleted) or 'none'}")


@local.command()
@click.option("-o", "--output", type=click.Choice(FORMATS), default="table", show_default=True)
def status(output: str) -> None:
    """Show each cluster, node, Kosmos component process and Kosmos pod: health, readiness.

    Exits 1 when a cluster, a component, a real node or a Kosmos pod is not healthy/Ready.
    """
    clusters = environment.status()
    if not clusters:
        raise click.ClickException("the local environment is not up: run `kosmosctl local up`")
    procs = components.status()
    nodes = environment.nodes_status()
    relay = environment.relay_status()
    underlay = environment.underlay_status()
    pods = local_incluster.pods_status([c.name for c in clusters])
    if output in ("json", "yaml"):
        data = {
            "clusters": [asdict(c) for c in clusters],
            "nodes": [asdict(n) for n in nodes],
            "components": [asdict(p) for p in procs],
            "pods": [dict(zip(POD_HEADERS, row, strict=True)) for row in pods],
        }
        emit(output, [], [], data)
    else:
        click.echo(table(*_cluster_table(clusters)))
        click.echo()
        click.echo(table(*_node_table(nodes)))
        for line in (relay, underlay):
            if line:
                click.echo(line[1])
        if procs:
            click.echo()
            click.echo(table(*_component_table(procs)))
        if pods:
            click.echo()
            click.echo(table(POD_HEADERS, pods))
    real_down = (
        [n for n in nodes if n.kind == "real" and not n.ready]
        or (relay and not relay[0])
        or (underlay and not underlay[0])
    )
    pods_down = [row for row in pods if not _all_ready(row[4])]
    if (
        not all(c.healthy for c in clusters)
        or not all(p.healthy for p in procs)
        or real_down
        or pods_down
    ):
        raise SystemExit(1)


#: The Kosmos pods table (Kosmos installed in-cluster: host components, member agents).
POD_HEADERS = ["cluster", "pod", "node", "image", "ready", "restarts"]


def _all_ready(ready: str) -> bool:
    have, _, want = ready.partition("/")
    return have == want


def _cluster_table(clusters: list[environment.ClusterStatus]) -> tuple[list[str], list[list[str]]]:
    headers = ["name", "role", "server", "version", "healthy", "nodes", "processes", "rss"]
    rows = [
        [
            c.name,
            c.role,
            c.server,
            c.version,
            "yes" if c.healthy else "NO",
            f"{c.nodes_ready}/{c.nodes_total}",
            str(c.processes),
            f"{c.rss_mib:.0f}Mi",
        ]
        for c in clusters
    ]
    return headers, rows


def _node_table(nodes: list[NodeStatus]) -> tuple[list[str], list[list[str]]]:
    headers = ["node", "cluster", "kind", "runtime", "ready", "processes"]
    rows = [
        [n.name, n.cluster, n.kind, n.runtime, "yes" if n.ready else "NO", n.processes]
        for n in nodes
    ]
    return headers, rows


def _component_table(
    procs: list[components.ComponentStatus],
) -> tuple[list[str], list[list[str]]]:
    headers = ["component", "pid", "health", "healthy", "rss", "log"]
    rows = [
        [
            p.name,
            str(p.pid or "-"),
            f":{p.health_port}" if p.health_port else "-",
            "yes" if p.healthy else "NO",
            f"{p.rss_mib:.0f}Mi",
            str(components.log_file(p.name)),
        ]
        for p in procs
    ]
    return headers, rows


@local.command()
def env() -> None:
    """Print shell exports for the pinned kubectl and the merged kubeconfig."""
    click.echo(f"export KUBECONFIG={environment.merged_kubeconfig()}")
    path = os.environ.get("PATH", "")
    if str(paths.bin_dir()) not in path.split(os.pathsep):
        click.echo(f"export PATH={paths.bin_dir()}:$PATH")
