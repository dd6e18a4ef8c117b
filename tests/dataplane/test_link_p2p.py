"""ClusterLink in p2p mode, dual stack, with real packets between pod namespaces.

Two clusters of two nodes each, every node tunnelling straight to the node that owns the
destination pod CIDR; also a service VIP in the other cluster, drift repair, and that
nothing the agents made survives the clusters leaving.
"""

from __future__ import annotations

import pytest

from tests.dataplane.linked import Layout, LinkedTestbed
from tests.dataplane.testbed import ip, ns_run, run
from tests.support import wait_for

SERVICE_VIP = "10.112.0.50"  # in cluster2's service CIDR, discovered by the network-manager


BED = Layout(options={"networkType": "p2p"})


def _pairs(bed: LinkedTestbed, family: int) -> list[tuple[object, str]]:
    nodes = bed.nodes()
    return [
        (src, dst.pod_ip if family == 4 else dst.pod_ip6)
        for src in nodes
        for dst in nodes
        if src.cluster != dst.cluster
    ]


@pytest.mark.parametrize("family", [4, 6])
def test_pods_ping_and_connect_across_clusters_both_ways(bed: LinkedTestbed, family: int) -> None:
    bed.wait_reachable(_pairs(bed, family))  # type: ignore[arg-type]
    for src, dst in _pairs(bed, family):
        assert bed.topology.tcp(src, dst, 7000), f"TCP {src.name} -> {dst}"  # type: ignore[attr-defined]


def test_every_node_tunnels_directly_to_the_owner_of_each_pod_cidr(bed: LinkedTestbed) -> None:
    a1, _a2, b1, b2 = bed.nodes()
    routes = ip(bed.topology.node_ns(a1), "route", "show", "table", "200")
    assert f"{b1.pod_cidr} via" in routes and f"{b2.pod_cidr} via" in routes
    assert all("dev vx-bridge" in line for line in routes.splitlines())
    assert "vx-local" not in ip(bed.topology.node_ns(a1), "link")


def test_a_service_vip_of_the_other_cluster_is_reachable(bed: LinkedTestbed) -> None:
    a1, _a2, b1, b2 = bed.nodes()
    gateway = bed.gateway(b1.cluster)
    assert gateway in {b1.name, b2.name}
    backend = b1 if gateway == b1.name else b2
    # kube-proxy's part, modelled: every node of cluster b DNATs the VIP to the backend pod
    # and masquerades clients from outside the cluster (as kube-proxy does).
    for node in (b1, b2):
        ns_run(
            bed.topology.node_ns(node),
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
            bed.topology.node_ns(node),
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
        lambda: bed.topology.tcp(a1, SERVICE_VIP, 80), 30, "service VIP reachable from cluster a"
    )


def test_a_route_and_an_fdb_entry_deleted_by_hand_come_back(bed: LinkedTestbed) -> None:
    a1, _a2, b1, _b2 = bed.nodes()
    ns = bed.topology.node_ns(a1)
    fdb = next(
        line
        for line in run("bridge", "-n", ns, "fdb", "show", "dev", "vx-bridge").splitlines()
        if "permanent" in line and "dst" in line
    )
    mac, dst = fdb.split()[0], fdb.split()[fdb.split().index("dst") + 1]
    ip(ns, "route", "del", b1.pod_cidr, "table", "200")
    run("bridge", "-n", ns, "fdb", "del", mac, "dev", "vx-bridge", "dst", dst)
    assert f"{b1.pod_cidr} via" not in ip(ns, "route", "show", "table", "200")

    def repaired() -> bool:
        fdbs = run("bridge", "-n", ns, "fdb", "show", "dev", "vx-bridge")
        return f"{b1.pod_cidr} via" in ip(ns, "route", "show", "table", "200") and mac in fdbs

    wait_for(
        repaired, 10, "route and FDB entry restored within the repair period (2 s)", interval=0.5
    )
    assert bed.topology.ping(a1, b1.pod_ip)


def test_the_nodeconfig_status_says_it_is_applied(bed: LinkedTestbed) -> None:
    config = bed.nodeconfig(bed.nodes()[0])
    assert config is not None
    applied = next(c for c in config["status"]["conditions"] if c["type"] == "Applied")
    assert applied["status"] == "True", applied
