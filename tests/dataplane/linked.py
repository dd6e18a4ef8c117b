"""The real ClusterLink control plane driving a testbed (``testbed.Topology``).

For each testbed cluster a Cluster is joined to the host with ``kosmosctl join cluster
--enable-link`` -- backed by a real member apiserver of the local environment -- and each
testbed node is a Node in that member (kwok keeps it Ready). From there everything is the
product: the network-manager discovers CIDRs, mirrors the nodes into ClusterNodes and plans
NodeConfigs; one real ``kosmos agent`` process per node namespace reports its NIC, competes
for the gateway role and programs its namespace.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kosmos.api.objects import Obj, condition_of
from tests.dataplane.testbed import ClusterSpec, NodeSpec, Topology, ip, ns_run, sweep
from tests.fixtures.link import LinkEnv
from tests.support import apply, get, wait_for

TESTBED_LABEL = "kosmos.io/testbed"
#: Fast elections and repairs so failover and drift repair are measurable in a test run.
#: They cost: 8 agents renewing leases every ~0.2 s and repairing every 2 s take ~40% of a
#: core, so a benchmark runs its agents with the product's defaults (``PRODUCT_AGENT_FLAGS``).
AGENT_FLAGS = (
    "--repair-period", "2",
    "--gateway-lease-duration", "1",
    "--gateway-renew-deadline", "0.8",
    "--gateway-retry-period", "0.2",
    "--ipsec-backend", "libipsec",
)  # fmt: skip
#: The product's default periods; userspace ESP, as in the tests (this kernel has no ESP).
PRODUCT_AGENT_FLAGS = ("--ipsec-backend", "libipsec")


@dataclass
class LinkedCluster:
    spec: ClusterSpec
    member: str  # the local environment's member cluster that backs it
    options: dict[str, Any] = field(default_factory=dict)  # extra clusterLinkOptions


def node_manifest(node: NodeSpec, tag: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": node.name,
            "labels": {
                "kwok.x-k8s.io/node": "fake",
                "kubernetes.io/hostname": node.name,
                TESTBED_LABEL: tag,
            },
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {
            "podCIDR": node.pod_cidr,
            "podCIDRs": [node.pod_cidr, node.pod_cidr6],
            "taints": [{"key": TESTBED_LABEL, "value": tag, "effect": "NoSchedule"}],
        },
        "status": {
            "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
        },
    }


def two_clusters(
    tag: str,
    *,
    nodes: int = 2,
    overlap: bool = False,
    elastic: int = 0,
    options: dict[str, Any] | None = None,
    base: int = 50,
) -> list[LinkedCluster]:
    """Clusters ``tb<tag>a`` (backed by cluster1) and ``tb<tag>b`` (cluster2).

    Pod CIDRs 10.51.0.0/16 + fd51::/48 and 10.52.0.0/16 + fd52::/48 (``base`` + 1 and + 2:
    testbeds that live at the same time need different ones, since one host plans all of
    their Clusters together) -- or, with ``overlap``,
    10.99.0.0/16 + fd99::/48 in both, mapped to global CIDRs 10.201/16 + fd9a:1::/48 and
    10.202/16 + fd9a:2::/48. The first ``elastic`` nodes of each cluster get an elastic IP.
    """
    clusters = []
    for index, member in ((1, "cluster1"), (2, "cluster2")):
        name = f"tb{tag}{'ab'[index - 1]}"
        v4, v6 = (10, 99) if overlap else (10, base + index)
        specs = [
            NodeSpec(
                name,
                f"tb{tag}-{'ab'[index - 1]}{i}",
                i,
                f"{v4}.{v6}.{i}.0/24",
                f"fd{v6}:0:0:{i}::/64",
                elastic_ip=f"203.0.113.{10 * index + i}" if i <= elastic else "",
            )
            for i in range(1, nodes + 1)
        ]
        link_options: dict[str, Any] = {
            "clusterPodCIDRs": [f"{v4}.{v6}.0.0/16", f"fd{v6}::/48"],
            **(options or {}),
        }
        if overlap:
            link_options["globalCIDRsMap"] = {
                f"{v4}.{v6}.0.0/16": f"10.{200 + index}.0.0/16",
                f"fd{v6}::/48": f"fd9a:{index}::/48",
            }
        if elastic:
            link_options["nodeElasticIPMap"] = {n.name: n.elastic_ip for n in specs if n.elastic_ip}
        clusters.append(LinkedCluster(ClusterSpec(name, index, specs), member, link_options))
    return clusters


def global_ip(address: str, index: int) -> str:
    """The global address of ``address`` in testbed cluster ``index`` (overlap scenario)."""
    ip = ipaddress.ip_address(address)
    real, glob = (
        ("fd99::/48", f"fd9a:{index}::/48")
        if ip.version == 6
        else ("10.99.0.0/16", f"10.{200 + index}.0.0/16")
    )
    offset = int(ip) - int(ipaddress.ip_network(real).network_address)
    return str(ipaddress.ip_address(int(ipaddress.ip_network(glob).network_address) + offset))


@dataclass(frozen=True)
class Layout:
    """What a test module's testbed looks like (its ``BED``; see the ``bed`` fixture)."""

    options: dict[str, Any]  # clusterLinkOptions, networkType included
    nodes: int = 2
    elastic: int = 0
    overlap: bool = False
    firewall: bool = False
    echo: bool = True  # a TCP echo server on port 7000 in every pod
    applied: bool = True  # wait for every NodeConfig applied (else only planned)


class LinkedTestbed:
    def __init__(
        self,
        link: LinkEnv,
        clusters: list[LinkedCluster],
        *,
        firewall: bool = False,
        tag: str | None = None,
        agent_flags: tuple[str, ...] = AGENT_FLAGS,
    ) -> None:
        self.link = link
        self.clusters = clusters
        self.agent_flags = agent_flags
        self.topology = Topology([c.spec for c in clusters], firewall=firewall, tag=tag)
        self.agents: dict[str, subprocess.Popen[bytes]] = {}
        self.logs = Path(os.environ.get("KOSMOS_TESTBED_LOGS", "/tmp")) / (
            f"kosmos-testbed-{self.topology.prefix.rstrip('-')}"
        )
        self.servers: list[subprocess.Popen[bytes]] = []

    @classmethod
    def of(cls, link: LinkEnv, layout: Layout, tag: str) -> LinkedTestbed:
        clusters = two_clusters(
            tag,
            nodes=layout.nodes,
            overlap=layout.overlap,
            elastic=layout.elastic,
            options=dict(layout.options),
        )
        return cls(link, clusters, firewall=layout.firewall, tag=tag)

    # --- lifecycle -------------------------------------------------------------------------

    def up(self) -> None:
        self.topology.build()
        self.logs.mkdir(parents=True, exist_ok=True)
        for cluster in self.clusters:
            self._join(cluster)
        for cluster in self.clusters:
            for node in cluster.spec.nodes:
                self.start_agent(node)
        self.check_agents()

    def check_agents(self) -> None:
        """Fail at once, with its log, when an agent process died."""
        for name, process in self.agents.items():
            if process.poll() is not None:
                log = (self.logs / f"agent-{name}.log").read_text(errors="replace")[-3000:]
                raise AssertionError(f"agent {name} exited ({process.returncode}):\n{log}")

    def down(self) -> None:
        if os.environ.get("KOSMOS_TESTBED_KEEP") == "1":  # leave it all for a post-mortem
            return
        for server in self.servers:
            server.kill()
        for cluster in self.clusters:
            self.leave(cluster.spec.name)
        for name in list(self.agents):
            self.stop_agent(name)
        for cluster in self.clusters:
            self.link.member(cluster.member).run(
                "delete", "nodes", "-l", f"{TESTBED_LABEL}={self.topology.tag}", "--wait=false"
            )
        self.topology.destroy()

    def leave(self, name: str) -> None:
        """Unjoin a testbed cluster (idempotent); its NodeConfigs go first, so agents clean up."""
        if self.link.host.ok("get", "cluster", name):
            self.link.unjoin(name)

    def leftovers(self, node: NodeSpec) -> list[str]:
        """What an agent made that is still in ``node``'s namespace."""
        ns = self.topology.node_ns(node)
        found = [
            line.split()[0] for line in ip(ns, "-br", "link").splitlines() if line.startswith("vx-")
        ]
        found += [
            f"rule: {line}"
            for line in ip(ns, "rule").splitlines() + ip(ns, "-6", "rule").splitlines()
            if "lookup 200" in line
        ]
        found += [
            f"route: {line}"
            for family in ("-4", "-6")
            # a family's table exists only while it holds a route
            for line in ns_run(
                ns, "ip", family, "route", "show", "table", "200", check=False
            ).splitlines()
        ]
        for save in ("iptables-save", "ip6tables-save"):
            found += [
                f"{save}: {line}" for line in ns_run(ns, save).splitlines() if "KOSMOS" in line
            ]
        found += [
            f"ipset {line}"
            for line in ns_run(ns, "ipset", "list", "-n").split()
            if line.startswith("kosmos")
        ]
        return found

    def _join(self, cluster: LinkedCluster) -> None:
        member = self.link.member(cluster.member)
        nodes = [node_manifest(node, self.topology.tag) for node in cluster.spec.nodes]
        apply(member, *nodes, server_side=True)
        self.link.join(
            cluster.spec.name,
            "--network-type",
            cluster.options.pop("networkType", "p2p"),
            kubeconfig_of=cluster.member,
        )
        if cluster.options:
            self.link.patch_link(cluster.spec.name, cluster.options)

    def clusternode(self, node: NodeSpec) -> str:
        return f"{node.cluster}-{node.name}"

    def start_agent(self, node: NodeSpec, *extra: str) -> None:
        log = (self.logs / f"agent-{node.name}.log").open("ab")
        command = [
            sys.executable, "-m", "kosmos.launcher", "agent",
            "--kubeconfig", str(self.link.host_kubeconfig),
            "--cluster", node.cluster,
            "--node", node.name,
            "--netns", self.topology.node_ns(node),
            "--run-dir", str(self.logs / f"run-{node.name}"),
            *self.agent_flags,
            *extra,
        ]  # fmt: skip
        self.agents[node.name] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)

    def stop_agent(self, name: str, *, kill: bool = False) -> None:
        process = self.agents.pop(name, None)
        if process is None:
            return
        if kill:
            process.kill()
        else:
            process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    # --- observation -------------------------------------------------------------------

    def nodeconfig(self, node: NodeSpec) -> Obj | None:
        name = self.clusternode(node)
        if not self.link.host.ok("get", "nodeconfig", name):
            return None
        result: Obj = get(self.link.host, "nodeconfig", name)
        return result

    def planned(self, node: NodeSpec) -> bool:
        self.check_agents()
        return self.nodeconfig(node) is not None

    def applied(self, node: NodeSpec) -> bool:
        self.check_agents()
        config = self.nodeconfig(node)
        if not config:
            return False
        applied = condition_of(config, "Applied") or {}
        generation = config["metadata"].get("generation")
        return applied.get("status") == "True" and applied.get("observedGeneration") == generation

    def gateway(self, cluster: str) -> str | None:
        items = get(self.link.host, "clusternodes", "-l", f"kosmos.io/cluster={cluster}")["items"]
        for item in items:
            if "gateway" in (item["spec"].get("roles") or []):
                return str(item["spec"]["nodeName"])
        return None

    def wait_reachable(self, pairs: Iterable[tuple[NodeSpec, str]], timeout: float = 90) -> None:
        pending = list(pairs)

        def all_reach() -> bool:
            nonlocal pending
            pending = [
                (src, dst) for src, dst in pending if not self.topology.ping(src, dst, count=1)
            ]
            return not pending

        wait_for(
            all_reach,
            timeout,
            lambda: (
                f"pods to reach each other (still failing: {[(s.name, d) for s, d in pending]})"
            ),
            interval=1,
        )

    def echo(self, node: NodeSpec, port: int = 7000) -> None:
        self.servers.append(self.topology.echo_server(node, port))

    def nodes(self) -> list[NodeSpec]:
        return self.topology.nodes()


def sweep_stale_testbeds(link: LinkEnv) -> None:
    """Remove what an interrupted run left: testbed Clusters, member Nodes, namespaces."""
    for item in get(link.host, "clusters").get("items", []):
        name = item["metadata"]["name"]
        if name.startswith("tb") and len(name) == 7:  # tb<4 hex><a|b>
            link.host.run("delete", "cluster", name, "--wait=false")
            agent = f"kosmos-agent-{name}"  # what its join made for its agents in the host
            link.host.run("delete", "clusterrolebinding", agent, "--ignore-not-found")
            link.host.run(
                "delete",
                "serviceaccount,secret,role,rolebinding",
                "-n",
                "kosmos-system",
                "-l",
                f"kosmos.io/cluster={name},app.kubernetes.io/name=kosmos-agent",
                "--ignore-not-found",
            )
    for member in link.env.members:
        link.member(member).run("delete", "nodes", "-l", TESTBED_LABEL, "--wait=false")
    sweep()
