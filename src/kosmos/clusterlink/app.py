"""``kosmos network-manager``: ClusterLink's control plane, in the host, for every member.

The Go original ran a clusterlink-controller-manager inside each member (CIDR discovery,
ClusterNodes, Calico IPPools) next to a network-manager in the host (NodeConfigs). Here one
leader-elected process does both, connected to every linked member the way the
cluster-manager is: nothing of the control plane has to be deployed into a member (its
kubeconfig in the host is enough, as for ClusterTree), members join and leave at runtime
without restarting anything, and the planner sees the same caches the discovery writes.

``build`` wires the controllers: the member-facing ones (members, cidrs, clusternodes,
ippools) and the planner that turns Clusters and ClusterNodes into NodeConfigs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys

import click

from kosmos.api import names
from kosmos.clusterlink import nodeconfigs
from kosmos.clusterlink.cidrs import CIDRReconciler
from kosmos.clusterlink.clusternodes import ClusterNodeReconciler
from kosmos.clusterlink.ippools import IPPoolReconciler
from kosmos.clusterlink.link import Link, Options
from kosmos.clusterlink.members import MemberReconciler
from kosmos.clusterlink.watches import wire
from kosmos.kube import config as kube_config
from kosmos.kube import diagnostics
from kosmos.kube.client import Client
from kosmos.kube.component import HOST
from kosmos.kube.events import EventRecorder
from kosmos.kube.leader import LeaderElectionConfig, LeadershipLost
from kosmos.kube.manager import Manager

log = logging.getLogger("kosmos.clusterlink")

COMPONENT = "network-manager"


def build(manager: Manager, options: Options, recorder: EventRecorder) -> Link:
    """The member-facing controllers, wired to the host and every future member."""
    link = Link(manager, options, recorder)
    cidrs, pools = CIDRReconciler(link), IPPoolReconciler(link)
    link.add_controller("members", MemberReconciler(link), workers=2)
    link.add_controller("cidrs", cidrs, workers=2)
    link.add_controller("clusternodes", ClusterNodeReconciler(link), workers=options.workers)
    link.add_controller("ippools", pools, workers=2)
    nodeconfigs.register(manager, host=HOST)
    wire(link)

    def removed(_manager: Manager, cluster: str) -> None:
        cidrs.forget(cluster)
        pools.forget(cluster)

    manager.on_cluster_removed(removed)
    return link


async def run(
    options: Options,
    *,
    kubeconfig: str | None,
    context: str | None,
    leader_elect: bool,
    health_address: tuple[str, int],
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
    manager = Manager(COMPONENT, leader_election=election, health_address=health_address)
    manager.add_cluster(HOST, host)
    link = build(manager, options, EventRecorder(host, f"kosmos-{COMPONENT}", identity))
    current = asyncio.current_task()
    if current is not None:  # SIGTERM: stop controllers and release the lease, then exit
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, current.cancel)
    try:
        await manager.run()
    finally:
        link.optional.stop_all()
        await manager.close()


@click.command(COMPONENT)
@click.option("--kubeconfig", envvar="KUBECONFIG", help="Host kubeconfig (default: in-cluster).")
@click.option("--context", default=None, help="Context of --kubeconfig.")
@click.option(
    "--leader-elect/--no-leader-elect",
    default=False,
    show_default=True,
    help="Run controllers only while holding Lease kosmos-system/network-manager.",
)
@click.option("--health-port", default=8080, show_default=True, help="/healthz /readyz /metrics.")
@click.option("--bind-address", default="0.0.0.0", show_default=True)
@click.option("--workers", default=4, show_default=True, help="ClusterNode sync workers.")
@click.option(
    "--rediscover-period",
    default=300.0,
    show_default=True,
    help="Seconds between service CIDR probes of a member's apiserver.",
)
@click.option("--kube-qps", default=50.0, show_default=True, help="Host client QPS.")
@click.option("--kube-burst", default=100, show_default=True, help="Host client burst.")
@click.option("--member-qps", default=20.0, show_default=True, help="QPS per member client.")
@click.option("--member-burst", default=40, show_default=True, help="Burst per member client.")
@click.option("-v", "--verbose", count=True)
def command(  # noqa: PLR0917 - click passes every option positionally by name
    kubeconfig: str | None,
    context: str | None,
    leader_elect: bool,
    health_port: int,
    bind_address: str,
    workers: int,
    rediscover_period: float,
    kube_qps: float,
    kube_burst: int,
    member_qps: float,
    member_burst: int,
    verbose: int,
) -> None:
    """Run ClusterLink's control plane: CIDR discovery and ClusterNodes for every member."""
    diagnostics.configure_logging(verbose)
    options = Options(
        host_qps=kube_qps,
        host_burst=kube_burst,
        member_qps=member_qps,
        member_burst=member_burst,
        workers=workers,
        rediscover_seconds=rediscover_period,
    )
    try:
        asyncio.run(
            run(
                options,
                kubeconfig=kubeconfig,
                context=context,
                leader_elect=leader_elect,
                health_address=(bind_address, health_port),
            )
        )
    except LeadershipLost:
        log.error("lost the network-manager lease; exiting so a fresh process can compete")
        sys.exit(1)
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass
