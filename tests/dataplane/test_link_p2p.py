"""ClusterLink in p2p mode, dual stack, with real packets between pod namespaces.

Two clusters of two nodes each, every node tunnelling straight to the node that owns the
destination pod CIDR; also a service VIP in the other cluster, drift repair, and that
nothing the agents made survives the clusters leaving.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator

import pytest

from tests.dataplane.testbed import Testbed, two_clusters
from tests.dataplane.topology import ip, ns_run
from tests.fixtures.link import LinkEnv
from tests.support import wait_for

SERVICE_VIP = "10.112.0.50"  # in cluster2's service CIDR, discovered by the network-manager


@pytest.fixture(scope="module")
def p2p(link_plane: LinkEnv) -> Iterator[Testbed]:
    tag = secrets.token_hex(2)
    bed = Testbed(link_plane, two_clusters(tag, options={"networkType": "p2p"}), tag=tag)
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


def _pairs(bed: Testbed, family: int) -> list[tuple[object, str]]:
    nodes = bed.nodes()
    return [
        (src, dst.pod_ip if family == 4 else dst.pod_ip6)
        for src in nodes
        for dst in nodes
        if src.cluster != dst.cluster
    ]


@pytest.mark.parametrize("family", [4, 6])
def test_pods_ping_and_connect_across_clusters_both_ways(p2p: Testbed, family: int) -> None:
    p2p.wait_reachable(_pairs(p2p, family))  # type: ignore[arg-type]
    for src, dst in _pairs(p2p, family):
        assert p2p.topology.tcp(src, dst, 7000), f"TCP {src.name} -> {dst}"  # type: ignore[attr-defined]


def test_every_node_tunnels_directly_to_the_owner_of_each_pod_cidr(p2p: Testbed) -> None:
    a1, _a2, b1, b2 = p2p.nodes()
    routes = ip(p2p.topology.node_ns(a1), "route", "show", "table", "200")
    assert f"{b1.pod_cidr} via" in routes and f"{b2.pod_cidr} via" in routes
    assert all("dev vx-bridge" in line for line in routes.splitlines())
    assert "vx-local" not in ip(p2p.topology.node_ns(a1), "link")


def test_a_service_vip_of_the_other_cluster_is_reachable(p2p: Testbed) -> None:
    a1, _a2, b1, b2 = p2p.nodes()
    gateway = p2p.gateway(b1.cluster)
    assert gateway in {b1.name, b2.name}
    backend = b1 if gateway == b1.name else b2
    # kube-proxy's part, modelled: every node of cluster b DNATs the VIP to the backend pod
    # and masquerades clients from outside the cluster (as kube-proxy does).
    for node in (b1, b2):
        ns_run(
            p2p.topology.node_ns(node),
            "iptables",
            "-t",
            "nat",
            "-A",
            "PREROUTING",
            "-d",
            SERVICE_VIP,
            "-p",
            "tcp",
            "--dport",
            "80",
            "-j",
            "DNAT",
            "--to-destination",
            f"{backend.pod_ip}:7000",
        )
        ns_run(
            p2p.topology.node_ns(node),
            "iptables",
            "-t",
            "nat",
            "-A",
            "POSTROUTING",
            "-d",
            backend.pod_ip,
            "!",
            "-s",
            "10.52.0.0/16",
            "-p",
            "tcp",
            "--dport",
            "7000",
            "-j",
            "MASQUERADE",
        )
    wait_for(
        lambda: p2p.topology.tcp(a1, SERVICE_VIP, 80), 30, "service VIP reachable from cluster a"
    )


def test_a_route_and_an_fdb_entry_deleted_by_hand_come_back(p2p: Testbed) -> None:
    a1, _a2, b1, _b2 = p2p.nodes()
    ns = p2p.topology.node_ns(a1)
    fdb = next(
        line
        for line in subprocess.run(
            ["bridge", "-n", ns, "fdb", "show", "dev", "vx-bridge"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        if "permanent" in line and "dst" in line
    )
    mac, dst = fdb.split()[0], fdb.split()[fdb.split().index("dst") + 1]
    ip(ns, "route", "del", b1.pod_cidr, "table", "200")
    subprocess.run(
        ["bridge", "-n", ns, "fdb", "del", mac, "dev", "vx-bridge", "dst", dst], check=True
    )
    assert f"{b1.pod_cidr} via" not in ip(ns, "route", "show", "table", "200")

    def repaired() -> bool:
        fdbs = subprocess.run(
            ["bridge", "-n", ns, "fdb", "show", "dev", "vx-bridge"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return f"{b1.pod_cidr} via" in ip(ns, "route", "show", "table", "200") and mac in fdbs

    wait_for(
        repaired, 10, "route and FDB entry restored within the repair period (2 s)", interval=0.5
    )
    assert p2p.topology.ping(a1, b1.pod_ip)


def test_the_nodeconfig_status_says_it_is_applied(p2p: Testbed) -> None:
    config = p2p.nodeconfig(p2p.nodes()[0])
    assert config is not None
    applied = next(c for c in config["status"]["conditions"] if c["type"] == "Applied")
    assert applied["status"] == "True", applied
