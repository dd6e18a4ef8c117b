"""The network bench's rows between real pods, with the agents in the members' clusters.

cluster1 and cluster2 are joined with ClusterLink as a user would (``kosmosctl join
--enable-link``: the agent DaemonSet of our image, running on each member's real node) and
one pod on each member's real node measures against the other. The baseline is the underlay
between the same two nodes (node network namespace to node network namespace, through the
local environment's router), measured in the same rounds; the order alternates every round
so a drift in machine load hits both alike. Each row reports the median and the spread
(min..max) of its rounds.

iperf3 and ping are the host's, run inside the pod's network namespace (``nsenter -t <pid>
-n``; the pid is the container's task in the node's containerd), so the pod image needs no
tools.
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

from kosmos.api import names
from kosmos.local.images import SHELL_REF
from kosmos.local.nodes import layout
from kosmos.local.nodes.plan import REAL_NODE_KEY
from kosmos.local.nodes.plan import network as network_of
from tests.fixtures.link import LinkEnv
from tests.support import apply, get, wait_for

MEMBERS = ("cluster1", "cluster2")
POD = "bench-net"
IMAGE = SHELL_REF
IPERF_PORT = 5212

Sample = tuple[float, float]  # (Mbit/s, RTT ms)


@dataclass(frozen=True)
class Row:
    name: str
    mbit_s: list[float]
    rtt_ms: list[float]


def _in(prefix: list[str], *argv: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, *argv], capture_output=True, text=True, check=check)


def iperf(client: list[str], server: list[str], address: str, seconds: float) -> float:
    """One TCP stream from ``client`` to ``address`` (served in ``server``), in Mbit/s."""
    daemon = subprocess.Popen(
        [*server, "iperf3", "-s", "-1", "-p", str(IPERF_PORT)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(50):
            out = _in(client, "iperf3", "-c", address, "-p", str(IPERF_PORT), "-t", str(seconds),
                      "-J")  # fmt: skip
            result = json.loads(out.stdout or "{}")
            if out.returncode == 0 and "sum_received" in result.get("end", {}):
                return float(result["end"]["sum_received"]["bits_per_second"]) / 1e6
            time.sleep(0.1)  # the server was not listening yet
        raise RuntimeError(f"iperf3 to {address} failed: {out.stdout[-300:]}{out.stderr}")
    finally:
        daemon.kill()
        daemon.wait()


def ping(client: list[str], address: str) -> float:
    out = _in(client, "ping", "-q", "-c", "50", "-i", "0.01", "-W", "1", address).stdout
    match = re.search(r"= [\d.]+/([\d.]+)/", out)
    if not match:
        raise RuntimeError(f"ping {address} failed: {out[-300:]}")
    return float(match.group(1))


def _task_pid(node: str, container_id: str) -> int:
    """The host pid of a container's task, from the node's containerd."""
    socket = layout.NodeDirs(node).containerd_socket
    out = subprocess.run(
        ["ctr", "-a", str(socket), "-n", "k8s.io", "tasks", "ls"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    for line in out.splitlines():
        words = line.split()
        if words and words[0] == container_id:
            return int(words[1])
    raise RuntimeError(f"no task {container_id} in {node}'s containerd")


class RealPods:
    """Both members linked (agents in-cluster), one pod on each member's real node."""

    def __init__(self, link: LinkEnv) -> None:
        self.link = link
        self.nodes = {m: self._real_node(m) for m in MEMBERS}

    def _real_node(self, member: str) -> str:
        out = self.link.member(member).run("get", "nodes", "-l", REAL_NODE_KEY, "-o", "name")
        if not out.split():
            raise SystemExit(f"--real-pods: {member} has no real node (`local up --real-nodes 1`)")
        return out.split()[0].removeprefix("node/")

    def up(self) -> None:
        host = self.link.env.plan(self.link.env.host)
        relay = network_of(host).apiserver
        for member in MEMBERS:
            self.link.join(member, "--cni", "flannel", "--ip-family", "ipv4",
                           "--network-type", "p2p", "--image-repository", "docker.io/kosmos",
                           "--link-apiserver", relay)  # fmt: skip
            pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": POD},
                "spec": {
                    "nodeName": self.nodes[member],
                    "tolerations": [{"operator": "Exists"}],
                    "terminationGracePeriodSeconds": 0,
                    "containers": [
                        {
                            "name": "main",
                            "image": IMAGE,
                            "imagePullPolicy": "Never",
                            "command": ["sleep", "86400"],
                        }
                    ],
                },
            }
            apply(self.link.member(member), pod)
        for member in MEMBERS:
            self.link.member(member).run("wait", "--for=condition=Ready", f"pod/{POD}",
                                         "--timeout=60s")  # fmt: skip

    def down(self) -> None:
        for member in MEMBERS:
            self.link.member(member).run("delete", "pod", POD, "--ignore-not-found", "--wait=false")
            if self.link.host.ok("get", "cluster", member):
                self.link.unjoin(member)

    def exclude(self, undo: bool = False) -> None:
        """Keep the real nodes out of ClusterLink (the testbed's Clusters are backed by the
        same members: their agent DaemonSets would run on the real nodes too)."""
        label = f"{names.LABEL_EXCLUDE}-" if undo else f"{names.LABEL_EXCLUDE}=true"
        for member, node in self.nodes.items():
            self.link.member(member).run("label", "node", node, label, "--overwrite")

    def applied(self) -> None:
        def current(name: str) -> bool:
            if not self.link.host.ok("get", "nodeconfig", name):
                return False
            obj = get(self.link.host, "nodeconfig", name)
            conditions = (obj.get("status") or {}).get("conditions") or []
            ok = [c for c in conditions if c["type"] == "Applied" and c["status"] == "True"]
            return bool(ok) and ok[0].get("observedGeneration") == obj["metadata"]["generation"]

        for member, node in self.nodes.items():
            wait_for(lambda n=f"{member}-{node}": current(n), 120, f"{member}'s NodeConfig")

    def pod(self, member: str) -> tuple[list[str], str]:
        """(command prefix entering the pod's network namespace, the pod's IP)."""
        obj = get(self.link.member(member), "pod", POD)
        container = obj["status"]["containerStatuses"][0]["containerID"].split("://", 1)[1]
        pid = _task_pid(self.nodes[member], container)
        return ["nsenter", "-t", str(pid), "-n"], obj["status"]["podIP"]

    def node(self, member: str) -> tuple[list[str], str]:
        plan = layout.load(self.nodes[member])
        if plan is None:
            raise RuntimeError(f"{self.nodes[member]}: no node.json")
        return ["ip", "netns", "exec", plan.netns], plan.address

    def switch(self, network_type: str) -> None:
        for member in MEMBERS:
            self.link.patch_link(member, {"networkType": network_type})
        want = "vx-local" if network_type == "gateway" else "vx-bridge"
        client, _ = self.node(MEMBERS[0])
        wait_for(lambda: want in _in(client, "ip", "link").stdout, 60, f"{network_type} planned")


def measure(
    pods: RealPods, kosmos_row: str, seconds: float, rounds: int, baseline: str = "underlay"
) -> list[Row]:
    """Underlay (row ``baseline``) and pod -> pod between the same two nodes, alternating,
    ``rounds`` times."""
    pods.applied()
    (node_a, _), (node_b, node_b_ip) = pods.node(MEMBERS[0]), pods.node(MEMBERS[1])
    (pod_a, _), (pod_b, pod_b_ip) = pods.pod(MEMBERS[0]), pods.pod(MEMBERS[1])
    wait_for(lambda: _in(pod_a, "ping", "-c1", "-W1", pod_b_ip).returncode == 0, 60,
             f"{pod_b_ip} reachable")  # fmt: skip
    probes: dict[str, Callable[[], Sample]] = {
        baseline: lambda: (
            iperf(node_a, node_b, node_b_ip, seconds),
            ping(node_a, node_b_ip),
        ),
        kosmos_row: lambda: (iperf(pod_a, pod_b, pod_b_ip, seconds), ping(pod_a, pod_b_ip)),
    }
    samples: dict[str, list[Sample]] = {name: [] for name in probes}
    order = list(probes)
    for _ in range(rounds):
        for name in order:
            samples[name].append(probes[name]())
        order.reverse()
    return [Row(name, [s[0] for s in v], [s[1] for s in v]) for name, v in samples.items()]


def report(rows: list[Row]) -> None:
    """Median (min..max) per row; ratios against the underlay measured in the same rounds."""
    print(f"\n{'Real pods (in-cluster agents)':<32} {'bandwidth Gbit/s':>26} {'RTT ms':>24}"
          f" {'bw ratio':>9} {'rtt ratio':>10}")  # fmt: skip
    base: Row | None = None
    for row in rows:
        if row.name.startswith("underlay"):
            base = row
        bw, rtt = statistics.median(row.mbit_s), statistics.median(row.rtt_ms)
        spread_bw = f"{min(row.mbit_s) / 1000:.2f}..{max(row.mbit_s) / 1000:.2f}"
        spread_rtt = f"{min(row.rtt_ms):.3f}..{max(row.rtt_ms):.3f}"
        ratio = ""
        if base is not None and row is not base:
            ratio = (f"{bw / statistics.median(base.mbit_s):9.2f}"
                     f" {rtt / statistics.median(base.rtt_ms):10.2f}")  # fmt: skip
        print(f"{row.name:<32} {bw / 1000:>8.2f} ({spread_bw:>14}) {rtt:>8.3f} ({spread_rtt:>12})"
              f" {ratio}")  # fmt: skip
    print(json.dumps({r.name: {"mbit_s": r.mbit_s, "rtt_ms": r.rtt_ms} for r in rows}))
