"""``kosmos network-manager``: ClusterLink's control plane, in the host, for every member.

One leader-elected process does all of it — CIDR discovery, ClusterNodes and Calico IPPools
for each member, and the NodeConfigs of every node — connected to every linked member the
way the cluster-manager is: nothing of the control plane has to be deployed into a member
(its kubeconfig in the host is enough, as for ClusterTree), members join and leave at
runtime without restarting anything, and the planner sees the same caches the discovery
writes (docs/clusterlink.md).

``build`` wires the controllers: the member-facing ones (members, cidrs, clusternodes,
ippools) and the NodeConfig controller that turns Clusters and ClusterNodes into
NodeConfigs.
"""

from __future__ import annotations

import click

from kosmos.clusterlink import members, nodeconfigs
from kosmos.clusterlink.cidrs import CIDRReconciler
from kosmos.clusterlink.clusternodes import ClusterNodeReconciler, report_on_cluster
from kosmos.clusterlink.ippools import IPPoolReconciler
from kosmos.clusterlink.link import Link, Options
from kosmos.clusterlink.watches import wire
from kosmos.kube import component
from kosmos.kube.builder import controller
from kosmos.kube.controller import Reconciler
from kosmos.kube.manager import Manager

NAME = "network-manager"
COMPONENT = component.Component(NAME, lease=NAME)


def build(runtime: component.Runtime, options: Options) -> None:
    """The member-facing controllers, wired to the host and every future member."""
    manager = runtime.manager
    link = Link(manager, options, runtime.recorder)
    cidrs, pools = CIDRReconciler(link), IPPoolReconciler(link)
    declared: list[tuple[str, Reconciler, int]] = [
        ("members", members.registry(link), 2),
        ("cidrs", cidrs, 2),
        ("clusternodes", ClusterNodeReconciler(link), options.workers),
        ("ippools", pools, 2),
    ]
    on_terminal = {"clusternodes": report_on_cluster(link)}
    for name, reconcile, workers in declared:
        link.controllers[name] = controller(
            manager,
            f"{NAME}-{name}",
            reconcile,
            workers=workers,
            on_terminal=on_terminal.get(name),
        )
    nodeconfigs.register(manager, host=component.HOST, recorder=runtime.recorder)
    wire(link)

    def removed(_manager: Manager, cluster: str) -> None:
        cidrs.forget(cluster)
        pools.forget(cluster)

    manager.on_cluster_removed(removed)

    async def stop_optional() -> None:
        link.optional.stop_all()

    runtime.on_stop(stop_optional)


@click.command(NAME)
@click.option("--workers", default=4, show_default=True, help="ClusterNode sync workers.")
@click.option(
    "--rediscover-period",
    default=300.0,
    show_default=True,
    help="Seconds between service CIDR probes of a member's apiserver.",
)
@component.common_options(NAME)
def command(common: component.Common, workers: int, rediscover_period: float) -> None:
    """Run ClusterLink's control plane: CIDR discovery and ClusterNodes for every member."""
    options = Options(
        member_qps=common.member_qps,
        member_burst=common.member_burst,
        workers=workers,
        rediscover_seconds=rediscover_period,
    )
    component.main(
        NAME,
        common.verbose,
        component.run_component(COMPONENT, common, lambda rt: build(rt, options)),
        log_format=common.log_format,
    )
