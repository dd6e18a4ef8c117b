"""``up``, ``down`` and ``status`` of the local environment.

``up`` is idempotent: a running cluster is left alone, a stopped one is started, a missing one
is created; nodes are created only where absent. ``down`` deletes every cluster, then checks
/proc and kills whatever survived, and reports any port still bound, so a test can rely on it.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from kosmos.api.objects import node_ready
from kosmos.local import components, kosmos_plan, kwokctl, paths, procs, toolchain
from kosmos.local.kubectl import Kubectl, KubectlError
from kosmos.local.nodes import lifecycle, teardown
from kosmos.local.nodes.plan import environment_name
from kosmos.local.topology import (
    KWOK_NODE_SELECTOR,
    ClusterPlan,
    Options,
    node_drift,
    node_manifest,
    plan,
)

Progress = Callable[[str], None]


class LocalEnvError(RuntimeError):
    """The environment cannot be brought to the asked state; the message says what to do."""


def state_file() -> Path:
    return paths.local_dir() / "env.json"


def kubeconfig_dir() -> Path:
    """Per-cluster kubeconfigs ``<name>-kubeconfig`` and the merged ``config``."""
    return paths.local_dir() / "kubeconfig"


def merged_kubeconfig() -> Path:
    return kubeconfig_dir() / "config"


def cluster_kubeconfig(name: str) -> Path:
    return kubeconfig_dir() / f"{name}-kubeconfig"


@dataclass
class ClusterStatus:
    name: str
    role: str
    server: str
    version: str
    healthy: bool
    nodes_ready: int
    nodes_total: int
    processes: int
    rss_mib: float


def load_options() -> Options | None:
    if not state_file().exists():
        return None
    return Options(**json.loads(state_file().read_text())["options"])


def up(options: Options, progress: Progress) -> list[ClusterPlan]:
    """Bring the environment to ``options``; safe to re-run."""
    clusters = plan(options)
    previous = load_options()
    if previous is not None and previous != options and _running_clusters():
        raise LocalEnvError(
            f"an environment with other options is up ({previous}); "
            "run `kosmosctl local down` first"
        )
    for cluster in clusters:  # before anything is written
        if not kwokctl.cluster_exists(cluster.name):
            _check_ports_free(cluster)
    tools = toolchain.ensure(progress)
    kwok = kwokctl.Kwokctl(tools.path("kwokctl"))
    _save_state(options, tools.k8s_version)
    with_nodes = [c for c in clusters if c.real_nodes]
    found = lifecycle.prepare(with_nodes, progress) if with_nodes else None
    for cluster in clusters:
        started = time.monotonic()
        _ensure_cluster(kwok, cluster, tools, progress)
        _write_kubeconfig(cluster, kwok.kubeconfig(cluster.name))
        _ensure_nodes(cluster, tools, progress)
        if found is not None:
            _real_nodes(cluster, clusters, found, tools.path("kubectl"), progress)
        progress(f"{cluster.name}: ready in {time.monotonic() - started:.1f}s")
    _write_merged_kubeconfig(clusters)
    return clusters


def _real_nodes(
    cluster: ClusterPlan,
    clusters: list[ClusterPlan],
    found: lifecycle.Artifacts,
    kubectl_binary: Path,
    progress: Progress,
) -> None:
    kubectl = _kubectl(cluster.name, kubectl_binary, cluster_kubeconfig(cluster.name))
    lifecycle.ensure_cluster(cluster, environment_name(clusters), found, kubectl, progress)


def ensure_real_nodes(clusters: list[ClusterPlan], progress: Progress) -> None:
    """Bring every planned real node up in running clusters (what ``up`` does for them)."""
    with_nodes = [c for c in clusters if c.real_nodes]
    if with_nodes:
        found = lifecycle.prepare(with_nodes, progress)
        for cluster in with_nodes:
            _real_nodes(cluster, clusters, found, paths.bin_dir() / "kubectl", progress)


def _ensure_cluster(
    kwok: kwokctl.Kwokctl, cluster: ClusterPlan, tools: toolchain.Toolchain, progress: Progress
) -> None:
    if not kwokctl.cluster_exists(cluster.name):
        progress(f"{cluster.name}: creating ({cluster.role}, apiserver :{cluster.apiserver_port})")
        kwok.create(cluster, tools)
        return
    kwokctl.ensure_pod_log(cluster.name)
    if not kwokctl.serves_logs_and_exec(cluster.name):
        progress(
            f"{cluster.name}: created by an older kosmosctl, so `kubectl logs/exec/port-forward/"
            "top` on its pods fail; run `kosmosctl local down` and `up` again to re-create it"
        )
    if _healthy(_kubectl(cluster.name, tools.path("kubectl"), kwok.kubeconfig(cluster.name))):
        progress(f"{cluster.name}: already running")
        return
    # Stopped, crashed or half-running (e.g. processes killed with the last session).
    progress(f"{cluster.name}: not healthy; restarting its components")
    restart_cluster(cluster.name, tools)


def restart_cluster(name: str, tools: toolchain.Toolchain | None = None) -> None:
    """Stop whatever runs of a cluster (freeing its ports), start it, hand nodes to kwok.

    kwok only simulates nodes whose Lease it holds, and the previous kwok instance's leases
    outlive it (lease duration x heartbeat factor, 200 s): without releasing them, pods on
    existing nodes would stay Pending for minutes after a restart.
    """
    kwok = kwokctl.Kwokctl(tools.path("kwokctl") if tools else paths.bin_dir() / "kwokctl")
    kwok.stop(name)
    kwok.start(name)
    binary = tools.path("kubectl") if tools else paths.bin_dir() / "kubectl"
    kubectl = _kubectl(name, binary, kwok.kubeconfig(name))
    nodes = kubectl.run("get", "nodes", "-l", KWOK_NODE_SELECTOR, "-o", "name").split()
    leases = [n.removeprefix("node/") for n in nodes]
    if leases:
        kubectl.run("delete", "lease", "-n", "kube-node-lease", "--ignore-not-found", *leases)


def _check_ports_free(cluster: ClusterPlan) -> None:
    """Refuse clearly when another process holds one of the cluster's ports."""
    listening = procs.listening_ports()
    busy = [
        f"{port} ({component})" for component, port in cluster.ports.items() if port in listening
    ]
    if busy:
        raise LocalEnvError(
            f"{cluster.name}: ports in use by another process: {', '.join(busy)}; stop it, or "
            "choose other ports with --port-base (another environment may run from a different "
            "KOSMOS_LOCAL_DIR)"
        )


def _kubectl(name: str, binary: Path, kubeconfig: Path) -> Kubectl:
    return Kubectl(binary, kubeconfig, name)


def _healthy(kubectl: Kubectl) -> bool:
    return kubectl.kubeconfig.exists() and kubectl.ok("get", "--raw", "/readyz")


def _ensure_nodes(cluster: ClusterPlan, tools: toolchain.Toolchain, progress: Progress) -> None:
    """Create the simulated nodes that are missing, bring existing ones to the plan's labels
    and taints, then wait until kwok marks them Ready."""
    kubectl = _kubectl(cluster.name, tools.path("kubectl"), cluster_kubeconfig(cluster.name))
    live = {
        n["metadata"]["name"]: n
        for n in json.loads(kubectl.run("get", "nodes", "-o", "json"))["items"]
    }
    missing = [n for n in cluster.nodes if n.name not in live]
    if missing:
        items = [node_manifest(n, tools.k8s_version) for n in missing]
        body = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
        kubectl.run("create", "-f", "-", stdin=body)
        progress(f"{cluster.name}: created {len(missing)} kwok nodes")
    drifted = 0
    for node in cluster.nodes:
        patch = node_drift(node, live[node.name]) if node.name in live else None
        if patch is not None:
            kubectl.run("patch", "node", node.name, "--type", "merge", "-p", json.dumps(patch))
            drifted += 1
    if drifted:
        progress(f"{cluster.name}: brought labels and taints of {drifted} nodes to the plan")
    kubectl.run(
        "wait",
        "--for=condition=Ready",
        "node",
        "-l",
        KWOK_NODE_SELECTOR,
        "--timeout=120s",
        timeout=150,
    )


def _inline_files(kubeconfig: dict[str, Any], section: str) -> None:
    """Inline file references so the kubeconfig is portable (it is what `join` stores)."""
    for entry in kubeconfig.get(section + "s", []):
        body = entry[section]
        for field_name in ("certificate-authority", "client-certificate", "client-key"):
            if field_name in body:
                data = Path(body.pop(field_name)).read_bytes()
                body[field_name + "-data"] = base64.b64encode(data).decode()


def _write_kubeconfig(cluster: ClusterPlan, source: Path) -> None:
    """Rewrite kwokctl's kubeconfig: names = the cluster name, certificates inlined."""
    raw = yaml.safe_load(source.read_text())
    _inline_files(raw, "cluster")
    _inline_files(raw, "user")
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster.name, "cluster": raw["clusters"][0]["cluster"]}],
        "users": [{"name": cluster.name, "user": raw["users"][0]["user"]}],
        "contexts": [
            {"name": cluster.name, "context": {"cluster": cluster.name, "user": cluster.name}}
        ],
        "current-context": cluster.name,
        "preferences": {},
    }
    kubeconfig_dir().mkdir(parents=True, exist_ok=True)
    target = cluster_kubeconfig(cluster.name)
    target.write_text(yaml.safe_dump(config, sort_keys=False))
    target.chmod(0o600)


def _write_merged_kubeconfig(clusters: list[ClusterPlan]) -> None:
    merged: dict[str, Any] = {"apiVersion": "v1", "kind": "Config", "preferences": {}}
    for key in ("clusters", "users", "contexts"):
        merged[key] = []
    for cluster in clusters:
        one = yaml.safe_load(cluster_kubeconfig(cluster.name).read_text())
        for key in ("clusters", "users", "contexts"):
            merged[key] += one[key]
    merged["current-context"] = clusters[0].name
    merged_kubeconfig().write_text(yaml.safe_dump(merged, sort_keys=False))
    merged_kubeconfig().chmod(0o600)


def _save_state(options: Options, k8s_version: str) -> None:
    paths.local_dir().mkdir(parents=True, exist_ok=True)
    state = {"options": asdict(options), "kubernetes": k8s_version}
    state_file().write_text(json.dumps(state, indent=2))


def _running_clusters() -> list[str]:
    clusters = kwokctl.workdir() / "clusters"
    if not clusters.exists():
        return []
    return [d.name for d in clusters.iterdir() if procs.processes_under(d)]


@dataclass
class DownReport:
    deleted: list[str]
    killed: list[procs.Process]
    ports_still_bound: dict[int, int]
    real_nodes: teardown.Removal


def down(progress: Progress) -> DownReport:
    """Stop the Kosmos components, delete every cluster, prove nothing is left running.

    Components go first: they hold leases and watches on the apiservers, and stopping them
    while those still answer lets them shut down cleanly instead of retrying into the void.
    """
    stopped = components.stop_all()
    if stopped:
        progress(f"stopped components: {', '.join(stopped)}")
    options = load_options()
    removal = lifecycle.down(environment_name(plan(options)) if options else None)
    if removal.nodes:
        progress(f"removed real nodes: {', '.join(removal.nodes)}")
    root = kwokctl.workdir()
    clusters_dir = root / "clusters"
    names = sorted(d.name for d in clusters_dir.iterdir()) if clusters_dir.exists() else []
    before = procs.processes_under(paths.local_dir())
    ports = procs.listening_ports([p.pid for p in before])
    kwokctl_bin = paths.bin_dir() / "kwokctl"
    for name in names:
        progress(f"{name}: deleting")
        try:
            kwokctl.Kwokctl(kwokctl_bin).delete(name)
        except (kwokctl.KwokctlError, OSError) as exc:
            progress(f"{name}: kwokctl delete failed ({exc}); stopping its processes directly")
    # kwokctl signals its processes and returns; give them time to exit on their own.
    procs.wait_exit([p.pid for p in before], timeout=20.0)
    leftovers = procs.processes_under(paths.local_dir())
    if leftovers:
        progress(f"stopping {len(leftovers)} leftover processes")
        procs.terminate([p.pid for p in leftovers])
    still_bound = procs.wait_ports_free(sorted(ports), timeout=5.0)
    still = {port: ports[port] for port in still_bound}
    doomed = (merged_kubeconfig(), state_file(), kosmos_plan.marker_file())
    for path in (*doomed, *kubeconfig_dir().glob("*-kubeconfig")):
        path.unlink(missing_ok=True)
    return DownReport(names, leftovers, still, removal)


def status() -> list[ClusterStatus]:
    """Health of every planned cluster; an environment that is not up yields an empty list."""
    options = load_options()
    if options is None:
        return []
    kubectl_bin = paths.bin_dir() / "kubectl"
    result = []
    for cluster in plan(options):
        pids = [p.pid for p in procs.processes_under(kwokctl.cluster_dir(cluster.name))]
        kubectl = _kubectl(cluster.name, kubectl_bin, cluster_kubeconfig(cluster.name))
        healthy = bool(pids) and _healthy(kubectl)
        version, ready, total = "-", 0, 0
        if healthy:
            version, ready, total = _version_and_nodes(kubectl)
        result.append(
            ClusterStatus(
                name=cluster.name,
                role=cluster.role,
                server=f"https://127.0.0.1:{cluster.apiserver_port}",
                version=version,
                healthy=healthy,
                nodes_ready=ready,
                nodes_total=total,
                processes=len(pids),
                rss_mib=procs.rss_bytes(pids) / 2**20,
            )
        )
    return result


def nodes_status() -> list[lifecycle.NodeStatus]:
    """Every node of every planned cluster: kwok, real, leaf; empty if the environment is down."""
    options = load_options()
    if options is None:
        return []
    binary = paths.bin_dir() / "kubectl"
    return lifecycle.status(
        plan(options), lambda name: _kubectl(name, binary, cluster_kubeconfig(name))
    )


def relay_status() -> tuple[bool, str] | None:
    """Whether the real nodes' apiserver relay runs, and a line about it (None: no nodes)."""
    return lifecycle.relay_status()


def underlay_status() -> tuple[bool, str] | None:
    """Whether the cluster networks are routed to each other (None: fewer than two)."""
    return lifecycle.underlay_status()


def _version_and_nodes(kubectl: Kubectl) -> tuple[str, int, int]:
    try:
        version = json.loads(kubectl.run("version", "-o", "json"))["serverVersion"]["gitVersion"]
        nodes = json.loads(kubectl.run("get", "nodes", "-o", "json"))["items"]
    except (KubectlError, KeyError, ValueError):
        return "-", 0, 0
    ready = sum(1 for node in nodes if node_ready(node))
    return version, ready, len(nodes)
