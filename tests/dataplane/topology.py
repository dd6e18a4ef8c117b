"""Network namespaces as the nodes and pods of several clusters, joined by a router.

    pod ns ──veth── node ns ──veth── router ns (one bridge per cluster subnet) ── other clusters

* every cluster has its own underlay subnet (IPv4 192.168.<10i>.0/24, IPv6 fd00:<10i>::/64)
  on a bridge in the router, which routes between the subnets;
* each node has one pod namespace behind it (IPv4 and IPv6 from the node's pod CIDRs) and
  routes to the other nodes' pods of its own cluster over the underlay, as a host-gw CNI
  would;
* nodes with an elastic IP are reached through the router's 1:1 NAT on that address, the
  way a cloud maps a public IP onto a private one;
* ``firewall``: the router forwards between cluster subnets only flows addressed to elastic
  IPs (and their replies), so nodes without one cannot reach another cluster's underlay.

Everything is named with a random tag and removed by ``destroy`` even after a failure.
"""

from __future__ import annotations

import contextlib
import ipaddress
import secrets
import subprocess
from dataclasses import dataclass, field


def run(*argv: str, check: bool = True, input: str | None = None) -> str:
    out = subprocess.run(argv, capture_output=True, text=True, check=False, input=input)
    if check and out.returncode != 0:
        raise RuntimeError(f"`{' '.join(argv)}` failed ({out.returncode}): {out.stderr.strip()}")
    return out.stdout


def ns_run(ns: str, *argv: str, check: bool = True, input: str | None = None) -> str:
    return run("ip", "netns", "exec", ns, *argv, check=check, input=input)


def ip(ns: str, *args: str) -> str:
    return run("ip", "-n", ns, *args)


@dataclass
class NodeSpec:
    cluster: str
    name: str  # the member Node name
    index: int  # 1-based within the cluster
    pod_cidr: str  # IPv4 /24
    pod_cidr6: str  # IPv6 /64
    elastic_ip: str = ""

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

    @property
    def subnet(self) -> str:
        return f"192.168.{10 * self.index}.0/24"

    @property
    def subnet6(self) -> str:
        return f"fd00:{10 * self.index}::/64"

    def underlay(self, node: NodeSpec) -> tuple[str, str]:
        return (
            f"192.168.{10 * self.index}.{10 + node.index}",
            f"fd00:{10 * self.index}::{10 + node.index}",
        )


class Topology:
    def __init__(
        self,
        clusters: list[ClusterSpec],
        *,
        firewall: bool = False,
        tag: str | None = None,
        pod_mtu: int = 1450,
    ) -> None:
        self.clusters = clusters
        self.pod_mtu = pod_mtu  # what a CNI sets when pod traffic may leave through VXLAN
        self.firewall = firewall
        self.tag = tag or secrets.token_hex(2)
        self.router = f"kt{self.tag}-r"
        self.created: list[str] = []

    def node_ns(self, node: NodeSpec) -> str:
        return f"kt{self.tag}-{self.cluster(node.cluster).index}{node.index}"

    def pod_ns(self, node: NodeSpec) -> str:
        return self.node_ns(node) + "p"

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
            with contextlib.suppress(RuntimeError):
                run("ip", "netns", "del", ns, check=False)
        self.created.clear()

    def _netns(self, name: str) -> None:
        run("ip", "netns", "add", name)
        self.created.append(name)
        ip(name, "link", "set", "lo", "up")

    def _cluster(self, cluster: ClusterSpec) -> None:
        bridge = f"br{cluster.index}"
        ip(self.router, "link", "add", bridge, "type", "bridge")
        ip(self.router, "addr", "add", f"192.168.{10 * cluster.index}.1/24", "dev", bridge)
        ip(self.router, "addr", "add", f"fd00:{10 * cluster.index}::1/64", "dev", bridge, "nodad")
        ip(self.router, "link", "set", bridge, "up")
        for node in cluster.nodes:
            self._node(cluster, node, bridge)

    def _node(self, cluster: ClusterSpec, node: NodeSpec, bridge: str) -> None:
        ns, pod = self.node_ns(node), self.pod_ns(node)
        self._netns(ns)
        self._netns(pod)
        port = f"v{cluster.index}{node.index}"
        ip(ns, "link", "add", "eth0", "type", "veth", "peer", "name", port, "netns", self.router)
        ip(self.router, "link", "set", port, "master", bridge, "up")
        v4, v6 = cluster.underlay(node)
        ip(ns, "addr", "add", f"{v4}/24", "dev", "eth0")
        ip(ns, "addr", "add", f"{v6}/64", "dev", "eth0", "nodad")
        ip(ns, "link", "set", "eth0", "up")
        ip(ns, "route", "add", "default", "via", f"192.168.{10 * cluster.index}.1")
        ip(ns, "-6", "route", "add", "default", "via", f"fd00:{10 * cluster.index}::1")
        ip(
            ns,
            "link",
            "add",
            "p0",
            "mtu",
            str(self.pod_mtu),
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "mtu",
            str(self.pod_mtu),
            "netns",
            pod,
        )
        ip(ns, "addr", "add", f"{node.pod_gw}/24", "dev", "p0")
        ip(ns, "addr", "add", f"{node.pod_gw6}/64", "dev", "p0", "nodad")
        ip(ns, "link", "set", "p0", "up")
        ip(pod, "addr", "add", f"{node.pod_ip}/24", "dev", "eth0")
        ip(pod, "addr", "add", f"{node.pod_ip6}/64", "dev", "eth0", "nodad")
        ip(pod, "link", "set", "eth0", "up")
        ip(pod, "route", "add", "default", "via", node.pod_gw)
        ip(pod, "-6", "route", "add", "default", "via", node.pod_gw6)
        for key in ("net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"):
            ns_run(ns, "sysctl", "-q", "-w", key)

    def _offloads(self) -> None:
        """GRO on every veth, as physical NICs have it (veth only aggregates when asked).

        Without it each forwarding hop handles single MTU-sized packets, which on a 2-core
        machine caps multi-hop paths (gateway mode) far below what the kernel path can do.
        """
        for ns in self.created:
            for line in ip(ns, "-br", "link").splitlines():
                dev = line.split()[0].split("@")[0]
                if dev != "lo" and not dev.startswith(("br", "vx")):
                    ns_run(
                        ns,
                        "ethtool",
                        "-K",
                        dev,
                        "gro",
                        "on",
                        "rx-udp-gro-forwarding",
                        "on",
                        check=False,
                    )

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
        if self.firewall:
            rules.append("-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED,DNAT -j ACCEPT")
            for a in self.clusters:
                for b in self.clusters:
                    if a is not b:
                        rules.append(f"-A FORWARD -i br{a.index} -o br{b.index} -j DROP")
        rules.append("COMMIT")
        ns_run(self.router, "iptables-restore", input="\n".join(rules) + "\n")
        if self.firewall:
            ns_run(
                self.router,
                "ip6tables-restore",
                input="*filter\n"
                + "".join(
                    f"-A FORWARD -i br{a.index} -o br{b.index} -j DROP\n"
                    for a in self.clusters
                    for b in self.clusters
                    if a is not b
                )
                + "COMMIT\n",
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
            local = self.underlay(me)[0]
            ip(
                ns,
                "link",
                "add",
                "vx-raw",
                "address",
                mac,
                "mtu",
                "1450",
                "type",
                "vxlan",
                "id",
                str(vni),
                "local",
                local,
                "dev",
                "eth0",
                "dstport",
                str(port),
                "nolearning",
                "noudpcsum",
            )
            ip(ns, "addr", "add", f"{address}/24", "dev", "vx-raw")
            ip(ns, "link", "set", "vx-raw", "up")
            _, _, peer_address, peer_mac = ends[peer.name]
            run(
                "bridge",
                "-n",
                ns,
                "fdb",
                "append",
                peer_mac,
                "dev",
                "vx-raw",
                "dst",
                self.underlay(peer)[0],
            )
            ip(
                ns,
                "neigh",
                "replace",
                peer_address,
                "lladdr",
                peer_mac,
                "dev",
                "vx-raw",
                "nud",
                "permanent",
            )
            ip(
                ns,
                "route",
                "replace",
                peer.pod_cidr,
                "via",
                peer_address,
                "dev",
                "vx-raw",
                "onlink",
            )

    # --- probes ----------------------------------------------------------------------------

    def ping(self, src: NodeSpec, dst: str, *, count: int = 2, timeout: float = 1.0) -> bool:
        out = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                self.pod_ns(src),
                "ping",
                "-c",
                str(count),
                "-W",
                str(timeout),
                "-i",
                "0.2",
                dst,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        return out.returncode == 0

    def tcp(self, src: NodeSpec, dst: str, port: int, *, timeout: float = 2.0) -> bool:
        code = (
            "import socket,sys\n"
            f"s=socket.create_connection(({dst!r},{port}),timeout={timeout})\n"
            "s.sendall(b'ping\\n'); sys.exit(0 if s.recv(16) else 1)\n"
        )
        out = subprocess.run(
            ["ip", "netns", "exec", self.pod_ns(src), "python3", "-c", code],
            capture_output=True,
            text=True,
            check=False,
        )
        return out.returncode == 0

    def echo_server(self, node: NodeSpec, port: int) -> subprocess.Popen[bytes]:
        """A TCP echo server on both families in ``node``'s pod (kill it when done)."""
        code = (
            "import socket,threading\n"
            "s=socket.socket(socket.AF_INET6)\n"
            "s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
            "s.setsockopt(socket.IPPROTO_IPV6,socket.IPV6_V6ONLY,0)\n"
            f"s.bind(('::',{port})); s.listen(64)\n"
            "def serve(c):\n"
            "    with c:\n"
            "        d=c.recv(64)\n"
            "        c.sendall(d or b'x')\n"
            "while True:\n"
            "    c,_=s.accept(); threading.Thread(target=serve,args=(c,),daemon=True).start()\n"
        )
        return subprocess.Popen(["ip", "netns", "exec", self.pod_ns(node), "python3", "-c", code])
