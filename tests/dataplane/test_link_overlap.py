"""Two clusters with the SAME pod CIDRs (IPv4 and IPv6), reachable through global CIDRs.

Both clusters use 10.99.0.0/16 and fd99::/48; cluster a is seen by others as 10.201.0.0/16 /
fd9a:1::/48, cluster b as 10.202.0.0/16 / fd9a:2::/48 (``globalCIDRsMap``). A pod reaches a
pod of the other cluster at its global address; the owning node NETMAPs it back to the real
one, and the sender's address is mapped to its own global address on the way out, so the
reply goes back to the right cluster.
"""

from __future__ import annotations

import pytest

from tests.dataplane.linked import Layout, LinkedTestbed, global_ip

BED = Layout(options={"networkType": "p2p"}, overlap=True)


def test_both_clusters_really_use_the_same_pod_addresses(bed: LinkedTestbed) -> None:
    a1, _a2, b1, _b2 = bed.nodes()
    assert a1.pod_ip == b1.pod_ip and a1.pod_ip6 == b1.pod_ip6


@pytest.mark.parametrize("family", [4, 6])
def test_pods_reach_the_other_cluster_through_its_global_cidr(
    bed: LinkedTestbed, family: int
) -> None:
    nodes = bed.nodes()
    index = {c.spec.name: c.spec.index for c in bed.clusters}
    pairs = [
        (src, global_ip(dst.pod_ip if family == 4 else dst.pod_ip6, index[dst.cluster]))
        for src in nodes
        for dst in nodes
        if src.cluster != dst.cluster
    ]
    bed.wait_reachable(pairs)
    for src, dst in pairs:
        assert bed.topology.tcp(src, dst, 7000), f"TCP {src.name} -> {dst}"


def test_the_plan_routes_global_cidrs_only(bed: LinkedTestbed) -> None:
    spec = (bed.nodeconfig(bed.nodes()[0]) or {})["spec"]
    routed = {r["cidr"] for r in spec["routes"]}
    assert routed and all(c.startswith(("10.202.", "fd9a:2:", "10.112.")) for c in routed), routed
    rules = [r["rule"] for r in spec["iptables"]]
    assert any("NETMAP --to 10.99.0.0/16" in r for r in rules)
    assert any("NETMAP --to 10.201.0.0/16" in r for r in rules)
