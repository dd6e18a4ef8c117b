"""The testbed of the dataplane tier: network namespaces as the nodes and pods of clusters.

    pod ns ──veth── node ns ──veth── switch ns (bridge br<i>) ──veth br<i>── router ns ── ...

* every cluster has its own underlay subnet (IPv4 192.168.<10i>.0/24, IPv6 fd00:<10i>::/64):
  a bridge in the switch namespace joins its nodes, and the router's port on it -- a plain
  veth named ``br<i>`` holding the subnet's ``.1`` -- routes between the subnets;
* each node has a pod namespace behind it for its pod CIDRs (IPv4 and IPv6, the pod at
  ``.10``, the node at ``.1``), and one more IPv4-only pod for each extra pod CIDR; it routes
  to the other nodes' pods of its own cluster over the underlay, as a host-gw CNI would;
* nodes with an elastic IP are reached through the router's 1:1 NAT on that address, the
  way a cloud maps a public IP onto a private one;
* ``firewall``: the router forwards between cluster subnets only flows addressed to elastic
  IPs (and their replies), so nodes without one cannot reach another cluster's underlay.
* ``routed`` (one node per cluster): no switch, the node's ``eth0`` is the router's ``br<i>``
  itself -- the shortest pair there is (``bench/network.py``'s hand-built routed baseline).

Why the bridges are not in the router: a bridge device offers no segmentation offload for
encapsulated packets, so each VXLAN super-packet the router sent through one was cut back to
MTU size (docs/clusterlink.md, "Network benchmark"); veths keep them whole.

Every namespace name starts with :data:`PREFIX`, which carries this process's pid: two runs
never share a name, and :func:`sweep` removes only what a run that is gone left behind.
``destroy`` kills what still runs inside and removes the namespaces, even after a failure.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import secrets
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

#: The start of every namespace name this process makes: ``kt-<pid in hex>-``.
PREFIX = f"kt-{os.getpid():x}-"
_OURS = re.compile(r"kt-([0-9a-f]+)-")


def run(*argv: str, check: bool = True, input: str | None = None, timeout: float = 60) -> str:
    out = subprocess.run(
        argv, capture_output=True, text=True, check=False, input=input, timeout=timeout
    )
    if check and out.returncode != 0:
        raise AssertionError(
            f"`{' '.join(argv)}` failed ({out.returncode}): {out.stdout}{out.stderr.strip()}"
        )
    return out.stdout


def ns_run(ns: str, *argv: str, check: bool = True, input: str | None = None) -> str:
    return run("ip", "netns", "exec", ns, *argv, check=check, input=input)


def ns_ok(ns: str, *argv: str) -> bool:
    """Whether the command, run in the namespace, succeeds (a probe: failing is an answer)."""
    argv = ("ip", "netns", "exec", ns, *argv)
    return subprocess.run(argv, capture_output=True, check=False).returncode == 0


def ip(ns: str, *args: str) -> str:
    return run("ip", "-n", ns, *args)


def processes(ns: str) -> list[int]:
    return [int(pid) for pid in run("ip", "netns", "pids", ns, check=False).split()]


def remove(ns: str) -> None:
    """Kill every process still inside the namespace (by pid), then delete it."""
    for pid in processes(ns):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    run("ip", "netns", "del", ns, check=False)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def sweep() -> list[str]:
    """Remove the namespaces of testbed runs whose process is gone; returns their names."""
    stale = []
    for line in run("ip", "netns", "list", check=False).splitlines():
        ns = line.split()[0] if line.split() else ""
        owner = _OURS.match(ns)
        if owner and not _alive(int(owner.group(1), 16)):
            remove(ns)
            stale.append(ns)
    return stale


@dataclass
class NodeSpec:
    cluster: str
    name: str  # the member Node name
    index: int  # 1-based within the cluster
    pod_cidr: str  # IPv4 /24
    pod_cidr6: str  # IPv6 /64
    elastic_ip: str = ""
    extra_pod_cidrs: tuple[str, ...] = ()  # IPv4 /24s of more pods behind the node

    @property
    def pod_ip(self) -> str:
        return str(ipaddress.ip_network(self.pod_cidr)[10])

    @property
    def pod_ip6(self) -> str:
        return str(ipaddress.ip_network(self.pod_cidr6)[10])

    @property
    def pod_gw(self) -> str:
        return str(ipaddress.ip_network(self.pod_cidr)[1])

    @property
    def pod_gw6(self) -> str:
        return str(ipaddress.ip_network(self.pod_cidr6)[1])


@dataclass
class ClusterSpec:
    name: str
    index: int  # 1-based; picks the underlay subnet
    nodes: list[NodeSpec] = field(default_factory=list)

    def underlay(self, node: NodeSpec) -> tuple[str, str]:
        return (
            f"192.168.{10 * self.index}.{10 + node.index}",
            f"fd00:{10 * self.index}::{10 + node.index}",
        )


def nat_pair() -> list[ClusterSpec]:
    """Two one-node clusters, ``a`` and ``b``, behind 1:1 NAT (build it with ``firewall``).

        pod a 10.11.1.10                                             pod b  10.12.1.10
            |                                                        pod b2 10.12.2.10
        node a 192.168.10.11 --- router (1:1 NAT, forwards EIPs) --- node b 192.168.20.11
            EIP 203.0.113.11                                         EIP 203.0.113.21

    The nodes reach each other through the elastic IPs only, as on a cloud: the layout of a
    tunnel between two gateways. Pods are dual-stack (fd11:1::/64, fd12:1::/64) but for b2.
    """
    a = NodeSpec("a", "a", 1, "10.11.1.0/24", "fd11:1::/64", "203.0.113.11")
    b = NodeSpec("b", "b", 1, "10.12.1.0/24", "fd12:1::/64", "203.0.113.21", ("10.12.2.0/24",))
    return [ClusterSpec("a", 1, [a]), ClusterSpec("b", 2, [b])]


class Topology:
    def __init__(
        self,
        clusters: list[ClusterSpec],
        *,
        firewall: bool = False,
        tag: str | None = None,
        pod_mtu: int = 1450,
        routed: bool = False,
    ) -> None:
        if routed and any(len(c.nodes) != 1 for c in clusters):
            raise ValueError("a routed testbed has exactly one node per cluster")
        self.clusters = clusters
        self.routed = routed
        self.pod_mtu = pod_mtu  # what a CNI sets when pod traffic may leave through VXLAN
        self.firewall = firewall
        self.tag = tag or secrets.token_hex(2)
        self.prefix = f"{PREFIX}{self.tag}-"
        self.router = f"{self.prefix}r"
        self.switch = f"{self.prefix}s"
        self.created: list[str] = []

    def node_ns(self, node: NodeSpec) -> str:
        return f"{self.prefix}{self.cluster(node.cluster).index}{node.index}"

    def pod_ns(self, node: NodeSpec, pod: int = 0) -> str:
        """The namespace of the node's first pod, or of the one on ``extra_pod_cidrs[pod-1]``."""
        return self.node_ns(node) + ("p" if pod == 0 else f"p{pod + 1}")

    def cluster(self, name: str) -> ClusterSpec:
        return next(c for c in self.clusters if c.name == name)

    def nodes(self) -> list[NodeSpec]:
        return [n for c in self.clusters for n in c.nodes]

    def underlay(self, node: NodeSpec) -> tuple[str, str]:
        return self.cluster(node.cluster).underlay(node)

    # --- build / destroy -------------------------------------------------------------------

    def build(self) -> None:
        try:
            self._netns(self.router)
            for key in ("net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"):
                ns_run(self.router, "sysctl", "-q", "-w", key)
            if not self.routed:
                self._netns(self.switch)
                for key in ("iptables", "ip6tables", "arptables"):
                    ns_run(self.switch, "sysctl", "-q", "-w", f"net.bridge.bridge-nf-call-{key}=0",
                           check=False)  # fmt: skip
            for cluster in self.clusters:
                self._cluster(cluster)
            for cluster in self.clusters:
                for node in cluster.nodes:
                    self._cni_routes(cluster, node)
            self._nat_and_firewall()
            self._offloads()
        except BaseException:
            self.destroy()
            raise

    def destroy(self) -> None:
        for ns in reversed(self.created):
            remove(ns)
        self.created.clear()

    def _netns(self, name: str) -> None:
        run("ip", "netns", "add", name)
        self.created.append(name)
        ip(name, "link", "set", "lo", "up")
        # No duplicate address detection: link-local addresses (and their local routes) are
        # there at once, so a snapshot taken now equals one taken seconds later.
        ns_run(name, "sysctl", "-q", "-w", "net.ipv6.conf.default.accept_dad=0")

    def _cluster(self, cluster: ClusterSpec) -> None:
        """The cluster's subnet: the router's port ``br<i>`` and, unless routed, a bridge."""
        port = f"br{cluster.index}"
        if self.routed:
            self._node(cluster, cluster.nodes[0], peer=port, netns=self.router)
        else:
            ip(self.switch, "link", "add", port, "type", "bridge")
            ip(self.switch, "link", "set", port, "up")
            uplink = f"up{cluster.index}"
            ip(self.router, "link", "add", port, "type", "veth", "peer", "name", uplink,
               "netns", self.switch)  # fmt: skip
            ip(self.switch, "link", "set", uplink, "master", port, "up")
        ip(self.router, "addr", "add", f"192.168.{10 * cluster.index}.1/24", "dev", port)
        ip(self.router, "addr", "add", f"fd00:{10 * cluster.index}::1/64", "dev", port, "nodad")
        ip(self.router, "link", "set", port, "up")
        if not self.routed:
            for node in cluster.nodes:
                port = f"v{cluster.index}{node.index}"
                self._node(cluster, node, peer=port, netns=self.switch)
                ip(self.switch, "link", "set", port, "master", f"br{cluster.index}", "up")

    def _node(self, cluster: ClusterSpec, node: NodeSpec, *, peer: str, netns: str) -> None:
        """The node's namespace, its ``eth0`` paired with ``peer`` in ``netns``, its pods."""
        ns = self.node_ns(node)
        self._netns(ns)
        ip(ns, "link", "add", "eth0", "type", "veth", "peer", "name", peer, "netns", netns)
        v4, v6 = cluster.underlay(node)
        ip(ns, "addr", "add", f"{v4}/24", "dev", "eth0")
        ip(ns, "addr", "add", f"{v6}/64", "dev", "eth0", "nodad")
        ip(ns, "link", "set", "eth0", "up")
        ip(ns, "route", "add", "default", "via", f"192.168.{10 * cluster.index}.1")
        ip(ns, "-6", "route", "add", "default", "via", f"fd00:{10 * cluster.index}::1")
        for key in ("net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"):
            ns_run(ns, "sysctl", "-q", "-w", key)
        self._pod(node, 0, node.pod_cidr, node.pod_cidr6)
        for pod, cidr in enumerate(node.extra_pod_cidrs, start=1):
            self._pod(node, pod, cidr, None)

    def _pod(self, node: NodeSpec, pod: int, cidr: str, cidr6: str | None) -> None:
        """A pod namespace behind the node: ``p<pod>`` in the node, ``eth0`` in the pod."""
        ns, pod_ns, dev = self.node_ns(node), self.pod_ns(node, pod), f"p{pod}"
        self._netns(pod_ns)
        mtu = str(self.pod_mtu)
        ip(ns, "link", "add", dev, "mtu", mtu, "type", "veth", "peer", "name", "eth0",
           "mtu", mtu, "netns", pod_ns)  # fmt: skip
        families = [(cidr, ())] + ([(cidr6, ("nodad",))] if cidr6 else [])
        for net, nodad in families:
            network = ipaddress.ip_network(net)
            ip(ns, "addr", "add", f"{network[1]}/{network.prefixlen}", "dev", dev, *nodad)
            ip(pod_ns, "addr", "add", f"{network[10]}/{network.prefixlen}", "dev", "eth0", *nodad)
        ip(ns, "link", "set", dev, "up")
        ip(pod_ns, "link", "set", "eth0", "up")
        ip(pod_ns, "route", "add", "default", "via", str(ipaddress.ip_network(cidr)[1]))
        if cidr6:
            ip(pod_ns, "-6", "route", "add", "default", "via", str(ipaddress.ip_network(cidr6)[1]))

    def _offloads(self) -> None:
        """GRO on every veth, as physical NICs have it (veth only aggregates when asked).

        Without it each forwarding hop handles single MTU-sized packets, which on a 2-core
        machine caps multi-hop paths (gateway mode) far below what the kernel path can do.
        """
        for ns in self.created:
            for link in json.loads(ip(ns, "-d", "-j", "link")):
                if link.get("linkinfo", {}).get("info_kind") == "veth":
                    ns_run(ns, "ethtool", "-K", link["ifname"], "gro", "on",
                           "rx-udp-gro-forwarding", "on", check=False)  # fmt: skip

    def _cni_routes(self, cluster: ClusterSpec, node: NodeSpec) -> None:
        for other in cluster.nodes:
            if other is node:
                continue
            v4, v6 = cluster.underlay(other)
            ip(self.node_ns(node), "route", "add", other.pod_cidr, "via", v4)
            ip(self.node_ns(node), "-6", "route", "add", other.pod_cidr6, "via", v6)

    def _nat_and_firewall(self) -> None:
        rules = ["*nat"]
        for node in self.nodes():
            if node.elastic_ip:
                private = self.underlay(node)[0]
                rules.append(
                    f"-A PREROUTING -d {node.elastic_ip} -j DNAT --to-destination {private}"
                )
                bridge = f"br{self.cluster(node.cluster).index}"
                snat = f"-j SNAT --to-source {node.elastic_ip}"
                rules.append(f"-A POSTROUTING -s {private} ! -o {bridge} {snat}")
        rules += ["COMMIT", "*filter"]
        drops = [
            f"-A FORWARD -i br{a.index} -o br{b.index} -j DROP"
            for a in self.clusters
            for b in self.clusters
            if a is not b and self.firewall
        ]
        if self.firewall:
            rules.append("-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED,DNAT -j ACCEPT")
        rules += [*drops, "COMMIT"]
        ns_run(self.router, "iptables-restore", input="\n".join(rules) + "\n")
        if self.firewall:
            ns_run(
                self.router,
                "ip6tables-restore",
                input="\n".join(["*filter", *drops, "COMMIT"]) + "\n",
            )

    def raw_vxlan(self, a: NodeSpec, b: NodeSpec, *, vni: int = 99, port: int = 4999) -> None:
        """A hand-built VXLAN between two nodes carrying their pods' traffic (the baseline).

        What ClusterLink's p2p plan does for a pair, by hand: one device per node, a static
        FDB and ARP entry for the peer, an onlink route to the peer's pod CIDR.
        """
        ends = {
            a.name: (a, b, "172.31.0.1", "02:00:00:00:99:01"),
            b.name: (b, a, "172.31.0.2", "02:00:00:00:99:02"),
        }
        for me, peer, address, mac in ends.values():
            ns = self.node_ns(me)
            ip(ns, "link", "add", "vx-raw", "address", mac, "mtu", "1450", "type", "vxlan",
               "id", str(vni), "local", self.underlay(me)[0], "dev", "eth0",
               "dstport", str(port), "nolearning", "noudpcsum")  # fmt: skip
            ip(ns, "addr", "add", f"{address}/24", "dev", "vx-raw")
            ip(ns, "link", "set", "vx-raw", "up")
            _, _, peer_address, peer_mac = ends[peer.name]
            run("bridge", "-n", ns, "fdb", "append", peer_mac, "dev", "vx-raw",
                "dst", self.underlay(peer)[0])  # fmt: skip
            ip(ns, "neigh", "replace", peer_address, "lladdr", peer_mac, "dev", "vx-raw",
               "nud", "permanent")  # fmt: skip
            ip(ns, "route", "replace", peer.pod_cidr, "via", peer_address, "dev", "vx-raw",
               "onlink")  # fmt: skip

    # --- probes from a node's pod ------------------------------------------------------------

    def ping(self, src: NodeSpec, dst: str, *, count: int = 2, timeout: float = 1.0) -> bool:
        return ping(self.pod_ns(src), dst, count=count, timeout=timeout, deadline=None)

    def tcp(self, src: NodeSpec, dst: str, port: int, *, timeout: float = 2.0) -> bool:
        return tcp(self.pod_ns(src), dst, port, timeout=timeout)

    def echo_server(self, node: NodeSpec, port: int) -> subprocess.Popen[bytes]:
        return echo_server(self.pod_ns(node), port)


#: What the ``testbed`` fixture gives a test: ``Topology(clusters, **options)``, built.
Build = Callable[..., Topology]


def ping(
    ns: str, dst: str, *, count: int = 2, timeout: float = 1.0, deadline: float | None = 5
) -> bool:
    """``count`` echo replies within ``deadline`` s (pings resent until then); with no
    ``deadline``, ``count`` pings 0.2 s apart of which at least one is answered."""
    argv = ["ping", "-c", str(count), "-W", str(timeout), "-i", "0.2", dst]
    if deadline is not None:
        argv[-1:-1] = ["-w", str(deadline)]
    return ns_ok(ns, *argv)


def tcp(ns: str, dst: str, port: int, *, timeout: float = 2.0) -> bool:
    """A TCP connection to an echo server (:func:`echo_server`) that answers."""
    code = (
        "import socket,sys\n"
        f"s=socket.create_connection(({dst!r},{port}),timeout={timeout})\n"
        "s.sendall(b'ping\\n'); sys.exit(0 if s.recv(16) else 1)\n"
    )
    return ns_ok(ns, sys.executable, "-c", code)


_ECHO_SERVER = """
import socket, threading
s = socket.socket(socket.AF_INET6)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", {port})); s.listen(64)
def serve(c):
    with c:
        d = c.recv(64)
        c.sendall(d or b"x")
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
"""


def echo_server(ns: str, port: int) -> subprocess.Popen[bytes]:
    """A TCP echo server on both families in the namespace (kill it when done)."""
    code = _ECHO_SERVER.format(port=port)
    return subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", code])
