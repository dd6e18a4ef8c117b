"""The dataplane tier runs against the real kernel inside network namespaces it creates.

This smoke test proves the primitives ClusterLink builds on: two "nodes" on one underlay
segment (veths on a bridge), a VXLAN overlay between them with a static FDB entry, and a
routed ping across.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.dataplane.testbed import Build, ClusterSpec, NodeSpec, Topology, ip, run


@pytest.fixture
def two_nodes(testbed: Build) -> tuple[Topology, NodeSpec, NodeSpec]:
    """Two nodes of one cluster, on one underlay segment."""
    nodes = [NodeSpec("k", f"k{i}", i, f"10.77.{i}.0/24", f"fd77:0:0:{i}::/64") for i in (1, 2)]
    return testbed([ClusterSpec("k", 1, nodes)]), nodes[0], nodes[1]


def test_vxlan_overlay_carries_a_ping_between_namespaces(two_nodes):
    topology, node_a, node_b = two_nodes
    a, b = topology.node_ns(node_a), topology.node_ns(node_b)
    nodes = {
        a: (topology.underlay(node_a)[0], "10.244.0.1"),
        b: (topology.underlay(node_b)[0], "10.244.0.2"),
    }
    for ns, (underlay, overlay) in nodes.items():
        ip(ns, "link", "add", "vx-test", "type", "vxlan", "id", "42", "local", underlay,
           "dstport", "4789", "nolearning")  # fmt: skip
        ip(ns, "addr", "add", f"{overlay}/24", "dev", "vx-test")
        ip(ns, "link", "set", "vx-test", "up")
    macs = {ns: json.loads(ip(ns, "-j", "link", "show", "vx-test"))[0]["address"] for ns in nodes}
    # No learning, no multicast: the peer's MAC and VTEP are programmed, as ClusterLink does.
    for ns, peer in ((a, b), (b, a)):
        peer_underlay, peer_overlay = nodes[peer]
        ip(ns, "neigh", "add", peer_overlay, "lladdr", macs[peer], "dev", "vx-test")
        run("bridge", "-n", ns, "fdb", "append", macs[peer], "dev", "vx-test", "dst", peer_underlay)
    out = subprocess.run(
        ["ip", "netns", "exec", a, "ping", "-c", "2", "-W", "2", nodes[b][1]],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert " 0% packet loss" in out.stdout
