"""The host as a ClusterLink peer: its own agents, set up by ``install``, removed by ``uninstall``.

The root Cluster that install applies has ``clusterLinkOptions.enable`` from install's flags,
and the network-manager serves it with the host's own client (``kosmos.clusterlink.members``):
it gets ClusterNodes and NodeConfigs like any member. What makes those real is an agent on
each of the host's nodes, as ``join`` puts on a member's (``kosmos.ops.linkside``), which the
Go original's ``kosmosctl install`` also did by joining the control cluster to itself. Without
them the host's pod and service CIDRs are on no tunnel: member pods could not reach host pods,
nor the host's ClusterIPs (the host's DNS, which central DNS mode sends leaf pods to).

The host's agents are the members' DaemonSet (same identity scheme: a ServiceAccount of the
root Cluster's name in the host), in install's namespace, with install's pod annotations.
"""

from __future__ import annotations

import contextlib

from kosmos.api import names
from kosmos.api.resources import CLUSTERS, DAEMONSETS, SECRETS
from kosmos.kube.client import Client
from kosmos.kube.errors import NotFound
from kosmos.ops import apply as applier
from kosmos.ops import linkside, rollout
from kosmos.ops.manifests import InstallOptions
from kosmos.ops.progress import Progress


async def set_up(client: Client, options: InstallOptions, progress: Progress) -> None:
    """Agents on the host's nodes for the root Cluster (idempotent, like every apply)."""
    root = await client.get(CLUSTERS, names.ROOT_CLUSTER_NAME)
    await linkside.set_up(
        client,
        client,
        names.ROOT_CLUSTER_NAME,
        namespace=options.namespace,
        image=options.image,
        key_secrets=linkside.key_secrets(root),
        progress=progress,
        pod_annotations=dict(options.pod_annotations),  # they roll it onto a new image
    )


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
    for resource, name in ((DAEMONSETS, linkside.AGENT), (SECRETS, linkside.AGENT_KUBECONFIG)):
        with contextlib.suppress(NotFound):
            await client.delete(resource, name, namespace, propagation="Background")
    root = linkside.obj_or_name(names.ROOT_CLUSTER_NAME, namespace)
    await linkside.tear_down(client, None, root, progress)
    if found is not None:
        progress(f"host: ClusterLink agents removed (DaemonSet {namespace}/{linkside.AGENT})")
    return found is not None
