"""Real nodes of the local environment: bring them up, list them, take them down.

``up`` calls :func:`prepare` once (what every node needs: binaries, images, the cluster
networks, the apiserver relay), then :func:`ensure_cluster` after each cluster is healthy
(its real nodes, their DNS, the node-agents' Secret for the kubenest operator).
Both converge: a second ``up`` finds everything running and changes nothing; after a crash
(``kill -9`` of any node process, or of the relay) it starts exactly what died.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kosmos.api.nodeagent import Failed
from kosmos.api.objects import node_ready
from kosmos.local import kwokctl
from kosmos.local.kubectl import Kubectl, KubectlError
from kosmos.local.nodes import (
    agent,
    agentsetup,
    artifacts,
    clusterdns,
    isolation,
    layout,
    network,
    relay,
    teardown,
)
from kosmos.local.nodes.artifacts import Artifacts

__all__ = [
    "Artifacts",
    "NodeStatus",
    "add_node",
    "down",
    "ensure_cluster",
    "prepare",
    "status",
    "underlay_status",
]
from kosmos.local.nodes.launch import Command, pid_of
from kosmos.local.nodes.node import Context, NodeRunner, Outcome
from kosmos.local.nodes.plan import REAL_NODE_KEY, RealNodePlan, real_node, real_nodes
from kosmos.local.nodes.plan import network as network_of
from kosmos.local.topology import KWOK_NODE_KEY, ClusterPlan

Progress = Callable[[str], None]
PROCESSES = ("containerd", "kubelet", "flanneld", "kube-proxy")
LEAF_KEY = "kosmos.io/node"


def prepare(clusters: list[ClusterPlan], progress: Progress) -> Artifacts:
    """Binaries, images, the networks of ``clusters`` and the relay (to every network made)."""
    found = artifacts.ensure(progress)
    for cluster in clusters:
        network.ensure(network_of(cluster))
    network.ensure_underlay()
    routes = [network.relay_route(net) for net in network.recorded()]
    started = relay.ensure(routes)
    if started:
        progress(f"real nodes: apiserver relay started (pid {started}, log {relay.log_file()})")
    return found


def ensure_cluster(
    cluster: ClusterPlan, environment: str, found: Artifacts, kubectl: Kubectl, progress: Progress
) -> list[Outcome]:
    """flannel's ConfigMap, every planned real node of ``cluster``, then its cluster DNS."""
    if not cluster.real_nodes:
        return []
    network.ensure_flannel_config(kubectl, cluster.pod_cidr)
    outcomes = []
    for node in real_nodes(cluster, environment):
        outcomes.append(ensure_node(node, found, kubectl, progress))
    clusterdns.ensure(kubectl, cluster.service_cidr)
    agentsetup.ensure_secret(kubectl, cluster_pki(cluster.name))
    return outcomes


def cluster_pki(cluster: str) -> Path:
    return kwokctl.cluster_dir(cluster) / "pki"


def ensure_node(
    node: RealNodePlan, found: Artifacts, kubectl: Kubectl, progress: Progress
) -> Outcome:
    ctx = Context(
        artifacts=found,
        kubectl=kubectl,
        cluster_pki=cluster_pki(node.cluster),
        hierarchies=isolation.host_cgroup_mounts(),
    )
    outcome = NodeRunner(node, ctx).run()
    network.ensure_node_routes(node)
    if outcome.tenant:
        progress(
            f"{node.cluster}: real node {node.name} serves tenant {outcome.tenant}: "
            "left to its node-agent"
        )
    elif outcome.started:
        progress(
            f"{node.cluster}: real node {node.name} ({node.address}) Ready in "
            f"{outcome.seconds:.1f}s (started {', '.join(outcome.started)})"
        )
    else:
        progress(f"{node.cluster}: real node {node.name} already running")
    return outcome


def add_node(
    cluster: ClusterPlan, index: int, environment: str, kubectl: Kubectl, progress: Progress
) -> RealNodePlan:
    """One more real node in ``cluster`` beyond the plan (tests use a second one)."""
    plan = real_node(cluster, index, environment)
    found = prepare([cluster], progress)
    network.ensure_flannel_config(kubectl, cluster.pod_cidr)
    ensure_node(plan, found, kubectl, progress)
    return plan


def remove_node(name: str, kubectl: Kubectl | None) -> teardown.Removal:
    """Take one real node down and delete its Node object."""
    report = teardown.Removal()
    teardown.remove_node(name, isolation.host_cgroup_mounts(), report)
    if kubectl is not None:
        kubectl.run("delete", "node", name, "--ignore-not-found", "--wait=false")
    return report


def down(environment: str | None) -> teardown.Removal:
    return teardown.remove_all(environment)


# -- status -----------------------------------------------------------------------------------


@dataclass
class NodeStatus:
    name: str
    cluster: str
    kind: str  # real | lent (to a tenant by its node-agent) | kwok | leaf | other
    runtime: str
    ready: bool
    processes: str  # "4/4" running for real nodes, "-" otherwise


def kind_of(labels: dict[str, str]) -> str:
    if REAL_NODE_KEY in labels:
        return "real"
    if KWOK_NODE_KEY in labels:
        return "kwok"
    if labels.get(LEAF_KEY) == "true":
        return "leaf"
    return "other"


def node_rows(cluster: str, nodes: list[dict[str, Any]]) -> list[NodeStatus]:
    """One row per Node object of a cluster (pure but for the real nodes' process count)."""
    rows = []
    for node in nodes:
        meta, status = node.get("metadata") or {}, node.get("status") or {}
        kind = kind_of(meta.get("labels") or {})
        ready = node_ready(node)
        runtime = (status.get("nodeInfo") or {}).get("containerRuntimeVersion") or "-"
        name = str(meta.get("name"))
        running = processes_running(name) if kind == "real" else "-"
        if kind == "real" and lent_to(name):
            kind = "lent"
        rows.append(NodeStatus(name, cluster, kind, runtime, ready, running))
    return rows


def processes_running(name: str) -> str:
    dirs = layout.NodeDirs(name)
    if not dirs.base.exists():
        return "0/4"
    alive = sum(1 for p in PROCESSES if pid_of(dirs, Command(p, (p,))) is not None)
    return f"{alive}/{len(PROCESSES)}"


def status(clusters: list[ClusterPlan], kubectl_for: Callable[[str], Kubectl]) -> list[NodeStatus]:
    """Every node of every cluster, plus real nodes on disk that never registered."""
    rows: list[NodeStatus] = []
    for cluster in clusters:
        try:
            items = json.loads(kubectl_for(cluster.name).run("get", "nodes", "-o", "json"))["items"]
        except (KubectlError, ValueError, KeyError):
            items = []
        rows += node_rows(cluster.name, items)
    listed = {r.name for r in rows}
    for name in layout.recorded():
        plan = layout.load(name)
        if plan is not None and name not in listed:
            kind = "lent" if lent_to(name) else "real"
            rows.append(NodeStatus(name, plan.cluster, kind, "-", False, processes_running(name)))
    return rows


def lent_to(name: str) -> str:
    """The tenant a real node's agent lent it to ("" when it serves its own cluster): such a
    node is not Ready in its cluster (its Node is the tenant's then), and that is no fault."""
    try:
        served = agent.read_state(layout.NodeDirs(name).agent_state)
    except Failed:
        return ""
    return served.tenant if served else ""


def relay_status() -> tuple[bool, str] | None:
    """Whether the apiserver relay runs, and one line about it; None without real nodes."""
    routes = [network.relay_route(net) for net in network.recorded()]
    if not routes:
        return None
    current = relay.running()
    if current is None:
        return False, f"apiserver relay: NOT RUNNING (`up` starts it; log {relay.log_file()})"
    return True, f"apiserver relay: pid {current[0]}, {', '.join(sorted(current[1]))}"


def underlay_status() -> tuple[bool, str] | None:
    """Whether the router between the cluster networks and every node's routes through it
    are in place, and one line about it; None with fewer than two cluster networks."""
    problems = network.underlay_problems()
    if problems is None:
        return None
    router = network.router_netns(network.recorded())
    if problems:
        return False, f"underlay: {router} INCOMPLETE (`up` repairs it): {', '.join(problems)}"
    return True, f"underlay: {router} routes {len(network.recorded())} cluster networks"
