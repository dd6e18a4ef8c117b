"""ClusterLink in gateway mode behind a firewall, gateway failover, and a clean leave.

Each cluster has three nodes; the first two have elastic IPs (1:1 NAT in the router) and the
router forwards between the clusters' subnets only to elastic IPs, so the third node cannot
reach the other cluster's underlay at all: its pod traffic must go through its gateway.
"""

from __future__ import annotations

import secrets
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.dataplane.testbed import ContinuousPing, Testbed, two_clusters
from tests.dataplane.topology import ip, ns_run
from tests.fixtures.link import LinkEnv
from tests.support import wait_for

OPTIONS = {"networkType": "gateway", "ipFamily": "ipv4", "encryption": {"mode": "none"}}


@pytest.fixture(scope="module")
def gateways(link_plane: LinkEnv) -> Iterator[Testbed]:
    tag = secrets.token_hex(2)
    clusters = two_clusters(tag, nodes=3, elastic=2, options=dict(OPTIONS))
    bed = Testbed(link_plane, clusters, firewall=True, tag=tag)
    try:
        bed.up()
        for node in bed.nodes():
            bed.echo(node)
        wait_for(
            lambda: all(bed.applied(n) for n in bed.nodes()), 90, "NodeConfigs applied", interval=1
        )
        yield bed
    finally:
        bed.down()


def test_the_firewall_keeps_internal_nodes_off_the_other_underlay(gateways: Testbed) -> None:
    a3, b3 = gateways.nodes()[2], gateways.nodes()[5]
    b3_underlay = gateways.topology.underlay(b3)[0]
    out = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            gateways.topology.node_ns(a3),
            "ping",
            "-c",
            "1",
            "-W",
            "1",
            b3_underlay,
        ],
        capture_output=True,
        check=False,
    )
    assert out.returncode != 0, "the testbed must firewall node-to-node underlay traffic"


def test_gateways_are_elected_among_nodes_with_elastic_ips(gateways: Testbed) -> None:
    for cluster in gateways.clusters:
        eip_nodes = {n.name for n in cluster.spec.nodes if n.elastic_ip}
        wait_for(
            lambda c=cluster, eips=eip_nodes: gateways.gateway(c.spec.name) in eips,
            30,
            f"gateway of {cluster.spec.name}",
        )


def test_pods_on_internal_nodes_reach_each_other_through_the_gateways(gateways: Testbed) -> None:
    nodes = gateways.nodes()
    pairs = [(s, d.pod_ip) for s in nodes for d in nodes if s.cluster != d.cluster]
    gateways.wait_reachable(pairs)
    a3, b3 = nodes[2], nodes[5]
    assert gateways.topology.tcp(a3, b3.pod_ip, 7000) and gateways.topology.tcp(b3, a3.pod_ip, 7000)
    routes = ip(gateways.topology.node_ns(a3), "route", "show", "table", "200")
    assert "dev vx-local" in routes and "vx-bridge" not in routes


def test_gateway_failover_resumes_pod_traffic(
    gateways: Testbed, record_property: pytest.RecordProperty
) -> None:
    nodes = gateways.nodes()
    a3, b3 = nodes[2], nodes[5]
    cluster_a = nodes[0].cluster
    old = gateways.gateway(cluster_a)
    victim = next(n for n in nodes if n.name == old)
    wait_for(
        lambda: gateways.topology.ping(a3, b3.pod_ip, count=1), 30, "traffic before the failover"
    )
    pinger = ContinuousPing(gateways.topology, a3, b3.pod_ip)
    time.sleep(2)
    killed_at = time.monotonic()
    gateways.stop_agent(victim.name, kill=True)  # the gateway node goes down: agent and NIC
    ip(gateways.topology.node_ns(victim), "link", "set", "eth0", "down")
    wait_for(lambda: gateways.gateway(cluster_a) not in {None, old}, 30, "a new gateway elected")
    elected_after = time.monotonic() - killed_at
    wait_for(
        lambda: gateways.topology.ping(a3, b3.pod_ip, count=1),
        30,
        "traffic through the new gateway",
    )
    time.sleep(2)
    gap = pinger.gap(pinger.stop())
    record_property("gateway_failover_gap_seconds", round(gap, 2))
    record_property("gateway_elected_after_seconds", round(elected_after, 2))
    print(f"gateway failover: new gateway after {elected_after:.2f}s, ping gap {gap:.2f}s")
    assert gap < 15, f"pod traffic did not resume promptly (gap {gap:.1f}s)"
    ip(gateways.topology.node_ns(victim), "link", "set", "eth0", "up")  # back for later tests
    ns_run(
        gateways.topology.node_ns(victim),
        "ip",
        "route",
        "replace",
        "default",
        "via",
        "192.168.10.1",
    )
    gateways.start_agent(victim)


def test_leaving_removes_everything_the_agents_made(gateways: Testbed) -> None:
    cluster_b = gateways.clusters[1]
    assert any(gateways.leftovers(n) for n in cluster_b.spec.nodes)
    gateways.leave(cluster_b.spec.name)
    for node in cluster_b.spec.nodes:
        wait_for(
            lambda n=node: not gateways.leftovers(n),
            30,
            f"{node.name} cleaned up (left: {gateways.leftovers(node)})",
        )
