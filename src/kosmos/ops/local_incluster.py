"""Kosmos installed in-cluster on the local environment's real nodes, as a user would.

With real nodes (``kosmosctl local up --real-nodes N``) pods run for real, so ``local up``
takes the user's path instead of starting local processes: :func:`kosmos.ops.install.install`
(CRDs, namespace, cluster-manager, network-manager and kosmos-scheduler Deployments with
their RBAC, from our image, which every real node has imported) with ``--node-selector
local.kosmos.io/real-node=true`` so the pods land on the host's real node and not on a kwok
node, then :func:`kosmos.ops.join.join_member` of every member with ClusterTree and
ClusterLink (the agents' DaemonSet in the member), then the leaf nodes, every Kosmos pod and
the sample app are waited for.

Pods cannot reach an apiserver at 127.0.0.1: every kubeconfig handed to Kosmos (the member
kubeconfigs joined, and the host's, from which the agents' kubeconfig is derived) names the
apiserver at its relay address on the cluster network (``kosmos.local.nodes.relay``), which
the apiserver's certificate also names. ``tear_down`` is a clean ``unjoin`` + ``uninstall``.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import yaml

from kosmos.api import names
from kosmos.api.objects import Obj, name_of, namespace_of
from kosmos.api.resources import DAEMONSETS, DEPLOYMENTS, PODS
from kosmos.kube.client import Client
from kosmos.kube.errors import KubeError, NotFound
from kosmos.local import components, environment, images, paths
from kosmos.local import kosmos_plan as local
from kosmos.local.nodes.plan import REAL_NODE_KEY
from kosmos.local.nodes.plan import network as network_of
from kosmos.local.topology import ClusterPlan
from kosmos.ops import apply as applier
from kosmos.ops import rollout
from kosmos.ops.host import Host
from kosmos.ops.install import install
from kosmos.ops.join import join_member, unjoin_member
from kosmos.ops.linkside import AGENT
from kosmos.ops.manifests import InstallOptions
from kosmos.ops.membership import JoinOptions
from kosmos.ops.progress import Progress
from kosmos.ops.uninstall import uninstall

INSTALL_TIMEOUT = 300.0
JOIN_WAIT_SECONDS = 180
UNINSTALL_TIMEOUT = 120.0
#: What the selector of every Kosmos pod is: the label only real nodes carry.
PLACEMENT = ((REAL_NODE_KEY, "true"),)
#: Members' real nodes are tainted (``REAL_NODE_TAINT``): kosmos-coredns tolerates it there.
MEMBER_TOLERATION = {"key": REAL_NODE_KEY, "operator": "Exists", "effect": "NoSchedule"}
#: The local environment's pod network is flannel (``kube-system/kube-flannel-cfg``).
CNI = "flannel"


#: The Kosmos image's build digest on every Kosmos pod template: a code change rebuilds the
#: image under the same tag, and this is what rolls the pods onto it.
IMAGE_ANNOTATION = "local.kosmos.io/kosmos-image"


#: Services of host namespaces with this prefix are exported to every member (what the e2e
#: tests of auto-MCS use, as the Go original's e2e installed its cluster-manager)
AUTO_MCS_PREFIX = "kosmos-e2e"


def options(digest: str = "") -> InstallOptions:
    annotations = ((IMAGE_ANNOTATION, digest),) if digest else ()
    return InstallOptions(
        node_selector=PLACEMENT,
        cni=CNI,
        pod_annotations=annotations,
        auto_mcs_prefixes=(AUTO_MCS_PREFIX,),
        migration=True,  # the migration tutorial runs on the local environment
    )


def image_digest() -> str:
    """The digest of the Kosmos image archive the real nodes imported (cached: no build)."""
    image = images.ensure_images(lambda _: None, keys=("kosmos",))["kosmos"]
    return image.archive.stem.rsplit("-", 1)[-1]


async def roll_agents(member: ClusterPlan, digest: str, progress: Progress) -> None:
    """Put the agents of a member on the current image (join leaves a joined member as is)."""
    hosts = Host(kubeconfig=str(environment.cluster_kubeconfig(member.name)))
    try:
        client = await hosts.client()
        daemonset = await applier.get_or_none(client, DAEMONSETS, AGENT, names.SYSTEM_NAMESPACE)
        template = ((daemonset or {}).get("spec") or {}).get("template") or {}
        if (
            daemonset is None
            or (template["metadata"].get("annotations") or {}).get(IMAGE_ANNOTATION) == digest
        ):
            return
        patch = {"spec": {"template": {"metadata": {"annotations": {IMAGE_ANNOTATION: digest}}}}}
        await client.patch(DAEMONSETS, AGENT, patch, namespace=names.SYSTEM_NAMESPACE)
        progress(f"{member.name}: agents rolled onto image {digest}")
        await rollout.wait(client, [(DAEMONSETS, names.SYSTEM_NAMESPACE, AGENT)], INSTALL_TIMEOUT)
    finally:
        await hosts.close()


def relay_server(cluster: ClusterPlan) -> str:
    """The apiserver as pods reach it: the relay on the cluster network's host address."""
    return network_of(cluster).apiserver


def relay_kubeconfig(cluster: ClusterPlan) -> Path:
    """The cluster's admin kubeconfig naming the relay address (written beside the others)."""
    body = yaml.safe_load(environment.cluster_kubeconfig(cluster.name).read_text())
    for entry in body.get("clusters") or []:
        entry["cluster"]["server"] = relay_server(cluster)
    path = paths.local_dir() / "kosmos" / f"{cluster.name}-pods-kubeconfig"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(body))
    path.chmod(0o600)
    return path


def stop_processes() -> None:
    """Local component processes of an earlier process-mode ``up`` would compete for Leases."""
    for name in (local.SCHEDULER, local.EXTENDER, local.CLUSTER_MANAGER):
        components.stop(name)


async def set_up(
    host: ClusterPlan,
    members: list[ClusterPlan],
    progress: Progress,
    *,
    sample_app: bool,
    wait_leaves: Callable[[Client, list[str], Progress], Awaitable[set[str]]],
    run_sample_app: Callable[[Client, set[str], Progress], Awaitable[None]],
) -> None:
    """Install, join every member, wait for leaves and pods (idempotent: re-runs converge)."""
    hosts = Host(kubeconfig=str(relay_kubeconfig(host)))
    try:
        client = await hosts.client()
        actions: list[str] = []
        digest = image_digest()
        await install(
            hosts,
            options(digest),
            lambda step: actions.append(step.action),
            dry_run=False,
            wait=True,
            timeout=INSTALL_TIMEOUT,
        )
        progress(f"kosmos: installed in-cluster ({applier.summarize(actions)})")
        for member in members:
            kubeconfig = relay_kubeconfig(member).read_text()
            join = JoinOptions(
                name=member.name,
                enable_link=True,
                enable_tree=True,
                cni=CNI,
                node_selector=PLACEMENT,
                tolerations=(MEMBER_TOLERATION,),
                pod_annotations=((IMAGE_ANNOTATION, digest),),
            )
            message = await join_member(hosts, join, kubeconfig, JOIN_WAIT_SECONDS, progress)
            outcome = message.removeprefix(f"cluster {member.name} ").removeprefix("is ")
            progress(f"{member.name}: {outcome}")
            await roll_agents(member, digest, progress)
        leaves = await wait_leaves(client, [m.name for m in members], progress)
        await wait_pods([host, *members], progress)
        if sample_app:
            await run_sample_app(client, leaves, progress)
    finally:
        await hosts.close()


def pods_status(clusters: list[str]) -> list[list[str]]:
    """``local status``'s Kosmos pods table: one row per pod of every cluster that answers."""
    rows: list[list[str]] = []
    for name in clusters:
        hosts = Host(kubeconfig=str(environment.cluster_kubeconfig(name)))
        with contextlib.suppress(KubeError, OSError):
            rows += pod_rows(name, hosts.run(_kosmos_pods(hosts)))
    return rows


async def _kosmos_pods(hosts: Host) -> list[Obj]:
    """The Kosmos pods of one cluster (the install namespace; none when it is absent)."""
    client = await hosts.client()
    with contextlib.suppress(NotFound):
        return (await client.list(PODS, names.SYSTEM_NAMESPACE)).items
    return []


async def wait_pods(clusters: list[ClusterPlan], progress: Progress) -> None:
    """Every Kosmos pod of every cluster Ready (one stuck for good fails naming the reason)."""
    for cluster in clusters:
        hosts = Host(kubeconfig=str(environment.cluster_kubeconfig(cluster.name)))
        name = cluster.name

        def report(why: str, name: str = name) -> None:
            progress(f"{name}: waiting for {why}")

        try:
            client = await hosts.client()
            await rollout.wait_namespace(client, names.SYSTEM_NAMESPACE, INSTALL_TIMEOUT, report)
            pods = (await client.list(PODS, names.SYSTEM_NAMESPACE)).items
            spread = Counter(str((p.get("spec") or {}).get("nodeName")) for p in pods)
            where = ", ".join(f"{n} on {node}" for node, n in sorted(spread.items()))
            progress(f"{cluster.name}: {len(pods)} Kosmos pods Ready ({where or 'none'})")
        finally:
            await hosts.close()


async def tear_down(host: ClusterPlan, members: list[ClusterPlan], progress: Progress) -> None:
    """The sample app, every member unjoined, ``uninstall``: no Kosmos pod or RBAC is left."""
    hosts = Host(kubeconfig=str(relay_kubeconfig(host)))
    try:
        client = await hosts.client()
        meta = local.SAMPLE_APP["metadata"]
        await applier.delete(client, DEPLOYMENTS, meta["name"], local.SAMPLE_NAMESPACE)
        for member in members:
            progress(await unjoin_member(hosts, member.name, JOIN_WAIT_SECONDS, False, progress))
        await uninstall(
            hosts,
            names.SYSTEM_NAMESPACE,
            force=False,
            wait=True,
            timeout=UNINSTALL_TIMEOUT,
            deleted=lambda line: None,
        )
    finally:
        await hosts.close()
    progress("kosmos: sample app removed, members unjoined, Kosmos uninstalled")


def pod_rows(cluster: str, pods: list[Obj]) -> list[list[str]]:
    """``local status`` rows: namespace/name, node, image, ready, restarts (pure)."""
    rows = []
    for pod in pods:
        spec, status = pod.get("spec") or {}, pod.get("status") or {}
        sidecars = [c for c in spec.get("initContainers") or [] if c.get("restartPolicy")]
        containers = [*sidecars, *(spec.get("containers") or [])]
        running = {c["name"] for c in containers}
        statuses = [
            s
            for s in (status.get("initContainerStatuses") or [])
            + (status.get("containerStatuses") or [])
            if s.get("name") in running
        ]
        ready = sum(1 for s in statuses if s.get("ready"))
        images = sorted({c.get("image", "") for c in containers})
        rows.append(
            [
                cluster,
                f"{namespace_of(pod)}/{name_of(pod)}",
                spec.get("nodeName") or "-",
                ",".join(images),
                f"{ready}/{len(containers)}",
                str(sum(int(s.get("restartCount", 0)) for s in statuses)),
            ]
        )
    return rows
