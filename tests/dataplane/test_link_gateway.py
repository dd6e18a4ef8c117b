"""ClusterLink in gateway mode behind a firewall, gateway failover, and a clean leave.

Each cluster has three nodes; the first two have elastic IPs (1:1 NAT in the router) and the
router forwards between the clusters' subnets only to elastic IPs, so the third node cannot
reach the other cluster's underlay at all: its pod traffic must go through its gateway.
"""

from __future__ import annotations

import time

import pytest

from tests.dataplane.linked import Layout, LinkedTestbed
from tests.dataplane.probes import ContinuousPing
from tests.dataplane.testbed import ip, ns_ok, ns_run
from tests.support import wait_for

OPTIONS = {"networkType": "gateway", "ipFamily": "ipv4", "encryption": {"mode": "none"}}


BED = Layout(options=OPTIONS, nodes=3, elastic=2, firewall=True)


def test_the_firewall_keeps_internal_nodes_off_the_other_underlay(bed: LinkedTestbed) -> None:
    a3, b3 = bed.nodes()[2], bed.nodes()[5]
    b3_underlay = bed.topology.underlay(b3)[0]
    reached = ns_ok(bed.topology.node_ns(a3), "ping", "-c", "1", "-W", "1", b3_underlay)
    assert not reached, "the testbed must firewall node-to-node underlay traffic"


def test_gateways_are_elected_among_nodes_with_elastic_ips(bed: LinkedTestbed) -> None:
    for cluster in bed.clusters:
        eip_nodes = {n.name for n in cluster.spec.nodes if n.elastic_ip}
        wait_for(
            lambda c=cluster, eips=eip_nodes: bed.gateway(c.spec.name) in eips,
            30,
            f"gateway of {cluster.spec.name}",
        )


def test_pods_on_internal_nodes_reach_each_other_through_the_gateways(bed: LinkedTestbed) -> None:
    nodes = bed.nodes()
    pairs = [(s, d.pod_ip) for s in nodes for d in nodes if s.cluster != d.cluster]
    bed.wait_reachable(pairs)
    a3, b3 = nodes[2], nodes[5]
    assert bed.topology.tcp(a3, b3.pod_ip, 7000) and bed.topology.tcp(b3, a3.pod_ip, 7000)
    routes = ip(bed.topology.node_ns(a3), "route", "show", "table", "200")
    assert "vx-bridge" not in routes
    if not bed.clusters[0].options.get("directRouting"):
        assert "dev vx-local" in routes
        return
    # direct routing: to the gateway's node address over the NIC, and no vx-local anywhere
    gateway = next(n for n in nodes if n.name == bed.gateway(a3.cluster))
    assert f"via {bed.topology.underlay(gateway)[0]} dev eth0" in routes
    assert "vx-local" not in routes
    for node in nodes:
        assert "vx-local" not in ip(bed.topology.node_ns(node), "-br", "link"), node.name
    # the internal node's host too: its gateway masquerades it
    assert ns_ok(bed.topology.node_ns(a3), "ping", "-c", "2", "-W", "1", b3.pod_ip)


def test_gateway_failover_resumes_pod_traffic(
    bed: LinkedTestbed, record_property: pytest.RecordProperty
) -> None:
    nodes = bed.nodes()
    a3, b3 = nodes[2], nodes[5]
    cluster_a = nodes[0].cluster
    old = bed.gateway(cluster_a)
    victim = next(n for n in nodes if n.name == old)
    wait_for(lambda: bed.topology.ping(a3, b3.pod_ip, count=1), 30, "traffic before the failover")
    pinger = ContinuousPing(bed.topology.pod_ns(a3), b3.pod_ip)
    time.sleep(2)
    killed_at = time.monotonic()
    bed.stop_agent(victim.name, kill=True)  # the gateway node goes down: agent and NIC
    ip(bed.topology.node_ns(victim), "link", "set", "eth0", "down")
    wait_for(lambda: bed.gateway(cluster_a) not in {None, old}, 30, "a new gateway elected")
    elected_after = time.monotonic() - killed_at
    wait_for(
        lambda: bed.topology.ping(a3, b3.pod_ip, count=1),
        30,
        "traffic through the new gateway",
    )
    time.sleep(2)
    gap = pinger.gap(pinger.stop())
    record_property("gateway_failover_gap_seconds", round(gap, 2))
    record_property("gateway_elected_after_seconds", round(elected_after, 2))
    print(f"gateway failover: new gateway after {elected_after:.2f}s, ping gap {gap:.2f}s")
    assert gap < 15, f"pod traffic did not resume promptly (gap {gap:.1f}s)"
    if bed.clusters[0].options.get("directRouting"):  # no route left to the old gateway
        routes = ip(bed.topology.node_ns(a3), "route", "show", "table", "200")
        assert bed.topology.underlay(victim)[0] not in routes, routes
    ip(bed.topology.node_ns(victim), "link", "set", "eth0", "up")  # back for later tests
    ns_run(
        bed.topology.node_ns(victim),
        "ip",
        "route",
        "replace",
        "default",
        "via",
        "192.168.10.1",
    )
    bed.start_agent(victim)


def test_leaving_removes_everything_the_agents_made(bed: LinkedTestbed) -> None:
    cluster_b = bed.clusters[1]
    assert any(bed.leftovers(n) for n in cluster_b.spec.nodes)
    bed.leave(cluster_b.spec.name)
    for node in cluster_b.spec.nodes:
        wait_for(
            lambda n=node: not bed.leftovers(n),
            30,
            f"{node.name} cleaned up (left: {bed.leftovers(node)})",
        )
