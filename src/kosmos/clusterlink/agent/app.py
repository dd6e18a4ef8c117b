"""``kosmos agent``: the per-node ClusterLink agent (in production a hostNetwork DaemonSet).

Talks only to the host apiserver: it watches its own NodeConfig, ClusterNode and Cluster,
programs its node's kernel (``--netns`` selects a named network namespace instead, for tests
and the local environment), reports its NIC and addresses, and competes for its cluster's
gateway role.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from pathlib import Path

import click

from kosmos.api import link
from kosmos.api.objects import Obj
from kosmos.api.resources import CLUSTERNODES, CLUSTERS, NODECONFIGS
from kosmos.clusterlink.agent.addresses import AddressReconciler
from kosmos.clusterlink.agent.elector import GatewayElector
from kosmos.clusterlink.agent.reconciler import NodeConfigReconciler
from kosmos.clusterlink.agent.state import HOST, AgentState, Settings
from kosmos.clusterlink.agent.tunnels import Driver
from kosmos.kube import config as kube_config
from kosmos.kube import diagnostics
from kosmos.kube.client import Client
from kosmos.kube.controller import Controller, Request
from kosmos.kube.informer import EnqueueHandler
from kosmos.kube.manager import Manager
from kosmos.kube.metrics import PrometheusQueueMetrics, PrometheusReconcileObserver
from kosmos.net.sync import Dataplane

log = logging.getLogger("kosmos.clusterlink.agent")


def _build(
    settings: Settings, host: Client, health_port: int
) -> tuple[AgentState, list[Controller], GatewayElector, Driver]:
    manager = Manager(f"agent-{settings.name}", health_address=("127.0.0.1", health_port))
    manager.add_cluster(HOST, host)
    by_name = f"metadata.name={settings.name}"
    ctx = AgentState(
        settings=settings,
        manager=manager,
        dataplane=Dataplane(settings.netns),
        nodeconfigs=manager.informer(HOST, NODECONFIGS, field_selector=by_name),
        clusternodes=manager.informer(
            HOST, CLUSTERNODES, label_selector=f"{link.LABEL_CLUSTER}={settings.cluster}"
        ),
        clusters=manager.informer(
            HOST, CLUSTERS, field_selector=f"metadata.name={settings.cluster}"
        ),
    )
    driver = Driver(
        host=host,
        own_name=settings.name,
        netns=settings.netns,
        run_dir=settings.run_dir,
        ipsec_backend=settings.ipsec_backend,
    )
    addresses = AddressReconciler(ctx)
    controllers = [
        Controller(
            "agent-nodeconfig",
            NodeConfigReconciler(ctx, driver),
            workers=1,
            queue_metrics=PrometheusQueueMetrics(),
            observer=PrometheusReconcileObserver(),
        ),
        Controller(
            "agent-addresses",
            addresses,
            workers=1,
            queue_metrics=PrometheusQueueMetrics(),
            observer=PrometheusReconcileObserver(),
        ),
    ]
    key = Request(HOST, "", settings.name)

    def wake(obj: Obj) -> None:
        # the ClusterNode informer holds the whole cluster's (for the elector): only ours counts
        if obj.get("kind") == "ClusterNode" and obj["metadata"]["name"] != settings.name:
            return
        for controller in controllers:
            controller.enqueue(key)

    for informer in (ctx.nodeconfigs, ctx.clusternodes, ctx.clusters):
        informer.add_handler(EnqueueHandler(wake))
    for controller in controllers:
        manager.add_controller(controller)
        controller.enqueue(key)
    return ctx, controllers, GatewayElector(ctx, lambda: addresses.nic_up), driver


def _stopper(task: asyncio.Task[None]) -> Callable[[], None]:
    def stop() -> None:
        log.info("SIGTERM: stopping (the kernel state is kept for the next agent)")
        task.cancel()

    return stop


async def run(
    settings: Settings, *, kubeconfig: str | None, context: str | None, health_port: int
) -> None:
    config = await kube_config.for_component(HOST, kubeconfig, context)
    host = Client(config)
    ctx, _, elector, _driver = _build(settings, host, health_port)
    diagnostics.install()
    current = asyncio.current_task()
    if current is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, _stopper(current))
    log.info("agent %s (netns %s) starting", settings.name, settings.netns or "host")
    electing = asyncio.create_task(elector.run(), name="gateway-elector")
    try:
        await ctx.manager.run()
        log.error("agent %s: manager stopped on its own", settings.name)
    finally:
        electing.cancel()
        await asyncio.gather(electing, return_exceptions=True)
        await ctx.dataplane.close()
        await ctx.manager.close()


@click.command("agent")
@click.option("--kubeconfig", envvar="KUBECONFIG", help="Host kubeconfig (default: in-cluster).")
@click.option("--context", default=None)
@click.option("--cluster", envvar="CLUSTER_NAME", required=True, help="This node's Cluster.")
@click.option("--node", envvar="NODE_NAME", required=True, help="This node's name in its cluster.")
@click.option("--netns", default=None, help="Program this named network namespace (tests, local).")
@click.option(
    "--repair-period", default=30.0, show_default=True, help="Seconds between drift repairs."
)
@click.option("--gateway-lease-duration", default=3.0, show_default=True)
@click.option("--gateway-renew-deadline", default=2.0, show_default=True)
@click.option("--gateway-retry-period", default=0.5, show_default=True)
@click.option("--gateway-candidate/--no-gateway-candidate", default=True, show_default=True)
@click.option(
    "--ipsec-backend",
    type=click.Choice(["kernel", "libipsec"]),
    default="kernel",
    show_default=True,
    help="kernel: xfrm (ESP in the kernel); libipsec: userspace ESP over TUN.",
)
@click.option("--run-dir", default="/var/run/kosmos-agent", show_default=True, type=click.Path())
@click.option(
    "--health-port", default=0, show_default=True, help="/healthz /metrics (0: any free)."
)
@click.option("-v", "--verbose", count=True)
def command(  # noqa: PLR0917 - click passes every option by name
    kubeconfig: str | None,
    context: str | None,
    cluster: str,
    node: str,
    netns: str | None,
    repair_period: float,
    gateway_lease_duration: float,
    gateway_renew_deadline: float,
    gateway_retry_period: float,
    gateway_candidate: bool,
    ipsec_backend: str,
    run_dir: str,
    health_port: int,
    verbose: int,
) -> None:
    """Run the ClusterLink agent of one node."""
    diagnostics.configure_logging(verbose)
    settings = Settings(
        cluster=cluster,
        node=node,
        netns=netns,
        repair_period=repair_period,
        lease_duration=gateway_lease_duration,
        renew_deadline=gateway_renew_deadline,
        retry_period=gateway_retry_period,
        gateway_candidate=gateway_candidate,
        ipsec_backend=ipsec_backend,
        run_dir=Path(run_dir),
    )
    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        asyncio.run(run(settings, kubeconfig=kubeconfig, context=context, health_port=health_port))
