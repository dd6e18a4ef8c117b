"""The host as a ClusterLink peer: its own agents, set up by ``install``, removed by ``uninstall``.

The root Cluster that install applies has ``clusterLinkOptions.enable`` from install's flags,
and the network-manager serves it with the host's own client (``kosmos.clusterlink.members``):
it gets ClusterNodes and NodeConfigs like any member. What makes those real is an agent on
each of the host's nodes, as ``join`` puts on a member's (``kosmos.ops.linkside``), which the
Go original's ``kosmosctl install`` also did by joining the control cluster to itself. Without
them the host's pod and service CIDRs are on no tunnel: member pods could not reach host pods,
nor the host's ClusterIPs (the host's DNS, which central DNS mode sends leaf pods to).

The host's agents are the members' DaemonSet with the same identity (a ServiceAccount named
after the root Cluster, its ClusterRoleBinding and Role), but as pods of the host they use
that ServiceAccount directly: no kubeconfig, so no apiserver address to guess. ClusterLink's
shared objects (tunnel keys, gateway Leases) live in ``kosmos-system`` whatever install's
namespace, so the agents are set up only when install uses that namespace.
"""

from __future__ import annotations

import contextlib

from kosmos.api import names
from kosmos.api.objects import Obj
from kosmos.api.resources import CLUSTERS, DAEMONSETS
from kosmos.kube.client import Client
from kosmos.kube.errors import NotFound
from kosmos.ops import apply as applier
from kosmos.ops import linkside, rollout
from kosmos.ops.manifests import FIELD_MANAGER, InstallOptions, annotated, with_log_format
from kosmos.ops.progress import Progress

ROOT = names.ROOT_CLUSTER_NAME


async def set_up(client: Client, options: InstallOptions, progress: Progress) -> bool:
    """Agents on the host's nodes for the root Cluster (idempotent); False: not set up."""
    if options.namespace != names.SYSTEM_NAMESPACE:
        progress(
            f"host: ClusterLink agents not set up: they need namespace {names.SYSTEM_NAMESPACE} "
            f"(install uses {options.namespace}); host pods are not linked to members"
        )
        return False
    root = await client.get(CLUSTERS, ROOT)
    for resource, body in linkside.host_objects(ROOT, linkside.key_secrets(root)):
        await client.apply(resource, body, field_manager=FIELD_MANAGER, force=True)
    await client.apply(
        DAEMONSETS, agent_daemonset(options), field_manager=FIELD_MANAGER, force=True
    )
    progress(f"host: ClusterLink agents (DaemonSet {options.namespace}/{linkside.AGENT}) set up")
    return True


def agent_daemonset(options: InstallOptions) -> Obj:
    """The host's agent DaemonSet as install applies it (the Helm chart renders this one)."""
    agents = linkside.daemonset(ROOT, options.namespace, options.image, in_cluster=True)
    return annotated(with_log_format(agents, options.image, options.log_format), options)


async def wait(client: Client, options: InstallOptions, timeout: float, progress: Progress) -> None:
    """The host's agents Ready (each has synced the host's link objects)."""
    await rollout.wait(
        client,
        [(DAEMONSETS, options.namespace, linkside.AGENT)],
        timeout,
        report=lambda why: progress(f"waiting: {why}"),
    )


async def tear_down(client: Client, namespace: str, progress: Progress) -> bool:
    """Remove the host's agents and their identity; True when there was something to remove."""
    found = await applier.get_or_none(client, DAEMONSETS, linkside.AGENT, namespace)
    if found is not None:
        with contextlib.suppress(NotFound):
            await client.delete(DAEMONSETS, linkside.AGENT, namespace, propagation="Background")
        progress(f"host: ClusterLink agents removed (DaemonSet {namespace}/{linkside.AGENT})")
    await linkside.tear_down(client, None, linkside.obj_or_name(ROOT, namespace), progress)
    return found is not None
