"""Gateway mode with ``directRouting``: internal nodes route to their gateway's node address
over their own NIC (no ``vx-local``); the gateway masquerades what leaves ``vx-bridge`` that
its cluster's pods did not send (docs/clusterlink.md, "Direct routing")."""

from kosmos.clusterlink.planner import inputs
from tests.unit.clusterlink.linkcases import cluster, compute, devices, node, routes, rules
from tests.unit.clusterlink.test_planner_plan import GW_NODES, accept, entry, forward, ipset, nat


def direct_clusters(direct=True):
    return [
        cluster(
            "g",
            mode="gateway",
            family="ipv4",
            pods=["10.1.0.0/16"],
            services=["10.96.0.0/16"],
            directRouting=direct,
        ),
        cluster("p", family="ipv4", pods=["10.2.0.0/16"], services=["10.97.0.0/16"]),
    ]


def test_internal_nodes_route_to_the_gateways_node_address_over_their_nic():
    nodes = [*GW_NODES[:2], node("g", "n3", "192.168.1.3", pods=["10.1.3.0/24"], iface="ens5"),
             *GW_NODES[3:]]  # fmt: skip
    plan = compute(direct_clusters(), nodes)
    assert plan.problems == {}
    assert plan.configs["g-n2"] == {
        "routes": [
            {"cidr": "10.2.1.0/24", "gw": "192.168.1.1", "dev": "eth0"},
            {"cidr": "10.2.2.0/24", "gw": "192.168.1.1", "dev": "eth0"},
            {"cidr": "10.97.0.0/16", "gw": "192.168.1.1", "dev": "eth0"},
        ],
        # forwarding between the pods and the NIC is the CNI's: no FORWARD rule of ours
        "iptables": [accept("10.1.0.0/16")],
        "ipsets": [ipset("10.2.1.0/24", "10.2.2.0/24", "10.97.0.0/16")],
    }
    # each node's own NIC, though the two share every other part of their view
    assert set(routes(plan.configs["g-n3"]).values()) == {("192.168.1.1", "ens5")}


def test_the_gateway_has_no_vx_local_and_masquerades_what_its_pods_did_not_send():
    plan = compute(direct_clusters(), GW_NODES)
    spec = plan.configs["g-gw"]
    assert list(devices(spec)) == ["vx-bridge"]
    assert routes(spec) == {
        "10.2.1.0/24": ("220.168.2.1", "vx-bridge"),
        "10.2.2.0/24": ("220.168.2.2", "vx-bridge"),
        "10.97.0.0/16": ("220.168.2.1", "vx-bridge"),
    }
    # toward the remote nodes only: no return path over vx-local to keep
    assert spec["fdbs"] == [
        entry("192.168.2.1", "p-n1", "vx-bridge"),
        entry("192.168.2.2", "p-n2", "vx-bridge"),
    ]
    # the pods' traffic is accepted before the catch-all masquerade sees it
    assert spec["iptables"] == [
        nat("POSTROUTING", "-s 220.0.0.0/8 ! -o vx-bridge -j MASQUERADE"),
        accept("10.1.0.0/16"),
        nat("POSTROUTING", "-o vx-bridge -j MASQUERADE"),
        *forward("vx-bridge"),
    ]


def test_the_other_cluster_sees_no_difference():
    with_direct = compute(direct_clusters(), GW_NODES)
    without = compute(direct_clusters(direct=False), GW_NODES)
    for name in ("p-n1", "p-n2"):
        assert with_direct.configs[name] == without.configs[name]


def test_a_p2p_cluster_ignores_the_option():
    clusters = [
        cluster("a", family="ipv4", pods=["10.1.0.0/16"], directRouting=True),
        cluster("b", family="ipv4", pods=["10.2.0.0/16"]),
    ]
    nodes = [node("a", "n1", "192.168.1.1", pods=["10.1.1.0/24"]),
             node("b", "n1", "192.168.2.1", pods=["10.2.1.0/24"])]  # fmt: skip
    plan = compute(clusters, nodes)
    assert routes(plan.configs["a-n1"]) == {"10.2.1.0/24": ("220.168.2.1", "vx-bridge")}
    assert "MASQUERADE" not in " ".join(rules(plan.configs["a-n1"]))


def test_dual_stack_routes_each_family_to_the_gateways_address_of_it():
    clusters = [
        cluster("g", mode="gateway", pods=["10.1.0.0/16", "fd01::/48"], directRouting=True),
        cluster("e", pods=["10.2.0.0/16", "fd02::/48"]),
    ]
    nodes = [
        node("g", "gw", "192.168.1.1", "fd00:1::1", gateway=True, pods=["10.1.1.0/24"]),
        node("g", "n2", "192.168.1.2", "fd00:1::2", pods=["10.1.2.0/24"]),
        node("e", "n1", "192.168.2.1", "fd00:2::1", pods=["10.2.1.0/24", "fd02:0:0:1::/64"]),
    ]
    plan = compute(clusters, nodes)
    assert routes(plan.configs["g-n2"]) == {
        "10.2.1.0/24": ("192.168.1.1", "eth0"),
        "fd02:0:0:1::/64": ("fd00:1::1", "eth0"),
    }
    assert rules(plan.configs["g-gw"], "POSTROUTING")[-2:] == [
        "-o vx-bridge -j MASQUERADE",
        "-o vx-bridge-6 -j MASQUERADE",
    ]


def test_only_true_turns_it_on_and_only_in_gateway_mode():
    cases = (("gateway", True, True), ("gateway", "true", False), ("gateway", None, False),
             ("p2p", True, False))  # fmt: skip
    for mode, value, expected in cases:
        found = inputs.read([cluster("g", mode=mode, directRouting=value)], [])
        assert found.clusters["g"].direct_routing is expected
