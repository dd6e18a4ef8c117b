"""ClusterLink between real pods: the agents run in the members as ``join --enable-link``
installs them (a DaemonSet of our image), on the real nodes of ``kosmosctl local up``.

Two environments, one after the other (same ports), each with Kosmos not set up and its own
state dir: ``--real-nodes 2`` for p2p, gateway (over vx-local and with direct routing),
unjoin and IPsec between elastic IPs,
``--real-nodes 1 --overlap`` for global IPs. Each installs the CRDs, runs the
network-manager as a local process and joins both members with ClusterLink only. The members' real
nodes are on two cluster networks joined by the local environment's underlay; the agents
find flannel's pod CIDR, take the node's ``eth0`` as tunnel NIC and elect one real node as
their cluster's gateway (the kwok nodes' agent pods are not real and never report). Pods are
bound to real nodes by name; in gateway mode to the node that is not the gateway, so traffic
takes the hop to it.

UDP: busybox's ``nc`` has no UDP mode, so the UDP server and client run ``python3`` from
the Kosmos image (imported on every real node).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from kosmos.local import components
from kosmos.local.images import HTTP_REF, KOSMOS_REF, SHELL_REF
from kosmos.local.kubectl import Kubectl, KubectlError
from kosmos.local.nodes.network import BRIDGE_UPLINK
from kosmos.local.nodes.plan import REAL_NODE_KEY
from kosmos.local.nodes.plan import network as network_of
from kosmos.local.topology import Options, plan
from tests.dataplane.probes import Capture, is_ike_or_esp
from tests.dataplane.tunnels import master_key_forms
from tests.e2e.conftest import PORT_BASE, ContextKubectl, exports, kosmosctl
from tests.fixtures.realpods import real_pod
from tests.support import apply, get, wait_for

#: beside the e2e tier's shared environment (PORT_BASE .. +29), never on it
LINK_PORT_BASE = PORT_BASE + 50
ROOT = Path(__file__).parents[2]
REPOSITORY = "docker.io/kosmos"
UDP_PORT = 9000
AGENT_SELECTOR = "app.kubernetes.io/name=kosmos-agent"
#: the agent's --run-dir default (kosmos.clusterlink.agent.app)
AGENT_RUN_DIR = "/var/lib/kosmos-agent"
#: cluster -> the global CIDR other clusters see its pod CIDR as (overlap scenario)
GLOBAL = {"cluster1": "10.71.0.0/16", "cluster2": "10.72.0.0/16"}
UDP_SERVER = (
    "import socket, os\n"
    "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    f"s.bind(('0.0.0.0', {UDP_PORT}))\n"
    "while True:\n"
    "    data, peer = s.recvfrom(2048)\n"
    "    s.sendto(b'udp ' + os.environ['HOSTNAME'].encode() + b' ' + data, peer)\n"
)
UDP_CLIENT = (
    "import socket, sys\n"
    "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "s.settimeout(2)\n"
    f"s.sendto(b'ping', (sys.argv[1], {UDP_PORT}))\n"
    "print(s.recvfrom(2048)[0].decode())\n"
)


@dataclass
class LinkedReal:
    env: dict[str, str]
    kubeconfig: Path
    kubectl_binary: Path
    options: Options
    manager_log: Path
    #: takes the environment down now rather than at the end of the module
    close: Callable[[], None] = lambda: None

    def kubectl(self, context: str) -> Kubectl:
        return ContextKubectl(self.kubectl_binary, self.kubeconfig, context)

    def kosmosctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return kosmosctl(self.env, *args)

    def nodes(self, cluster: str) -> list[str]:
        out = self.kubectl(cluster).run("get", "nodes", "-l", REAL_NODE_KEY, "-o", "name")
        return sorted(n.removeprefix("node/") for n in out.split())

    def netns(self, cluster: str) -> list[str]:
        port = next(c.apiserver_port for c in plan(self.options) if c.name == cluster)
        return [f"kosmos-{port}-{node}" for node in self.nodes(cluster)]

    def gateway(self, cluster: str) -> str | None:
        """The member node holding its cluster's gateway role (from the ClusterNodes)."""
        items = get(self.kubectl("host"), "clusternodes", "-l", f"kosmos.io/cluster={cluster}")
        for item in items["items"]:
            if "gateway" in (item.get("spec") or {}).get("roles", []):
                return str(item["metadata"]["name"]).removeprefix(f"{cluster}-")
        return None

    def placement(self, cluster: str, network_type: str) -> str:
        """Where a test pod goes: in gateway mode a real node that is not the gateway (its
        traffic takes the hop to the gateway), in p2p mode the first real node."""
        nodes = self.nodes(cluster)
        if network_type != "gateway" or len(nodes) < 2:
            return nodes[0]
        gateway = wait_for(lambda: self.gateway(cluster), 60, f"{cluster}'s gateway")
        return next(n for n in nodes if n != gateway)

    def join(self, cluster: str, network_type: str, *extra: str) -> None:
        host = plan(self.options)[0]
        relay = network_of(host).apiserver
        self.kosmosctl(
            "--kubeconfig", str(self.state_kubeconfig("host")),
            "join", "cluster", "--name", cluster,
            "--kubeconfig", str(self.state_kubeconfig(cluster)),
            "--enable-link", "--cni", "flannel", "--ip-family", "ipv4",
            "--network-type", network_type, "--image-repository", REPOSITORY,
            "--link-apiserver", relay, "--wait", "0", *extra,
        )  # fmt: skip

    def state_kubeconfig(self, cluster: str) -> Path:
        return self.kubeconfig.parent / f"{cluster}-kubeconfig"

    def patch_link(self, cluster: str, options: dict[str, Any]) -> None:
        body = json.dumps({"spec": {"clusterLinkOptions": options}})
        self.kubectl("host").run("patch", "cluster", cluster, "--type", "merge", "-p", body)

    def wait_applied(self, clusters: list[str]) -> None:
        """Every real node's NodeConfig exists, is current and says the kernel matches it."""
        host = self.kubectl("host")
        for cluster in clusters:
            for node in self.nodes(cluster):
                name = f"{cluster}-{node}"
                wait_for(lambda n=name: _applied(host, n), 90, f"NodeConfig {name} applied")


def _applied(host: Kubectl, name: str) -> bool:
    try:
        obj = get(host, "nodeconfig", name)
    except KubectlError:
        return False
    generation = obj["metadata"].get("generation")
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition["type"] == "Applied":
            current = condition.get("observedGeneration") == generation
            return current and condition["status"] == "True"
    return False


def _bring_up(tmp: Path, options: Options) -> Iterator[LinkedReal]:
    """The environment, the CRDs, a network-manager process; both members linked by the test."""
    state = tmp / "local"
    env = dict(os.environ, KOSMOS_LOCAL_DIR=str(state))
    args = ["--port-base", str(options.port_base), "--real-nodes", str(options.real_nodes),
            "--without-kosmos"]  # fmt: skip
    manager: subprocess.Popen[bytes] | None = None
    try:  # a failing `up` is taken down too
        up = kosmosctl(env, "local", "up", *args, *(["--overlap"] if options.overlap else []))
        found = exports(up.stdout)
        linked = LinkedReal(
            env,
            Path(found["KUBECONFIG"]),
            Path(found["PATH"].split(":")[0]) / "kubectl",
            options,
            tmp / "network-manager.log",
        )
        host = linked.kubectl("host")
        host.run("apply", "--server-side", "-f", str(ROOT / "deploy" / "crds"))
        host.run("create", "namespace", "kosmos-system")
        ports = components.Ports.for_base(options.port_base)
        command = components.network_manager_command(linked.state_kubeconfig("host"), ports)
        with linked.manager_log.open("wb") as log:
            manager = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        yield linked
    finally:
        if manager is not None:
            manager.terminate()
            manager.wait(30)
        down = kosmosctl(env, "local", "down", check=False)
        if down.returncode != 0:  # once seen leaving the apiservers up: retry, then say why
            print(f"local down failed, retrying:\n{down.stdout}\n{down.stderr}")
            kosmosctl(env, "local", "down")


@pytest.fixture(scope="module")
def linked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LinkedReal]:
    # two real nodes per cluster: in gateway mode the pods run on the node that is not the
    # gateway, in p2p mode every node has a tunnel to every node of the other cluster
    options = Options(port_base=LINK_PORT_BASE, real_nodes=2)
    with contextlib.ExitStack() as stack:
        env = stack.enter_context(
            contextlib.contextmanager(_bring_up)(tmp_path_factory.mktemp("link-real"), options)
        )
        env.close = stack.close  # the overlap scenario takes the ports (and the CPU) over
        yield env


def _service(name: str, port: int, target: int, protocol: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "selector": {"app": name},
            "ports": [{"port": port, "targetPort": target, "protocol": protocol}],
        },
    }


@dataclass(frozen=True)
class Servers:
    http_ip: str
    http_cluster_ip: str
    udp_ip: str
    udp_cluster_ip: str


def _servers(kubectl: Kubectl, node: str, tag: str) -> Servers:
    """An HTTP pod and a UDP echo pod on ``node``, each behind a ClusterIP; names end in
    ``-<tag>`` (pods cannot move: each scenario has its own)."""
    http, udp = f"http-{tag}", f"udp-{tag}"
    apply(
        kubectl,
        real_pod(http, node, HTTP_REF),
        _service(http, 80, 8080, "TCP"),
        real_pod(udp, node, KOSMOS_REF, ["python3", "-u", "-c", UDP_SERVER]),
        _service(udp, UDP_PORT, UDP_PORT, "UDP"),
    )
    kubectl.run("wait", "--for=condition=Ready", f"pod/{http}", f"pod/{udp}", "--timeout=60s")
    return Servers(
        get(kubectl, "pod", http)["status"]["podIP"],
        get(kubectl, "service", http)["spec"]["clusterIP"],
        get(kubectl, "pod", udp)["status"]["podIP"],
        get(kubectl, "service", udp)["spec"]["clusterIP"],
    )


@dataclass(frozen=True)
class Client:
    """A busybox pod (HTTP) and a python pod (UDP) on one node."""

    kubectl: Kubectl
    tag: str

    def http(self, url: str) -> str:
        # busybox wget -T crashes (static busybox): the timeout comes from `timeout`
        argv = ["timeout", "3", "wget", "-qO-", url]
        return self.kubectl.run("exec", f"shell-{self.tag}", "--", *argv, timeout=20)

    def udp(self, ip: str) -> str:
        argv = ["python3", "-c", UDP_CLIENT, ip]
        return self.kubectl.run("exec", f"python-{self.tag}", "--", *argv, timeout=20)

    def reaches(self, http_url: str, udp_ip: str) -> tuple[str, str]:
        """What the HTTP server and the UDP echo answer (retried: routes converge)."""
        answer = wait_for(lambda: self.http(http_url), 60, f"HTTP {http_url}",
                          ignoring=(KubectlError,))  # fmt: skip
        echo = wait_for(lambda: self.udp(udp_ip), 60, f"UDP {udp_ip}", ignoring=(KubectlError,))
        return answer.strip(), echo.strip()


def _client(kubectl: Kubectl, node: str, tag: str) -> Client:
    shell, python = f"shell-{tag}", f"python-{tag}"
    apply(
        kubectl,
        real_pod(shell, node, SHELL_REF, ["sleep", "3600"]),
        real_pod(python, node, KOSMOS_REF, ["sleep", "3600"]),
    )
    kubectl.run("wait", "--for=condition=Ready", f"pod/{shell}", f"pod/{python}",
                "--timeout=60s")  # fmt: skip
    return Client(kubectl, tag)


#: scenario -> (networkType, directRouting)
SCENARIOS = {"p2p": ("p2p", False), "gateway": ("gateway", False), "direct": ("gateway", True)}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_a_pod_reaches_pods_and_services_of_the_other_cluster(
    linked: LinkedReal, scenario: str
) -> None:
    network_type, direct = SCENARIOS[scenario]
    for cluster in ("cluster1", "cluster2"):
        if linked.kubectl("host").ok("get", "cluster", cluster):
            linked.patch_link(cluster, {"networkType": network_type, "directRouting": direct})
        else:
            linked.join(cluster, network_type, *(["--direct-routing"] if direct else []))
    linked.wait_applied(["cluster1", "cluster2"])
    tag = scenario
    placed = linked.placement("cluster1", network_type)
    servers = _servers(linked.kubectl("cluster2"), linked.placement("cluster2", network_type), tag)
    client = _client(linked.kubectl("cluster1"), placed, tag)
    expected = (f"http-{tag}", f"udp udp-{tag} ping")
    assert client.reaches(f"http://{servers.http_ip}:8080/", servers.udp_ip) == expected
    by_service = client.reaches(f"http://{servers.http_cluster_ip}/", servers.udp_cluster_ip)
    assert by_service == expected
    if direct:  # the internal node sent it to its gateway's node address, not over vx-local
        netns = linked.netns("cluster1")[linked.nodes("cluster1").index(placed)]
        gateway = _internal_ip(linked.kubectl("cluster1"), linked.gateway("cluster1") or "")
        routes = subprocess.run(["ip", "-n", netns, "route", "show", "table", "200"],
                                capture_output=True, text=True, check=True).stdout  # fmt: skip
        assert f"via {gateway} dev eth0" in routes and "vx-local" not in routes, routes


def _link_state_samples(linked: LinkedReal) -> dict[str, str]:
    """``kosmos_clusterlink_node_link_state`` as the network-manager serves it: node -> the
    state whose sample is 1."""
    port = components.Ports.for_base(linked.options.port_base).network_health
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    current = {}
    for family in text_string_to_metric_families(text):
        if family.name == "kosmos_clusterlink_node_link_state":
            for sample in family.samples:
                if sample.value == 1:
                    current[sample.labels["node"]] = sample.labels["state"]
    return current


def test_the_network_manager_serves_each_real_nodes_link_state(linked: LinkedReal) -> None:
    """The dashboard's link state per node: in_sync once each node's agent applied its plan."""
    for cluster in ("cluster1", "cluster2"):
        if not linked.kubectl("host").ok("get", "cluster", cluster):
            linked.join(cluster, "p2p")
    linked.wait_applied(["cluster1", "cluster2"])
    real = {f"{c}-{n}" for c in ("cluster1", "cluster2") for n in linked.nodes(c)}
    states = _link_state_samples(linked)
    assert {name: states.get(name) for name in real} == dict.fromkeys(real, "in_sync"), states


def _link_state(netns: str) -> dict[str, Any]:
    """What ClusterLink leaves in a node's kernel: its devices, chains, ipsets and the routes
    of its table (an internal node under direct routing has routes over its NIC and no
    device)."""

    def run(*argv: str, check: bool = True) -> str:
        return subprocess.run(
            ["ip", "netns", "exec", netns, *argv], capture_output=True, text=True, check=check
        ).stdout

    links = [w.split(":")[1].strip().split("@")[0] for w in run("ip", "-o", "link").splitlines()]
    return {
        "links": [name for name in links if name.startswith("vx-")],
        "chains": [line for line in run("iptables-save").splitlines() if "KOSMOS" in line],
        "ipsets": [name for name in run("ipset", "list", "-n").split() if "kosmos" in name],
        # a family's table exists only while it holds a route: no check
        "routes": [
            line
            for family in ("-4", "-6")
            for line in run("ip", family, "route", "show", "table", "200", check=False).splitlines()
        ],
    }


def test_unjoin_leaves_no_link_state_on_the_nodes(linked: LinkedReal) -> None:
    for cluster in ("cluster1", "cluster2"):
        if not linked.kubectl("host").ok("get", "cluster", cluster):
            linked.join(cluster, "p2p")
    linked.wait_applied(["cluster1", "cluster2"])
    netns = {n: c for c in ("cluster1", "cluster2") for n in linked.netns(c)}
    assert all(_link_state(n)["routes"] for n in netns)
    for cluster in ("cluster1", "cluster2"):
        linked.kosmosctl("--kubeconfig", str(linked.state_kubeconfig("host")),
                         "unjoin", "cluster", "--name", cluster, "--wait", "60")  # fmt: skip
        lease = f"clusterlink-gateway-{cluster}"
        assert not linked.kubectl("host").ok("get", "lease", "-n", "kosmos-system", lease)
    empty = {"links": [], "chains": [], "ipsets": [], "routes": []}
    for name, cluster in netns.items():
        wait_for(lambda n=name: _link_state(n) == empty, 30, f"{cluster}'s node {name} clean",
                 interval=1)  # fmt: skip


# --- docs/tutorials/ipsec-network.md -------------------------------------------------------


def _internal_ip(kubectl: Kubectl, node: str) -> str:
    path = '{.status.addresses[?(@.type=="InternalIP")].address}'
    return str(kubectl.run("get", "node", node, "-o", f"jsonpath={path}")).split()[0]


def _ipsec_tunnels(host: Kubectl, name: str) -> list[dict[str, Any]]:
    try:
        spec = get(host, "nodeconfig", name).get("spec") or {}
    except KubectlError:
        return []
    return [t for t in spec.get("tunnels") or [] if t.get("type") == "ipsec"]


def _sas(kubectl: Kubectl, node: str) -> str:
    """``swanctl --list-sas`` in the agent pod of ``node``, as the tutorial's debugging step."""
    pods = kubectl.run("get", "pods", "-n", "kosmos-system", "-l", AGENT_SELECTOR,
                       "--field-selector", f"spec.nodeName={node}", "-o", "name")  # fmt: skip
    argv = ["swanctl", "--list-sas", "--uri", f"unix://{AGENT_RUN_DIR}/ipsec/charon.vici"]
    return str(kubectl.run("exec", "-n", "kosmos-system", pods.split()[0], "--", *argv))


def test_gateways_with_elastic_ips_carry_the_clusters_pod_traffic_over_ipsec(
    linked: LinkedReal, tmp_path: Path
) -> None:
    """docs/tutorials/ipsec-network.md on real nodes, with the agents ``join`` installs.

    The environment has no public addresses: each cluster's first real node names its own
    underlay address as its elastic IP, which is all the tutorial's steps need. The agents
    run with their default ``--ipsec-backend auto``; this kernel has no ESP, so they take
    libipsec by themselves.
    """
    host = linked.kubectl("host")
    elastic: dict[str, tuple[str, str]] = {}
    for cluster in ("cluster1", "cluster2"):
        node = linked.nodes(cluster)[0]
        ip = _internal_ip(linked.kubectl(cluster), node)
        elastic[cluster] = (node, ip)
        if host.ok("get", "cluster", cluster):
            options = {"networkType": "gateway", "directRouting": False}
            linked.patch_link(cluster, {**options, "nodeElasticIPMap": {node: ip}})
        else:
            linked.join(cluster, "gateway", "--node-elastic-ip", f"{node}={ip}")
    (gw1, ip1), ip2 = elastic["cluster1"], elastic["cluster2"][1]
    # 1. only the nodes with elastic IPs compete for the gateways
    for cluster, (node, _) in elastic.items():
        wait_for(lambda c=cluster, n=node: linked.gateway(c) == n, 90, f"{cluster}-{node} gateway")
    # 2. an IPsec tunnel between them instead of a VXLAN route
    tunnels = wait_for(lambda: _ipsec_tunnels(host, f"cluster1-{gw1}"), 60, "an IPsec tunnel")
    assert [t["remoteAddress"] for t in tunnels] == [ip2], tunnels
    assert tunnels[0]["keySecretRef"]["name"] == "clusterlink-tunnel-key"
    routes = get(host, "nodeconfig", f"cluster1-{gw1}")["spec"].get("routes") or []
    assert not [r for r in routes if r["dev"] == "vx-bridge"], routes
    # 3. the key: a Secret of the host, in no object, Event or log
    secret = get(host, "secret", "-n", "kosmos-system", "clusterlink-tunnel-key")
    linked.wait_applied(["cluster1", "cluster2"])
    # 4. traffic: pods reach pods (internal nodes through their gateways); what leaves
    # cluster1's network for the other cluster is IKE and ESP between the elastic IPs and
    # nothing in the clear. cluster1's network is a bridge whose port "wan" leads to the
    # underlay's router: only what leaves or enters the network crosses it (a gateway's
    # decrypted packets to its own nodes do not).
    servers = _servers(linked.kubectl("cluster2"), linked.placement("cluster2", "gateway"), "ips")
    client = _client(linked.kubectl("cluster1"), linked.placement("cluster1", "gateway"), "ips")
    uplink = network_of(next(c for c in plan(linked.options) if c.name == "cluster1"))
    capture = Capture(uplink.netns, tmp_path / "uplink.pcap", interface=BRIDGE_UPLINK)
    try:
        answers = client.reaches(f"http://{servers.http_ip}:8080/", servers.udp_ip)
        for _ in range(5):
            client.http(f"http://{servers.http_ip}:8080/")
    finally:
        time.sleep(0.5)
        capture.stop()
    assert answers == ("http-ips", "udp udp-ips ping")
    lines = capture.lines()
    others = {_internal_ip(linked.kubectl("cluster2"), n) for n in linked.nodes("cluster2")}
    tunnel = [line for line in lines if ip1 in line and ip2 in line and is_ike_or_esp(line)]
    plain = [
        line
        for line in lines
        if line not in tunnel
        and any(needle in line for needle in (*others, servers.http_ip, servers.udp_ip))
    ]
    print(f"between the clusters: {len(lines)} packets, {len(tunnel)} IKE/ESP, {len(plain)} clear")
    assert len(tunnel) > 10, f"ESP/NAT-T between {ip1} and {ip2}: {len(tunnel)} packets"
    assert not plain, "in the clear between the clusters:\n" + "\n".join(plain[:10])
    sas = _sas(linked.kubectl("cluster1"), gw1)
    assert "ESTABLISHED" in sas and "INSTALLED" in sas, sas
    _assert_key_nowhere(linked, secret)


def _assert_key_nowhere(linked: LinkedReal, secret: dict[str, Any]) -> None:
    needles = master_key_forms(secret)
    host = linked.kubectl("host")
    haystacks = {
        kind: host.run("get", kind, "-o", "json")
        for kind in ("nodeconfigs", "clusternodes", "clusters")
    }
    haystacks["network-manager log"] = linked.manager_log.read_text(errors="replace")
    for context in ("host", "cluster1", "cluster2"):
        kubectl = linked.kubectl(context)
        haystacks[f"{context} Events"] = kubectl.run("get", "events", "-A", "-o", "json")
        if context != "host":
            haystacks[f"{context} agent logs"] = kubectl.run(
                "logs", "-n", "kosmos-system", "-l", AGENT_SELECTOR, "--tail=-1", "--prefix"
            )
    for where, text in haystacks.items():
        assert not [n for n in needles if n in text], f"the tunnel master key appears in {where}"


@pytest.fixture(scope="module")
def overlapping(
    linked: LinkedReal, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LinkedReal]:
    """cluster1 and cluster2 with the same CIDRs (after the first environment went down)."""
    linked.close()  # one environment with real nodes at a time: same ports, 2 cores
    options = Options(port_base=LINK_PORT_BASE, real_nodes=1, overlap=True)
    yield from _bring_up(tmp_path_factory.mktemp("link-overlap"), options)


def _global(ip: str, cluster: str) -> str:
    """The address ``ip`` of ``cluster`` has for the others (its global CIDR, same offset)."""
    real = next(c.pod_cidr for c in plan(Options(overlap=True)) if c.name == cluster)
    offset = int(ipaddress.ip_address(ip)) - int(ipaddress.ip_network(real).network_address)
    return str(ipaddress.ip_network(GLOBAL[cluster]).network_address + offset)


def test_overlapping_clusters_reach_each_other_through_global_ips(
    overlapping: LinkedReal,
) -> None:
    for cluster in ("cluster1", "cluster2"):
        overlapping.join(cluster, "p2p")
        real = next(c.pod_cidr for c in plan(overlapping.options) if c.name == cluster)
        overlapping.patch_link(cluster, {"globalCIDRsMap": {real: GLOBAL[cluster]}})
    overlapping.wait_applied(["cluster1", "cluster2"])
    servers = _servers(overlapping.kubectl("cluster2"), overlapping.nodes("cluster2")[0], "o")
    client = _client(overlapping.kubectl("cluster1"), overlapping.nodes("cluster1")[0], "o")
    http_ip, udp_ip = _global(servers.http_ip, "cluster2"), _global(servers.udp_ip, "cluster2")
    assert client.reaches(f"http://{http_ip}:8080/", udp_ip) == ("http-o", "udp udp-o ping")
