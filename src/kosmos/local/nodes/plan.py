"""Names and addresses of the real nodes and of their cluster networks (pure, no I/O).

Everything a real node is called on the machine (network namespaces, the host's veth, the
cgroup subtree, the cluster network's /24) derives from its cluster's apiserver port. Ports of
two environments that are up at the same time never overlap, so neither do these names, and
the orchestrator's environment and a helper's can run real nodes side by side.

Addresses: cluster networks take /24s from 10.200.0.0 upwards (the local environment's pod
ranges are 10.10-10.99 and its service ranges 10.110-10.199), one per apiserver port block of
ten: the host end is ``.1``, real node ``j`` is ``.10+j``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from kosmos.local.topology import PORTS_PER_CLUSTER, ClusterPlan

#: Real nodes carry this label (kwok adopts only nodes with its own label, so it leaves them be).
REAL_NODE_KEY = "local.kosmos.io/real-node"
#: Members' real nodes take only pods that tolerate this: ClusterTree copies host workloads
#: into members with images no real node has (the sample nginx), and tests of simulated pods
#: expect kwok nodes. The host's real nodes are plain workers, as in a host cluster that runs
#: workloads of its own (a distribution policy can then place pods on host and leaf nodes).
REAL_NODE_TAINT = {"key": REAL_NODE_KEY, "value": "true", "effect": "NoSchedule"}
WORKER_ROLE = "node-role.kubernetes.io/worker"
NETWORK_START = ipaddress.IPv4Address("10.200.0.0")
NODE_ADDRESS_OFFSET = 10
#: real nodes per cluster whose pod /24 is fixed by the environment (``node_pod_cidr``)
SLOTS_PER_BLOCK = 2
BRIDGE = "br0"
HOST_PEER = "host"  # the host veth's end on the bridge


@dataclass(frozen=True)
class NetworkPlan:
    """A cluster's network: a bridge in ``netns``; the host joins through ``host_link``."""

    cluster: str
    apiserver_port: int
    subnet: str
    netns: str
    host_link: str

    @property
    def host_address(self) -> str:
        return str(ipaddress.ip_network(self.subnet)[1])

    @property
    def apiserver(self) -> str:
        """The cluster's apiserver as the network's nodes and pods reach it (the relay)."""
        return f"https://{self.host_address}:{self.apiserver_port}"

    @property
    def prefix(self) -> int:
        return ipaddress.ip_network(self.subnet).prefixlen


@dataclass(frozen=True)
class RealNodePlan:
    name: str
    cluster: str
    role: str  # of its cluster: "host" or "member"
    index: int
    network: NetworkPlan
    apiserver_port: int
    pod_cidr: str  # the cluster's (flannel's Network); the node's /24 comes from kcm
    service_cidr: str
    region: str
    #: the cgroup subtree of every process and container of the node, relative to a hierarchy
    cgroup: str

    @property
    def address(self) -> str:
        subnet = ipaddress.ip_network(self.network.subnet)
        return str(subnet[NODE_ADDRESS_OFFSET + self.index])

    @property
    def netns(self) -> str:
        return f"{self.network.netns.removesuffix('-net')}-{self.name}"

    @property
    def bridge_peer(self) -> str:
        """The node veth's end on the bridge (link names are at most 15 characters)."""
        return f"node{self.index}"

    @property
    def cluster_dns(self) -> str:
        return str(ipaddress.ip_network(self.service_cidr)[10])

    @property
    def labels(self) -> dict[str, str]:
        labels = {REAL_NODE_KEY: "true", "topology.kubernetes.io/region": self.region}
        return labels

    @property
    def taints(self) -> tuple[dict[str, str], ...]:
        return () if self.role == "host" else (dict(REAL_NODE_TAINT),)

    @property
    def node_pod_cidr(self) -> str | None:
        """The /24 this node's pods get, or None: the controller manager picks one.

        Every environment's clusters have the same pod ranges, yet the host's namespace holds
        one route per real node's /24 (the apiserver reaches pods: ``node.host_route``), so
        the /24 of real nodes 1 and 2 comes from the upper half of the range at an offset of
        the apiserver's port block: two environments on one machine never claim the same.
        """
        if self.index > SLOTS_PER_BLOCK:
            return None
        block = self.apiserver_port // PORTS_PER_CLUSTER
        slot = 128 + (block % 64) * SLOTS_PER_BLOCK + self.index - 1
        return str(list(ipaddress.ip_network(self.pod_cidr).subnets(new_prefix=24))[slot])

    @property
    def apiserver(self) -> str:
        """Where processes in the node reach the cluster's apiserver (the relay)."""
        return self.network.apiserver


def network(cluster: ClusterPlan) -> NetworkPlan:
    block = cluster.apiserver_port // PORTS_PER_CLUSTER
    start = NETWORK_START + block * 256
    return NetworkPlan(
        cluster=cluster.name,
        apiserver_port=cluster.apiserver_port,
        subnet=f"{start}/24",
        netns=f"kosmos-{cluster.apiserver_port}-net",
        host_link=f"kosmos{cluster.apiserver_port}",
    )


def real_node(cluster: ClusterPlan, index: int, environment: str) -> RealNodePlan:
    """Real node ``index`` (1-based) of ``cluster``; ``environment`` names its cgroup tree."""
    if not 1 <= index <= 200:
        raise ValueError(f"real node index {index} is outside 1..200")
    name = f"{cluster.name}-real{index}"
    return RealNodePlan(
        name=name,
        cluster=cluster.name,
        role=cluster.role,
        index=index,
        network=network(cluster),
        apiserver_port=cluster.apiserver_port,
        pod_cidr=cluster.pod_cidr,
        service_cidr=cluster.service_cidr,
        region=cluster.region,
        cgroup=f"{environment}/{name}",
    )


def real_nodes(cluster: ClusterPlan, environment: str) -> list[RealNodePlan]:
    return [real_node(cluster, j, environment) for j in range(1, cluster.real_nodes + 1)]


def environment_name(clusters: list[ClusterPlan]) -> str:
    """The cgroup directory of one environment: named after its host's apiserver port."""
    return f"kosmos-{clusters[0].apiserver_port}"


def apiserver_sans(cluster: ClusterPlan) -> list[str]:
    """What the apiserver's certificate must also name for real nodes and their pods: the
    cluster network's host address and the ``kubernetes`` Service's ClusterIP."""
    service_ip = str(ipaddress.ip_network(cluster.service_cidr)[1])
    return [network(cluster).host_address, service_ip]
