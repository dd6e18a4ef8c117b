"""Kosmos in the local environment: what runs where, and the decisions ``up`` makes (pure).

In the local environment the host's nodes are simulated, so Kosmos's components run as local
processes (:mod:`kosmos.local.components`) rather than as the Deployments ``kosmosctl
install`` creates. ``kosmosctl local up`` installs what those processes need into the host,
starts them, joins every member with ClusterTree enabled and, with ``--sample-app``, runs an
nginx Deployment on the leaf nodes. The orchestration talks to apiservers and lives in
:mod:`kosmos.ops.local_setup`; this module holds its data and its decisions, so each can be
unit-tested without a cluster.

A marker file (``$KOSMOS_LOCAL_DIR/kosmos.json``) records that ``up`` set Kosmos up, and
whether with the sample app: the test session uses it to put a developer's environment back
as it found it.
"""

from __future__ import annotations

import copy
import json
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from kosmos.api import manifests as build
from kosmos.api import names
from kosmos.api.objects import Obj, is_deleting, node_ready, pod_phase
from kosmos.local import paths
from kosmos.local.components import Ports, SchedulerPorts
from kosmos.local.images import HTTP_REF
from kosmos.local.nodes.plan import REAL_NODE_KEY
from kosmos.local.topology import ClusterPlan

CLUSTER_MANAGER = "cluster-manager"
#: The leader-election Lease every cluster-manager competes for.
CLUSTER_MANAGER_LEASE = (names.SYSTEM_NAMESPACE, CLUSTER_MANAGER)
#: kosmos-scheduler: a kube-scheduler process and the extender it calls.
EXTENDER = "scheduler-extender"
SCHEDULER = names.SCHEDULER_NAME

SAMPLE_NAMESPACE = "default"
SAMPLE_SELECTOR = "app=nginx"
#: Our HTTP test image (``kosmosctl local images``) instead of ``nginx:1.14.2``, which no
#: registry-less node can run: it answers ``GET /`` on ``$PORT`` with the pod's name.
SAMPLE_IMAGE = HTTP_REF
#: Where the member copies go when members have real nodes: only there, tolerating their
#: taint, so they run real containers (``kosmos.io/cluster-selector`` is member scheduling).
REAL_NODE_PLACEMENT = {
    "nodeSelector": {REAL_NODE_KEY: "true"},
    "tolerations": [{"key": REAL_NODE_KEY, "operator": "Exists", "effect": "NoSchedule"}],
}
#: Three pods of the nginx sample (the name stays) that tolerate only the leaf-node taint and
#: select leaf nodes, so they run in the members: the smallest workload that shows a pod of
#: the host running in a member. The selector matters when the host has real worker nodes
#: (``--real-nodes``), which the default scheduler would otherwise also use; ClusterTree
#: drops it from the member's copy (``kosmos.io/`` keys describe host leaf nodes).
SAMPLE_APP: Obj = build.deployment(
    build.metadata("nginx-deployment", {"app": "nginx"}),
    selector={"app": "nginx"},
    pod_labels={"app": "nginx"},
    pod_spec={
        "nodeSelector": {names.LABEL_NODE: "true"},
        "tolerations": [{"key": "kosmos.io/node", "operator": "Equal", "value": "true"}],
        "containers": [
            {
                "name": "nginx",
                "image": SAMPLE_IMAGE,
                "imagePullPolicy": "IfNotPresent",
                "env": [{"name": "PORT", "value": "80"}],
                "ports": [{"containerPort": 80}],
            }
        ],
    },
    replicas=3,
)


def sample_app(real_nodes: bool = False) -> Obj:
    """The sample Deployment placed in ``default``, as ``kubectl apply -f`` there would;
    with ``real_nodes`` its member copies run on the members' real nodes."""
    body = copy.deepcopy(SAMPLE_APP)
    body["metadata"]["namespace"] = SAMPLE_NAMESPACE
    if real_nodes:
        template = body["spec"]["template"]["metadata"]
        selector = json.dumps(REAL_NODE_PLACEMENT, sort_keys=True)
        template["annotations"] = {names.ANNOTATION_CLUSTER_SELECTOR: selector}
    return body


def leaf_node_name(member: str) -> str:
    """The whole-cluster leaf node ClusterTree makes for a member (``kosmos-cluster1``)."""
    return f"kosmos-{member}"


def cluster_manager_ports(host: ClusterPlan) -> Ports:
    return Ports.for_base(host.apiserver_port)


def scheduler_ports(host: ClusterPlan) -> SchedulerPorts:
    return SchedulerPorts.for_base(host.apiserver_port)


def scheduler_leads(metrics: str) -> bool:
    """kube-scheduler's ``/metrics`` say it holds the kosmos-scheduler Lease.

    Its Lease identity is ``<hostname>_<random UUID>``, so unlike the cluster-manager's it
    cannot be matched to a pid; the process itself reports whether it leads.
    """
    wanted = 'leader_election_master_status{name="kube-scheduler"} 1'  # names the binary
    return any(line.strip() == wanted for line in metrics.splitlines())


# --- the marker ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Marker:
    """What ``up`` set up, so a later session can restore it."""

    sample_app: bool = False
    #: Kosmos was installed in-cluster (pods on real nodes), not run as local processes.
    in_cluster: bool = False


def marker_file() -> Path:
    return paths.local_dir() / "kosmos.json"


def read_marker() -> Marker | None:
    try:
        data = json.loads(marker_file().read_text())
    except (OSError, ValueError):
        return None
    return Marker(sample_app=bool(data.get("sample_app")), in_cluster=bool(data.get("in_cluster")))


def write_marker(marker: Marker) -> None:
    marker_file().parent.mkdir(parents=True, exist_ok=True)
    marker_file().write_text(json.dumps(asdict(marker)))


def clear_marker() -> None:
    marker_file().unlink(missing_ok=True)


def merged_marker(previous: Marker | None, sample_app: bool, in_cluster: bool = False) -> Marker:
    """A sample app set up earlier stays recorded: ``up`` without the flag does not remove it."""
    return Marker(
        sample_app=sample_app or bool(previous and previous.sample_app), in_cluster=in_cluster
    )


# --- decisions ----------------------------------------------------------------------------

Action = Literal["start", "keep", "restart"]


def component_action(pid: int | None, argv: list[str], want: list[str], serving: bool) -> Action:
    """What to do with a component given its process (if any) and the command we would run.

    ``pid`` is a live launcher process of that component (``components.running``). If its
    arguments do not begin with ours (the interpreter aside: a venv's python has several
    names) it runs against another kubeconfig or other ports; if it does not serve its health
    port it is hung: both are restarted. Extra trailing flags (a test's ``--heartbeat``) are
    fine.
    """
    if pid is None:
        return "start"
    if argv[1 : len(want)] != want[1:] or not serving:
        return "restart"
    return "keep"


def leader_identity(pid: int) -> str:
    """The identity a cluster-manager with this pid takes in its Lease (see clustertree.app)."""
    return f"{socket.gethostname()}_{pid}"


def holds_lease(lease: Obj | None, pid: int) -> bool:
    """The component with ``pid`` leads: its controllers run, so joins will turn Ready."""
    holder = ((lease or {}).get("spec") or {}).get("holderIdentity")
    return holder == leader_identity(pid)


def _owned(nodes: list[Obj], members: list[str]) -> dict[str, list[Obj]]:
    """Each member's leaf nodes: the host nodes labelled with it as owner cluster."""
    owned: dict[str, list[Obj]] = {m: [] for m in members}
    for node in nodes:
        owner = (node.get("metadata", {}).get("labels") or {}).get(names.LABEL_OWNER_CLUSTER)
        if owner in owned:
            owned[owner].append(node)
    return owned


def leaf_names(nodes: list[Obj], members: list[str]) -> set[str]:
    """The names of the members' leaf nodes (a leaf node of anything else is not one of ours)."""
    return {n["metadata"]["name"] for owned in _owned(nodes, members).values() for n in owned}


def leaves_pending(nodes: list[Obj], members: list[str]) -> list[str]:
    """Members whose leaf nodes are missing or not Ready (``[]``: every leaf is Ready).

    Any leaf model makes at least one leaf node per member.
    """
    owned = _owned(nodes, members)
    return [m for m in members if not owned[m] or not all(node_ready(n) for n in owned[m])]


def _live(pods: list[Obj]) -> list[Obj]:
    """Pods not being deleted (those of a previous rollout do not count)."""
    return [p for p in pods if not is_deleting(p)]


def misplaced(pods: list[Obj], leaves: set[str]) -> list[str]:
    """Nodes other than leaf nodes that sample pods were bound to (waiting cannot fix that)."""
    bound = {(p.get("spec") or {}).get("nodeName") or "" for p in _live(pods)}
    return sorted(bound - leaves - {""})


def sample_pending(deployment: Obj | None, pods: list[Obj]) -> str:
    """Why the sample app is not yet fully Running; "" when it is.

    Done means as many live pods as replicas, every one Running.
    """
    if deployment is None:
        return "Deployment not found"
    want = int((deployment.get("spec") or {}).get("replicas", 1))
    live = _live(pods)
    running = [p for p in live if pod_phase(p) == "Running"]
    if len(live) != want or len(running) != want:
        return f"{len(running)}/{want} pods Running"
    return ""
