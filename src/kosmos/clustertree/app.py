"""``kosmos cluster-manager``: ClusterTree's process — controllers plus the kubelet endpoint.

One manager holds the host and every member; controllers run only while this replica
holds the ``cluster-manager`` Lease. The kubelet endpoint (logs/exec/port-forward through
leaf nodes) is served by every replica but answers only from the leader's caches, because
leaf nodes advertise the leader's address.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
from pathlib import Path

import click

from kosmos.api import names
from kosmos.clustertree import metrics
from kosmos.clustertree.clusters import cluster_registry
from kosmos.clustertree.copies import CopyReconciler
from kosmos.clustertree.kubelet import KubeletServer, Resolve, Target
from kosmos.clustertree.leafnodes import LeafNodeReconciler
from kosmos.clustertree.pods import PodReconciler
from kosmos.clustertree.tree import Options, Tree
from kosmos.clustertree.volumes import VolumeReconciler
from kosmos.clustertree.watches import wire
from kosmos.kube import config as kube_config
from kosmos.kube import diagnostics, tls
from kosmos.kube.client import Client
from kosmos.kube.component import HOST
from kosmos.kube.controller import (
    Controller,
    Reconciler,
    Request,
    Result,
    TerminalError,
    TerminalHandler,
)
from kosmos.kube.events import EventRecorder
from kosmos.kube.leader import LeaderElectionConfig, LeadershipLost
from kosmos.kube.manager import ClusterNotFound, Manager
from kosmos.kube.metrics import PrometheusQueueMetrics, PrometheusReconcileObserver

log = logging.getLogger("kosmos.clustertree")

COMPONENT = "cluster-manager"


def build(manager: Manager, options: Options, recorder: EventRecorder) -> Tree:
    """The tree with its five controllers, wired to the host and every future member."""
    tree = Tree(manager, options, recorder)
    pods = PodReconciler(tree)
    reconcilers: dict[str, tuple[Reconciler, int]] = {
        "clusters": (cluster_registry(tree), 2),
        "leafnodes": (LeafNodeReconciler(tree), 2),
        "pods": (pods, options.workers),
        "copies": (CopyReconciler(tree), 2),
        "volumes": (VolumeReconciler(tree), 1),
    }
    for name, (reconcile, workers) in reconcilers.items():
        controller = Controller(
            f"clustertree-{name}",
            _counting_errors(name, reconcile),
            workers=workers,
            queue_metrics=PrometheusQueueMetrics(),
            observer=PrometheusReconcileObserver(),
            on_terminal=_terminal_logger(name),
        )
        tree.controllers[name] = controller
        manager.add_controller(controller)
    wire(tree)
    manager.on_cluster_removed(lambda _m, cluster: _forget(tree, pods, cluster))
    return tree


def _forget(tree: Tree, pods: PodReconciler, cluster: str) -> None:
    """A member left (or changed credentials): drop what was remembered about it."""
    pods.forget_cluster(cluster)
    tree.foreign = {entry for entry in tree.foreign if entry[0] != cluster}


def _counting_errors(name: str, reconcile: Reconciler) -> Reconciler:
    """Count failed reconciles per member cluster (the queue metrics are per controller)."""

    async def counted(request: Request) -> Result | None:
        try:
            return await reconcile(request)
        except Exception:
            metrics.sync_errors.labels(request.cluster, name).inc()
            raise

    return counted


def _terminal_logger(name: str) -> TerminalHandler:
    async def report(request: Request, error: TerminalError) -> None:
        log.warning("%s %s: %s (not retried)", name, request, error.message)

    return report


def resolver(tree: Tree) -> Resolve:
    """Host pod -> its member client and member pod name, for the kubelet endpoint."""

    async def resolve(namespace: str, name: str) -> Target | None:
        pod = tree.pods.store.get(f"{namespace}/{name}")
        cluster = tree.cluster_of_pod(pod) if pod else None
        if cluster is None:
            return None
        try:
            client = tree.manager.client(cluster)
        except ClusterNotFound:
            return None
        return Target(client=client, namespace=namespace, name=name)

    return resolve


async def run(
    options: Options,
    *,
    kubeconfig: str | None,
    context: str | None,
    leader_elect: bool,
    health_port: int,
    cert_dir: str | None,
) -> None:
    config = await kube_config.for_component(HOST, kubeconfig, context)
    config.qps, config.burst = options.host_qps, options.host_burst
    host = Client(config)
    identity = f"{socket.gethostname()}_{os.getpid()}"
    election = (
        (host, LeaderElectionConfig(names.SYSTEM_NAMESPACE, COMPONENT, identity))
        if leader_elect
        else None
    )
    manager = Manager(
        COMPONENT, leader_election=election, health_address=(options.kubelet_bind, health_port)
    )
    manager.add_cluster(HOST, host)
    tree = build(manager, options, EventRecorder(host, f"kosmos-{COMPONENT}", identity))
    cert, key = _serving_pair(options, cert_dir)
    server = KubeletServer(
        resolver(tree),
        host=options.kubelet_bind,
        port=options.kubelet_port,
        ssl_context=tls.server_ssl_context(cert, key, options.kubelet_client_ca),
    )
    await server.start()
    current = asyncio.current_task()
    if current is not None:  # SIGTERM: stop controllers and release the lease, then exit
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, current.cancel)
    log.info(
        "kubelet endpoint on %s:%d (advertised %s)",
        options.kubelet_bind,
        server.port,
        options.node_address,
    )
    try:
        await manager.run()
    finally:
        await server.stop()
        await manager.close()


def _serving_pair(options: Options, cert_dir: str | None) -> tuple[bytes, bytes]:
    if cert_dir:
        return (Path(cert_dir) / "tls.crt").read_bytes(), (Path(cert_dir) / "tls.key").read_bytes()
    return tls.serving_certificate([options.node_address, "localhost", socket.gethostname()])


@click.command(COMPONENT)
@click.option("--kubeconfig", envvar="KUBECONFIG", help="Host kubeconfig (default: in-cluster).")
@click.option("--context", default=None, help="Context of --kubeconfig.")
@click.option(
    "--leader-elect/--no-leader-elect",
    default=False,
    show_default=True,
    help="Run controllers only while holding Lease kosmos-system/cluster-manager.",
)
@click.option("--health-port", default=8080, show_default=True, help="/healthz /readyz /metrics.")
@click.option(
    "--listen-port",
    default=10250,
    show_default=True,
    help="Kubelet endpoint port (logs/exec/port-forward), advertised on leaf nodes.",
)
@click.option(
    "--node-address",
    envvar="LEAF_NODE_IP",
    default="127.0.0.1",
    show_default=True,
    help="Address leaf nodes advertise; the host apiserver must reach it.",
)
@click.option("--bind-address", default="0.0.0.0", show_default=True)
@click.option(
    "--kubelet-client-ca",
    default=None,
    help="CA file: require the host apiserver's kubelet client certificate.",
)
@click.option(
    "--cert-dir",
    default=None,
    help="Directory with tls.crt/tls.key (default: a self-signed certificate for --node-address).",
)
@click.option("--heartbeat", default=10.0, show_default=True, help="Seconds between probes.")
@click.option(
    "--unreachable-after",
    default=40.0,
    show_default=True,
    help="Seconds without a member answer before its leaf nodes turn NotReady.",
)
@click.option("--workers", default=16, show_default=True, help="Pod sync workers.")
@click.option("--kube-qps", default=100.0, show_default=True, help="Host client QPS.")
@click.option("--kube-burst", default=200, show_default=True, help="Host client burst.")
@click.option("--member-qps", default=100.0, show_default=True, help="QPS per member client.")
@click.option("--member-burst", default=200, show_default=True, help="Burst per member client.")
@click.option("-v", "--verbose", count=True)
def command(  # noqa: PLR0917 - click passes every option positionally by name
    kubeconfig: str | None,
    context: str | None,
    leader_elect: bool,
    health_port: int,
    listen_port: int,
    node_address: str,
    bind_address: str,
    kubelet_client_ca: str | None,
    cert_dir: str | None,
    heartbeat: float,
    unreachable_after: float,
    workers: int,
    kube_qps: float,
    kube_burst: int,
    member_qps: float,
    member_burst: int,
    verbose: int,
) -> None:
    """Run ClusterTree: member clusters as leaf nodes, pods and dependencies synced."""
    diagnostics.configure_logging(verbose)
    options = Options(
        node_address=node_address,
        kubelet_port=listen_port,
        kubelet_bind=bind_address,
        kubelet_client_ca=kubelet_client_ca,
        heartbeat_seconds=heartbeat,
        unreachable_seconds=unreachable_after,
        workers=workers,
        host_qps=kube_qps,
        host_burst=kube_burst,
        member_qps=member_qps,
        member_burst=member_burst,
    )
    try:
        asyncio.run(
            run(
                options,
                kubeconfig=kubeconfig,
                context=context,
                leader_elect=leader_elect,
                health_port=health_port,
                cert_dir=cert_dir,
            )
        )
    except LeadershipLost:
        log.error("lost the cluster-manager lease; exiting so a fresh process can compete")
        sys.exit(1)
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass
