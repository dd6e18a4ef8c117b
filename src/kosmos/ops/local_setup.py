"""Kosmos on the local environment: what ``kosmosctl local up`` does once the clusters run.

With real nodes (``--real-nodes N``, N >= 1) Kosmos is installed in-cluster exactly as a user
installs it (:mod:`kosmos.ops.local_incluster`). Without, the same steps a user takes with
``kosmosctl install`` and ``kosmosctl join``, through the same code, except that the
components run as local processes (kwok only simulates pods, so a component Deployment would
never really run):

1. server-side apply into the host what those processes need — the kosmos.io CRDs (waited
   for until Established), namespace ``kosmos-system``, ClusterTree's admission policy and
   leaf StorageClass, and the root Cluster — but none of the components' Deployments or RBAC;
2. start the cluster-manager (``kosmos.local.components``) and wait until it leads;
3. start kosmos-scheduler — the extender (``kosmos scheduler-extender``), then a real
   kube-scheduler with the kosmos-scheduler profile pointing at it — and wait until the
   kube-scheduler leads;
4. join every member with ClusterTree enabled (:func:`kosmos.ops.join.join_member`) and
   wait until its leaf node is Ready;
5. with ``--sample-app``, apply an nginx Deployment to ``default`` and wait until its three
   pods run on leaf nodes;
6. with real nodes in the host, deploy metrics-server (:mod:`kosmos.ops.local_metrics`) and
   wait until ``kubectl top`` can answer.

Every step converges, so a second ``up`` changes nothing: applies come back unchanged, the
running cluster-manager is kept, joined members say so. Decisions are pure functions in
:mod:`kosmos.local.kosmos_plan`. The test session uses ``tear_down`` and ``set_up`` to get a
bare environment and to restore a developer's afterwards.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import yaml

from kosmos.api import names
from kosmos.api.resources import DEPLOYMENTS, LEASES, NODES, PODS
from kosmos.kube.client import Client
from kosmos.local import components, environment, paths
from kosmos.local import kosmos_plan as local
from kosmos.local.topology import ClusterPlan
from kosmos.ops import apply as applier
from kosmos.ops import local_incluster, local_metrics, manifests
from kosmos.ops.errors import OperationError
from kosmos.ops.host import Host
from kosmos.ops.install import apply_all
from kosmos.ops.join import join_member, unjoin_member
from kosmos.ops.manifests import InstallOptions, Planned
from kosmos.ops.membership import JoinOptions, MembershipError, flatten_kubeconfig
from kosmos.ops.progress import Progress
from kosmos.scheduler import profile
from kosmos.scheduler.app import serving_pair

POLL_SECONDS = 1.0
CRD_TIMEOUT = 60.0
LEADER_TIMEOUT = 60.0  # a crashed predecessor's Lease must expire first
JOIN_WAIT_SECONDS = 120
LEAF_TIMEOUT = 120.0
SAMPLE_TIMEOUT = 180.0


class SetupError(OperationError):
    """A step did not converge in time; the message says which and where to look."""


def local_objects() -> list[Planned]:
    """What the local processes need in the host: ``install``'s objects minus Deployments/RBAC.

    ClusterLink is left out: the local environment has no container network to link.
    """
    options = InstallOptions(enable_link=False)
    return [
        *manifests.crd_objects(),
        manifests.namespace_object(options),
        *manifests.tree_objects(),
        *manifests.scheduler_admission_objects(),
        manifests.root_cluster(options),
    ]


def _host(host: ClusterPlan) -> Host:
    return Host(kubeconfig=str(environment.cluster_kubeconfig(host.name)))


def set_up(clusters: list[ClusterPlan], sample_app: bool, progress: Progress) -> None:
    """Install, start, join and wait (idempotent); records what it set up in the marker.

    Raises ``SetupError`` (or another ``OperationError``, or the ``KubeError`` an apiserver
    answered) when a step fails.
    """
    host, members = clusters[0], clusters[1:]
    started = time.monotonic()
    hosts = _host(host)
    in_cluster = in_cluster_mode(clusters)
    if in_cluster:
        local_incluster.stop_processes()
        hosts.run(
            local_incluster.set_up(
                host,
                members,
                progress,
                sample_app=sample_app,
                wait_leaves=wait_leaves,
                run_sample_app=lambda c, leaves, p: run_sample_app(c, leaves, p, real_nodes=True),
            )
        )
    else:
        hosts.run(_set_up(hosts, host, members, sample_app, progress))
    local_metrics.set_up(hosts, host, progress)
    local.write_marker(local.merged_marker(local.read_marker(), sample_app, in_cluster))
    where = "in-cluster" if in_cluster else "as local processes"
    progress(f"kosmos: ready ({where}) in {time.monotonic() - started:.1f}s")


def in_cluster_mode(clusters: list[ClusterPlan]) -> bool:
    """Kosmos runs as pods when every cluster has a real node for them (host: the control
    plane; members: the agents); kwok-only environments keep the local processes."""
    return bool(clusters) and all(c.real_nodes > 0 for c in clusters)


async def _set_up(
    hosts: Host,
    host: ClusterPlan,
    members: list[ClusterPlan],
    sample_app: bool,
    progress: Progress,
) -> None:
    client = await hosts.client()
    await install_objects(client, progress)
    await ensure_cluster_manager(client, host, progress)
    await ensure_scheduler(host, progress)
    for member in members:
        await join_local_member(hosts, member, progress)
    leaves = await wait_leaves(client, [m.name for m in members], progress)
    if sample_app:
        await run_sample_app(client, leaves, progress)


async def install_objects(client: Client, progress: Progress) -> None:
    actions: list[str] = []
    try:
        await apply_all(
            client, local_objects(), lambda step: actions.append(step.action), progress, CRD_TIMEOUT
        )
    except applier.WaitTimeout as exc:
        raise SetupError(str(exc)) from exc
    summary = applier.summarize(actions)
    progress(f"kosmos: CRDs, namespace, tree and scheduler objects, root Cluster: {summary}")


async def _ensure_component(
    name: str, want: list[str], port: int, progress: Progress, *, changed: bool = False
) -> int:
    """Keep a healthy process of ours running ``want``, (re)start anything else.

    ``changed``: its configuration file changed, so a running process is restarted too.
    """
    pid = components.running(name)
    argv = components.cmdline(pid) if pid else []
    serving = bool(pid) and await asyncio.to_thread(components.healthy, port)
    action = local.component_action(pid, argv, want, serving)
    if action == "keep" and changed:
        action = "restart"
        progress(f"{name}: its configuration changed; restarting")
    if action == "keep" and pid is not None:
        progress(f"{name}: already running (pid {pid}, health :{port})")
        return pid
    if action == "restart":
        progress(f"{name}: pid {pid} is not a healthy {name} of this environment; restarting")
        await asyncio.to_thread(components.stop, name)
    try:
        pid = await asyncio.to_thread(components.start, name, want, health_port=port)
    except RuntimeError as exc:
        raise SetupError(str(exc)) from exc
    progress(f"{name}: started (pid {pid}, health :{port}, log {_log(name)})")
    return pid


async def ensure_cluster_manager(client: Client, host: ClusterPlan, progress: Progress) -> int:
    """Keep a healthy cluster-manager of ours, (re)start anything else; wait until it leads."""
    name = local.CLUSTER_MANAGER
    ports = local.cluster_manager_ports(host)
    want = components.cluster_manager_command(
        environment.cluster_kubeconfig(host.name), ports, address=components.leaf_address(host)
    )
    pid = await _ensure_component(name, want, ports.health, progress)
    await _wait(
        f"{name} (pid {pid}) to lead",
        LEADER_TIMEOUT,
        lambda: _leader_pending(client, pid),
        progress,
    )
    return pid


def scheduler_command(host: ClusterPlan) -> tuple[list[str], str]:
    """kube-scheduler's command line and the configuration file it reads."""
    ports = local.scheduler_ports(host)
    cert, _ = serving_pair(str(components.extender_cert_dir()), ["127.0.0.1", "localhost"])
    config = profile.configuration(
        extender_url=f"https://127.0.0.1:{ports.extender}",
        kubeconfig=str(environment.cluster_kubeconfig(host.name)),
        ca_pem=cert,
    )
    path = components.scheduler_config_file()
    flags = profile.flags(str(path), secure_port=ports.scheduler, bind_address="127.0.0.1")
    return [str(paths.bin_dir() / "kube-scheduler"), *flags], yaml.safe_dump(config)


async def ensure_scheduler(host: ClusterPlan, progress: Progress) -> int:
    """The extender first (kube-scheduler calls it from its first pod), then kube-scheduler
    with the kosmos-scheduler profile; wait until the kube-scheduler leads."""
    ports = local.scheduler_ports(host)
    kubeconfig = environment.cluster_kubeconfig(host.name)
    want, config = scheduler_command(host)  # also writes the extender's certificate
    await _ensure_component(
        local.EXTENDER, components.extender_command(kubeconfig, ports), ports.extender, progress
    )
    path = components.scheduler_config_file()
    changed = not path.exists() or path.read_text() != config
    path.write_text(config)
    name = local.SCHEDULER
    pid = await _ensure_component(name, want, ports.scheduler, progress, changed=changed)
    await _wait(f"{name} (pid {pid}) to lead", LEADER_TIMEOUT, lambda: _leads(ports), progress)
    return pid


async def _leads(ports: components.SchedulerPorts) -> str:
    def scrape() -> str:
        url = f"https://127.0.0.1:{ports.scheduler}/metrics"
        try:
            with urllib.request.urlopen(
                url, timeout=5, context=components.loopback_tls()
            ) as response:
                return str(response.read().decode())
        except OSError:
            return ""

    metrics = await asyncio.to_thread(scrape)
    return "" if local.scheduler_leads(metrics) else f"{local.SCHEDULER} to take its Lease"


async def _leader_pending(client: Client, pid: int) -> str:
    """Until our process leads, its controllers do not run (a killed predecessor's Lease must
    expire first)."""
    namespace, lease_name = local.CLUSTER_MANAGER_LEASE
    lease = await applier.get_or_none(client, LEASES, lease_name, namespace)
    if local.holds_lease(lease, pid):
        return ""
    holder = ((lease or {}).get("spec") or {}).get("holderIdentity") or "nobody yet"
    return f"{local.CLUSTER_MANAGER} (pid {pid}) to take its Lease (held by {holder})"


async def join_local_member(hosts: Host, member: ClusterPlan, progress: Progress) -> None:
    """``kosmosctl join cluster --name <member> --kubeconfig <its kubeconfig> --enable-tree``."""
    try:
        kubeconfig = flatten_kubeconfig(environment.cluster_kubeconfig(member.name), None)
    except MembershipError as exc:
        raise SetupError(str(exc)) from exc
    # kwok nodes only: Kosmos runs as processes, no member pods (prober, kosmos-coredns)
    options = JoinOptions(name=member.name, enable_link=False, enable_tree=True, in_cluster=False)
    message = await join_member(hosts, options, kubeconfig, JOIN_WAIT_SECONDS, progress)
    outcome = message.removeprefix(f"cluster {member.name} ").removeprefix("is ")
    progress(f"{member.name}: {outcome}")


async def wait_leaves(client: Client, members: list[str], progress: Progress) -> set[str]:
    """Wait until every member's leaf nodes are Ready; returns the leaf node names."""
    leaves: set[str] = set()

    async def pending() -> str:
        nodes = (await client.list(NODES, label_selector=f"{names.LABEL_NODE}=true")).items
        leaves.clear()
        leaves.update(local.leaf_names(nodes, members))
        waiting = local.leaves_pending(nodes, members)
        return f"leaf nodes of {', '.join(waiting)}" if waiting else ""

    await _wait("leaf nodes to be Ready", LEAF_TIMEOUT, pending, progress)
    if members:
        progress(f"kosmos: leaf nodes Ready: {', '.join(sorted(leaves))}")
    return leaves


async def run_sample_app(
    client: Client, leaves: set[str], progress: Progress, *, real_nodes: bool = False
) -> None:
    """Apply the sample nginx Deployment and wait until its pods run on leaf nodes."""
    body = local.sample_app(real_nodes)
    step = await applier.apply(client, DEPLOYMENTS, body, dry_run=False)
    progress(f"sample app: {step.name} {step.action} in namespace {local.SAMPLE_NAMESPACE}")
    placed: dict[str, str] = {}

    async def pending() -> str:
        meta = body["metadata"]
        deployment = await applier.get_or_none(client, DEPLOYMENTS, meta["name"], meta["namespace"])
        pods = (
            await client.list(PODS, local.SAMPLE_NAMESPACE, label_selector=local.SAMPLE_SELECTOR)
        ).items
        wrong = local.misplaced(pods, leaves)
        if wrong:
            raise SetupError(
                f"sample app pods were scheduled on {', '.join(wrong)}, which are not leaf "
                "nodes: the host's nodes lack the control-plane taint (an environment from an "
                "older kosmosctl? `kosmosctl local down` and `up` again)"
            )
        placed.clear()
        placed.update({p["metadata"]["name"]: p["spec"].get("nodeName", "") for p in pods})
        return local.sample_pending(deployment, pods)

    await _wait("the sample app's pods to run", SAMPLE_TIMEOUT, pending, progress)
    spread = Counter(placed.values())
    where = ", ".join(f"{n} on {node}" for node, n in sorted(spread.items()))
    progress(f"sample app: {len(placed)} pods Running ({where})")


async def _wait(
    what: str,
    timeout: float,
    pending: Callable[[], Awaitable[str]],
    progress: Progress,
) -> None:
    """Poll ``pending`` until it returns ""; print each new reason; fail clearly at timeout."""
    try:
        await applier.poll(
            what,
            timeout,
            pending,
            interval=POLL_SECONDS,
            report=lambda why: progress(f"kosmos: waiting for {why}"),
        )
    except applier.WaitTimeout as exc:
        raise SetupError(f"{exc} (cluster-manager log: {_log(local.CLUSTER_MANAGER)})") from exc


def _log(name: str) -> Path:
    return components.log_file(name)


def tear_down(clusters: list[ClusterPlan], progress: Progress) -> local.Marker | None:
    """Undo ``set_up`` (metrics-server, sample app, joins, the components); returns what had
    been set up.

    The CRDs, namespace and root Cluster stay: they cost nothing and ``install`` owns them.
    Used by the test session to get a bare environment; ``set_up`` restores it afterwards.
    """
    marker = local.read_marker()
    if marker is None:
        return None
    host, members = clusters[0], clusters[1:]
    hosts = _host(host)
    local_metrics.tear_down(hosts, progress)
    if marker.in_cluster:
        hosts.run(local_incluster.tear_down(host, members, progress))
        local.clear_marker()
        return marker
    hosts.run(_tear_down(hosts, host, [m.name for m in members], progress))
    for name in (local.SCHEDULER, local.EXTENDER, local.CLUSTER_MANAGER):
        components.stop(name)
    local.clear_marker()
    progress("kosmos: sample app, joins, kosmos-scheduler and cluster-manager removed")
    return marker


async def _tear_down(
    hosts: Host, host: ClusterPlan, members: list[str], progress: Progress
) -> None:
    client = await hosts.client()
    # Its finalizers clean up the members (and a restarted environment has none running).
    await ensure_cluster_manager(client, host, progress)
    meta = local.SAMPLE_APP["metadata"]
    await applier.delete(client, DEPLOYMENTS, meta["name"], local.SAMPLE_NAMESPACE)

    async def pods_left() -> str:
        pods = await client.list(PODS, local.SAMPLE_NAMESPACE, label_selector=local.SAMPLE_SELECTOR)
        return f"{len(pods.items)} sample pods" if pods.items else ""

    await _wait("the sample app's pods to go", SAMPLE_TIMEOUT, pods_left, progress)
    for member in members:
        progress(await unjoin_member(hosts, member, JOIN_WAIT_SECONDS, False, progress))
