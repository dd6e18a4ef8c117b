"""``kosmos agent``: the per-node ClusterLink agent (in production a hostNetwork DaemonSet).

Talks only to the host apiserver: it watches its own NodeConfig, ClusterNode and Cluster,
programs its node's kernel (``--netns`` selects a named network namespace instead, for tests
and the local environment), reports its NIC and addresses, and competes for its cluster's
gateway role. It is never leader-elected (every node runs its own) and serves its health on
loopback only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import click

from kosmos.api import link
from kosmos.api.objects import Obj, name_of
from kosmos.api.resources import CLUSTERNODES, CLUSTERS, NODECONFIGS
from kosmos.clusterlink.agent.addresses import AddressReconciler
from kosmos.clusterlink.agent.elector import GatewayElector
from kosmos.clusterlink.agent.reconciler import NodeConfigReconciler
from kosmos.clusterlink.agent.state import AgentState, Settings
from kosmos.clusterlink.agent.tunnels import Driver
from kosmos.kube import component
from kosmos.kube.builder import Watch, controller
from kosmos.kube.controller import Reconciler, Request
from kosmos.net.ipsec import BackendChoice
from kosmos.net.sync import Dataplane

log = logging.getLogger("kosmos.clusterlink.agent")


def _state(runtime: component.Runtime, settings: Settings) -> AgentState:
    """The agent's caches: its own NodeConfig and Cluster, its cluster's ClusterNodes."""
    informer = runtime.manager.informer
    return AgentState(
        settings=settings,
        manager=runtime.manager,
        dataplane=Dataplane(settings.netns),
        nodeconfigs=informer(
            component.HOST, NODECONFIGS, field_selector=f"metadata.name={settings.name}"
        ),
        clusternodes=informer(
            component.HOST, CLUSTERNODES, label_selector=f"{link.LABEL_CLUSTER}={settings.cluster}"
        ),
        clusters=informer(
            component.HOST, CLUSTERS, field_selector=f"metadata.name={settings.cluster}"
        ),
    )


def build(runtime: component.Runtime, settings: Settings) -> None:
    """Both controllers on the one key of this node, the elector next to them."""
    state = _state(runtime, settings)
    driver = Driver(
        host=runtime.host,
        own_name=settings.name,
        netns=settings.netns,
        run_dir=settings.run_dir,
        ipsec_backend=settings.ipsec_backend,
    )
    addresses = AddressReconciler(state)
    key = Request(component.HOST, "", settings.name)

    def keys(obj: Obj) -> Iterable[Request]:
        # the ClusterNode informer holds the whole cluster's (for the elector): only ours counts
        if obj.get("kind") == "ClusterNode" and name_of(obj) != settings.name:
            return ()
        return (key,)

    watches = [Watch(i, keys) for i in (state.nodeconfigs, state.clusternodes, state.clusters)]
    declared: list[tuple[str, Reconciler]] = [
        ("agent-nodeconfig", NodeConfigReconciler(state, driver, runtime.recorder)),
        ("agent-addresses", addresses),
    ]
    for name, reconcile in declared:
        controller(runtime.manager, name, reconcile, watches=watches).enqueue(key)
    runtime.alongside(GatewayElector(state, lambda: addresses.nic_up).run)

    async def stop() -> None:
        log.info("stopping (the kernel state is kept for the next agent)")
        await state.dataplane.close()

    runtime.on_stop(stop)
    log.info("agent %s (netns %s) starting", settings.name, settings.netns or "host")


@click.command("agent")
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
    type=click.Choice(["auto", "kernel", "libipsec"]),
    default="auto",
    show_default=True,
    help="kernel: xfrm (ESP in the kernel); libipsec: userspace ESP over TUN; "
    "auto: kernel if the node's kernel holds an ESP SA, else libipsec.",
)
@click.option(
    "--run-dir",
    default="/var/lib/kosmos-agent",
    show_default=True,
    type=click.Path(),
    help="The tunnel daemons' files (not under /run: each daemon gets a private /run).",
)
@component.common_options(None, health_port=0, bind_address="127.0.0.1", member_qps=None)
def command(  # noqa: PLR0917 - click passes every option by name
    common: component.Common,
    cluster: str,
    node: str,
    netns: str | None,
    repair_period: float,
    gateway_lease_duration: float,
    gateway_renew_deadline: float,
    gateway_retry_period: float,
    gateway_candidate: bool,
    ipsec_backend: BackendChoice,
    run_dir: str,
) -> None:
    """Run the ClusterLink agent of one node."""
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
    spec = component.Component(f"agent-{settings.name}")
    component.main(
        "agent",
        common.verbose,
        component.run_component(spec, common, lambda rt: build(rt, settings)),
        log_format=common.log_format,
    )
