"""Plan the local environment: cluster names, ports, CIDRs and simulated nodes (pure, no I/O).

The plan is deterministic so that kubeconfigs stay stable across ``down``/``up`` and a test can
predict every port the environment listens on. Names are those the README's quick start uses:
the host is ``host``, members are ``cluster1``..``clusterN`` (leaf nodes become
``kosmos-cluster1``...).
"""

from __future__ import annotations

import hashlib
import ipaddress
import uuid
from dataclasses import dataclass, field
from typing import Any

from kosmos.api import names

KWOK_NODE_KEY = names.LABEL_KWOK_NODE
KWOK_NODE_VALUE = "fake"
#: kwok manages only nodes carrying this label, so Kosmos's own leaf nodes stay untouched.
KWOK_NODE_SELECTOR = f"{KWOK_NODE_KEY}={KWOK_NODE_VALUE}"

HOST = "host"
PORTS_PER_CLUSTER = 10
COMPONENT_PORT_OFFSETS = {
    "kube-apiserver": 0,
    "etcd": 1,
    "etcd-peer": 2,
    "kube-controller-manager": 3,
    "kube-scheduler": 4,
    "kwok-controller": 5,
}
#: Kosmos components run as local processes beside the host (kosmos.local.components). Their
#: ports use the host's spare offsets, so they stay inside the validated port range and never
#: meet a member's ports, however many members there are.
HOST_PORT_OFFSETS = {
    **COMPONENT_PORT_OFFSETS,
    "cluster-manager-kubelet": 6,
    "cluster-manager-health": 7,
    "scheduler-extender": 8,
    "kosmos-scheduler": 9,
}

#: The host is Kosmos's control cluster: its own nodes are control-plane nodes that ordinary
#: workloads do not land on, so pods that tolerate only leaf nodes (``kosmos.io/node``) run in
#: the members (the sample app of ``local up --sample-app`` shows it). ``kubectl get nodes``
#: shows the role.
CONTROL_PLANE_ROLE = "node-role.kubernetes.io/control-plane"
CONTROL_PLANE_TAINT = {"key": CONTROL_PLANE_ROLE, "effect": "NoSchedule"}
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-1", "us-west-2", "eu-central-1", "ap-east-1")
ZONE_SUFFIXES = ("a", "b", "c")
#: Heterogeneous node sizes (cpu cores, memory GiB) so fragmentation is visible later.
NODE_SHAPES = ((8, 32), (16, 64), (4, 16))
MAX_CLUSTERS = 90  # 10.<10+i> pod and 10.<110+i> service ranges stay inside 10.0.0.0/8
#: Real nodes per cluster (kubelet + containerd each, :mod:`kosmos.local.nodes`): a cap that
#: keeps an environment within what a small machine runs beside its control planes.
MAX_REAL_NODES = 20


class PlanError(ValueError):
    """Options that cannot make a working environment; the message says which and why."""


@dataclass(frozen=True)
class Options:
    members: int = 2
    nodes: int = 3
    overlap: bool = False
    port_base: int = 16400
    bind_address: str = "127.0.0.1"
    real_nodes: int = 0

    def validate(self) -> None:
        if not 0 <= self.members < MAX_CLUSTERS:
            raise PlanError(
                f"--members must be between 0 and {MAX_CLUSTERS - 1}, got {self.members}"
            )
        if not 1 <= self.nodes <= 250:
            raise PlanError(f"--nodes must be between 1 and 250 per cluster, got {self.nodes}")
        if self.overlap and self.members < 2:
            raise PlanError(
                "--overlap makes cluster1 and cluster2 share CIDRs: needs --members >= 2"
            )
        top = self.port_base + PORTS_PER_CLUSTER * (self.members + 1)
        if self.port_base < 1024 or top > 65535:
            raise PlanError(
                f"--port-base {self.port_base} puts ports outside 1024..65535 for "
                f"{self.members + 1} clusters"
            )
        if not 0 <= self.real_nodes <= MAX_REAL_NODES:
            raise PlanError(
                f"--real-nodes must be between 0 and {MAX_REAL_NODES} per cluster, "
                f"got {self.real_nodes}"
            )
        if not ipaddress.ip_address(self.bind_address).is_loopback:
            raise PlanError(f"bind address {self.bind_address} is not a loopback address")


@dataclass(frozen=True)
class NodePlan:
    name: str
    labels: dict[str, str]
    pod_cidr: str
    cpu: int
    memory_gib: int
    max_pods: int = 110
    taints: tuple[dict[str, str], ...] = ()


@dataclass(frozen=True)
class ClusterPlan:
    name: str
    index: int
    role: str  # "host" or "member"
    ports: dict[str, int]
    pod_cidr: str
    service_cidr: str
    region: str
    nodes: tuple[NodePlan, ...] = field(default=())
    #: how many real nodes (:mod:`kosmos.local.nodes`) the cluster has beside its kwok nodes
    real_nodes: int = 0

    @property
    def apiserver_port(self) -> int:
        return self.ports["kube-apiserver"]


def plan(options: Options) -> list[ClusterPlan]:
    """Return the host followed by the members, each with its ports, CIDRs and nodes."""
    options.validate()
    names = [HOST] + [f"cluster{i}" for i in range(1, options.members + 1)]
    clusters = []
    for index, name in enumerate(names):
        # With overlap, cluster2 reuses cluster1's address space (ClusterLink global IPs).
        cidr_index = 1 if options.overlap and index == 2 else index
        pod_cidr = f"10.{10 + cidr_index}.0.0/16"
        region = REGIONS[index % len(REGIONS)]
        base = options.port_base + PORTS_PER_CLUSTER * index
        role = "host" if index == 0 else "member"
        offsets = HOST_PORT_OFFSETS if role == "host" else COMPONENT_PORT_OFFSETS
        clusters.append(
            ClusterPlan(
                name=name,
                index=index,
                role=role,
                ports={c: base + off for c, off in offsets.items()},
                pod_cidr=pod_cidr,
                service_cidr=f"10.{110 + cidr_index}.0.0/16",
                region=region,
                nodes=tuple(_nodes(name, region, pod_cidr, options.nodes, role)),
                real_nodes=options.real_nodes,
            )
        )
    return clusters


def _nodes(cluster: str, region: str, pod_cidr: str, count: int, role: str) -> list[NodePlan]:
    subnets = ipaddress.ip_network(pod_cidr).subnets(new_prefix=24)
    nodes = []
    for j, subnet in zip(range(count), subnets, strict=False):
        name = f"{cluster}-node{j + 1}"
        cpu, memory = NODE_SHAPES[j % len(NODE_SHAPES)]
        labels = {
            KWOK_NODE_KEY: KWOK_NODE_VALUE,
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "node.kubernetes.io/instance-type": f"kwok.c{cpu}m{memory}",
            "topology.kubernetes.io/region": region,
            "topology.kubernetes.io/zone": region + ZONE_SUFFIXES[j % len(ZONE_SUFFIXES)],
        }
        taints: tuple[dict[str, str], ...] = ()
        if role == "host":
            labels[CONTROL_PLANE_ROLE] = ""
            taints = (dict(CONTROL_PLANE_TAINT),)
        nodes.append(NodePlan(name, labels, str(subnet), cpu, memory, taints=taints))
    return nodes


def node_manifest(node: NodePlan, kubelet_version: str) -> dict[str, Any]:
    """A Node object kwok will adopt: capacity, addresses and pod CIDR set up front.

    The InternalIP is loopback because the apiserver dials it for ``kubectl logs/exec``:
    kwok serves those on the node port it advertises, and nothing may leave the machine.
    """
    machine_id = hashlib.md5(node.name.encode(), usedforsecurity=False).hexdigest()
    resources = {
        "cpu": str(node.cpu),
        "memory": f"{node.memory_gib}Gi",
        "pods": str(node.max_pods),
        "ephemeral-storage": "100Gi",
    }
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": node.name,
            "labels": dict(node.labels),
            "annotations": {KWOK_NODE_KEY: KWOK_NODE_VALUE, "node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {
            "podCIDR": node.pod_cidr,
            "podCIDRs": [node.pod_cidr],
            **({"taints": [dict(t) for t in node.taints]} if node.taints else {}),
        },
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": node.name},
            ],
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "osImage": "kwok simulated node",
                "kernelVersion": "kwok",
                "kubeletVersion": kubelet_version,
                "kubeProxyVersion": "",
                "containerRuntimeVersion": "kwok",
                "machineID": machine_id,
                "systemUUID": str(uuid.UUID(machine_id)),
                "bootID": machine_id,
            },
        },
    }


def _taint_id(taint: dict[str, Any]) -> tuple[str, str]:
    return str(taint.get("key", "")), str(taint.get("effect", ""))


def node_drift(node: NodePlan, live: dict[str, Any]) -> dict[str, Any] | None:
    """The merge patch that gives an existing node the plan's labels and taints; None if none.

    ``up`` keeps existing nodes, so a node created by an older plan (say, a host node from
    before the host's nodes were control-plane nodes) is brought to the current plan here.
    Only what the plan says is added or corrected: labels and taints others set stay.
    """
    labels = live.get("metadata", {}).get("labels") or {}
    wrong = {k: v for k, v in node.labels.items() if labels.get(k) != v}
    taints: list[dict[str, Any]] = list(live.get("spec", {}).get("taints") or [])
    have = {_taint_id(t): t for t in taints}
    for want in node.taints:
        current = have.get(_taint_id(want))
        if current is None:
            taints.append(dict(want))
        elif current.get("value", "") != want.get("value", ""):
            taints[taints.index(current)] = dict(want)
    patch: dict[str, Any] = {}
    if wrong:
        patch["metadata"] = {"labels": wrong}
    if taints != list(live.get("spec", {}).get("taints") or []):
        patch["spec"] = {"taints": taints}
    return patch or None
