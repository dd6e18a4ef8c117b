"""The whole plan: NodeConfig specs for p2p and gateway clusters, dual stack, global CIDRs,
conflicts and bridge-address collisions (encryption, determinism and schema validity are in
test_planner_output.py)."""

import pytest

from kosmos.clusterlink.planner.addressing import mac
from tests.unit.clusterlink.linkcases import cluster, compute, devices, node, routes, rules


def vxlan(node_name, kind, addr, bind="eth0"):
    vni, port = {
        "vx-bridge": (54, 4876),
        "vx-local": (55, 4877),
        "vx-bridge-6": (64, 4866),
        "vx-local-6": (65, 4867),
    }[kind]
    return {
        "type": "vxlan",
        "name": kind,
        "addr": addr,
        "mac": mac(node_name, kind),
        "bindDev": bind,
        "id": vni,
        "port": port,
    }


def entry(ip, owner, dev):
    """An FDB or ARP entry: ``ip`` -> the MAC of ``owner``'s ``dev``."""
    return {"ip": ip, "mac": mac(owner, dev), "dev": dev}


def forward(*devs):
    out = []
    for dev in devs:
        out += [
            {"table": "filter", "chain": "FORWARD", "rule": f"-i {dev} -j ACCEPT"},
            {"table": "filter", "chain": "FORWARD", "rule": f"-o {dev} -j ACCEPT"},
        ]
    return out


def nat(chain, rule):
    return {"table": "nat", "chain": chain, "rule": rule}


def accept(cidr, remote_set="kosmos-remote"):
    return nat("POSTROUTING", f"-s {cidr} -m set --match-set {remote_set} dst -j ACCEPT")


def ipset(*entries, name="kosmos-remote"):
    return {"name": name, "type": "hash:net", "entries": list(entries)}


# --- p2p -----------------------------------------------------------------------------------

P2P_CLUSTERS = [
    cluster("a", family="ipv4", pods=["10.1.0.0/16"], services=["10.96.0.0/16"]),
    cluster("b", family="ipv4", pods=["10.2.0.0/16"], services=["10.97.0.0/16"]),
]
P2P_NODES = [
    node("a", "n1", "192.168.1.1", pods=["10.1.1.0/24"]),
    node("a", "n2", "192.168.1.2", pods=["10.1.2.0/24"], eip="203.0.113.12"),
    node("b", "n1", "192.168.2.1", pods=["10.2.1.0/24"]),
    node("b", "n2", "192.168.2.2", pods=["10.2.2.0/24"], iface="ens5"),
]


def test_p2p_every_node_tunnels_straight_to_the_owner_of_the_destination():
    plan = compute(P2P_CLUSTERS, P2P_NODES)
    assert plan.problems == {} and plan.skipped == {}
    assert plan.gateways == {"a": "a-n1", "b": "b-n1"}  # p2p: the first node by name
    assert plan.configs["a-n1"] == {
        "devices": [vxlan("a-n1", "vx-bridge", "220.168.1.1/8")],
        "routes": [
            {"cidr": "10.2.1.0/24", "gw": "220.168.2.1", "dev": "vx-bridge"},
            {"cidr": "10.2.2.0/24", "gw": "220.168.2.2", "dev": "vx-bridge"},
            # b's services go to b's gateway
            {"cidr": "10.97.0.0/16", "gw": "220.168.2.1", "dev": "vx-bridge"},
        ],
        "fdbs": [
            entry("192.168.2.1", "b-n1", "vx-bridge"),
            entry("192.168.2.2", "b-n2", "vx-bridge"),
        ],
        "arps": [
            entry("220.168.2.1", "b-n1", "vx-bridge"),
            entry("220.168.2.2", "b-n2", "vx-bridge"),
        ],
        "iptables": [accept("10.1.0.0/16"), *forward("vx-bridge")],
        "ipsets": [ipset("10.2.1.0/24", "10.2.2.0/24", "10.97.0.0/16")],
    }


def test_p2p_elastic_ip_numbers_the_bridge_and_is_the_vtep_others_send_to():
    plan = compute(P2P_CLUSTERS, P2P_NODES)
    # a-n2 has an elastic IP: its vx-bridge address comes from it (not from 192.168.1.2)
    assert devices(plan.configs["a-n2"])["vx-bridge"]["addr"] == "220.0.113.12/8"
    spec = plan.configs["b-n2"]
    assert devices(spec) == {"vx-bridge": vxlan("b-n2", "vx-bridge", "220.168.2.2/8", "ens5")}
    assert routes(spec) == {
        "10.1.1.0/24": ("220.168.1.1", "vx-bridge"),
        "10.1.2.0/24": ("220.0.113.12", "vx-bridge"),
        "10.96.0.0/16": ("220.168.1.1", "vx-bridge"),
    }
    assert spec["fdbs"] == [
        entry("192.168.1.1", "a-n1", "vx-bridge"),
        entry("203.0.113.12", "a-n2", "vx-bridge"),  # FDB dst: the elastic IP
    ]
    assert spec["arps"] == [
        entry("220.0.113.12", "a-n2", "vx-bridge"),
        entry("220.168.1.1", "a-n1", "vx-bridge"),
    ]


def test_p2p_nodes_of_one_cluster_get_nothing_toward_each_other():
    plan = compute(P2P_CLUSTERS, P2P_NODES)
    for name in ("a-n1", "a-n2"):
        spec = plan.configs[name]
        assert not [r for r in spec["routes"] if r["cidr"].startswith("10.1.")]
        assert {f["ip"] for f in spec["fdbs"]} == {"192.168.2.1", "192.168.2.2"}


def test_fdb_and_arp_only_for_pairs_that_have_routes():
    # b-n2 owns no pod CIDR: no route points at it, so nobody gets FDB/ARP entries for it
    nodes = [*P2P_NODES[:3], node("b", "n2", "192.168.2.2")]
    plan = compute(P2P_CLUSTERS, nodes)
    spec = plan.configs["a-n1"]
    assert {f["ip"] for f in spec["fdbs"]} == {"192.168.2.1"}
    assert {a["ip"] for a in spec["arps"]} == {"220.168.2.1"}
    # and no all-zero MAC (flooding) entries, unlike the original
    for config in plan.configs.values():
        assert all(f["mac"] != "00:00:00:00:00:00" for f in config.get("fdbs", []))


def test_a_single_cluster_gets_devices_but_no_routes():
    plan = compute(P2P_CLUSTERS[:1], P2P_NODES[:2])
    assert plan.configs["a-n1"] == {
        "devices": [vxlan("a-n1", "vx-bridge", "220.168.1.1/8")],
        "iptables": forward("vx-bridge"),
    }


def test_p2p_services_go_to_the_flagged_gateway_when_there_is_one():
    nodes = [*P2P_NODES[:3], node("b", "n2", "192.168.2.2", pods=["10.2.2.0/24"], gateway=True)]
    plan = compute(P2P_CLUSTERS, nodes)
    assert plan.gateways["b"] == "b-n2"
    assert routes(plan.configs["a-n1"])["10.97.0.0/16"] == ("220.168.2.2", "vx-bridge")


# --- gateway mode --------------------------------------------------------------------------

GW_CLUSTERS = [
    cluster("g", mode="gateway", family="ipv4", pods=["10.1.0.0/16"], services=["10.96.0.0/16"]),
    cluster("p", family="ipv4", pods=["10.2.0.0/16"], services=["10.97.0.0/16"]),
]
GW_NODES = [
    node("g", "gw", "192.168.1.1", gateway=True, epoch=2, pods=["10.1.1.0/24"]),
    node("g", "n2", "192.168.1.2", pods=["10.1.2.0/24"]),
    node("g", "n3", "192.168.1.3", pods=["10.1.3.0/24"]),
    node("p", "n1", "192.168.2.1", pods=["10.2.1.0/24"]),
    node("p", "n2", "192.168.2.2", pods=["10.2.2.0/24"]),
]


def test_gateway_internal_nodes_send_everything_to_their_gateway_over_vx_local():
    plan = compute(GW_CLUSTERS, GW_NODES)
    assert plan.problems == {}
    assert plan.configs["g-n2"] == {
        "devices": [vxlan("g-n2", "vx-local", "210.168.1.2/8")],
        "routes": [
            {"cidr": "10.2.1.0/24", "gw": "210.168.1.1", "dev": "vx-local"},
            {"cidr": "10.2.2.0/24", "gw": "210.168.1.1", "dev": "vx-local"},
            {"cidr": "10.97.0.0/16", "gw": "210.168.1.1", "dev": "vx-local"},
        ],
        "fdbs": [entry("192.168.1.1", "g-gw", "vx-local")],
        "arps": [entry("210.168.1.1", "g-gw", "vx-local")],
        "iptables": [accept("10.1.0.0/16"), *forward("vx-local")],
        "ipsets": [ipset("10.2.1.0/24", "10.2.2.0/24", "10.97.0.0/16")],
    }


def test_gateway_forwards_over_vx_bridge_masquerades_and_knows_its_internal_nodes():
    plan = compute(GW_CLUSTERS, GW_NODES)
    assert plan.configs["g-gw"] == {
        "devices": [
            vxlan("g-gw", "vx-bridge", "220.168.1.1/8"),
            vxlan("g-gw", "vx-local", "210.168.1.1/8"),
        ],
        "routes": [
            {"cidr": "10.2.1.0/24", "gw": "220.168.2.1", "dev": "vx-bridge"},
            {"cidr": "10.2.2.0/24", "gw": "220.168.2.2", "dev": "vx-bridge"},
            {"cidr": "10.97.0.0/16", "gw": "220.168.2.1", "dev": "vx-bridge"},
        ],
        "fdbs": [
            entry("192.168.2.1", "p-n1", "vx-bridge"),
            entry("192.168.2.2", "p-n2", "vx-bridge"),
            # the return path of what it forwards for its internal nodes
            entry("192.168.1.2", "g-n2", "vx-local"),
            entry("192.168.1.3", "g-n3", "vx-local"),
        ],
        "arps": [
            entry("220.168.2.1", "p-n1", "vx-bridge"),
            entry("220.168.2.2", "p-n2", "vx-bridge"),
            entry("210.168.1.2", "g-n2", "vx-local"),
            entry("210.168.1.3", "g-n3", "vx-local"),
        ],
        "iptables": [
            nat("POSTROUTING", "-s 210.0.0.0/8 -o vx-bridge -j MASQUERADE"),
            nat("POSTROUTING", "-s 220.0.0.0/8 ! -o vx-bridge -j MASQUERADE"),
            accept("10.1.0.0/16"),
            *forward("vx-bridge", "vx-local"),
        ],
        "ipsets": [ipset("10.2.1.0/24", "10.2.2.0/24", "10.97.0.0/16")],
    }


def test_others_reach_a_gateway_cluster_only_through_its_gateway():
    plan = compute(GW_CLUSTERS, GW_NODES)
    for name in ("p-n1", "p-n2"):
        spec = plan.configs[name]
        # the whole cluster CIDR (not the nodes' parts) and its services, via the gateway
        assert routes(spec) == {
            "10.1.0.0/16": ("220.168.1.1", "vx-bridge"),
            "10.96.0.0/16": ("220.168.1.1", "vx-bridge"),
        }
        assert spec["fdbs"] == [entry("192.168.1.1", "g-gw", "vx-bridge")]
        assert spec["arps"] == [entry("220.168.1.1", "g-gw", "vx-bridge")]


def test_two_gateway_clusters_meet_gateway_to_gateway():
    clusters = [
        GW_CLUSTERS[0],
        cluster(
            "h", mode="gateway", family="ipv4", pods=["10.3.0.0/16"], services=["10.98.0.0/16"]
        ),
    ]
    nodes = [
        *GW_NODES[:2],
        node("h", "gw", "192.168.3.1", gateway=True),
        node("h", "n2", "192.168.3.2"),
    ]
    plan = compute(clusters, nodes)
    assert routes(plan.configs["g-gw"]) == {
        "10.3.0.0/16": ("220.168.3.1", "vx-bridge"),
        "10.98.0.0/16": ("220.168.3.1", "vx-bridge"),
    }
    assert routes(plan.configs["h-n2"]) == {
        "10.1.0.0/16": ("210.168.3.1", "vx-local"),
        "10.96.0.0/16": ("210.168.3.1", "vx-local"),
    }


def test_the_gateway_with_the_newest_epoch_carries_the_cluster():
    nodes = [
        *GW_NODES[:1],
        node("g", "n2", "192.168.1.2", gateway=True, epoch=3),  # the elector moved on
        *GW_NODES[2:],
    ]
    plan = compute(GW_CLUSTERS, nodes)
    assert plan.gateways["g"] == "g-n2"
    assert set(devices(plan.configs["g-n2"])) == {"vx-bridge", "vx-local"}
    assert set(devices(plan.configs["g-gw"])) == {"vx-local"}
    assert routes(plan.configs["g-gw"])["10.2.1.0/24"] == ("210.168.1.2", "vx-local")
    assert routes(plan.configs["p-n1"])["10.1.0.0/16"] == ("220.168.1.2", "vx-bridge")


def test_a_gateway_cluster_without_a_gateway_is_a_problem_and_routes_nowhere():
    nodes = [node("g", "n2", "192.168.1.2"), *GW_NODES[3:]]
    plan = compute(GW_CLUSTERS, nodes)
    assert plan.problems == {"g": ["no gateway elected yet: no Ready node runs an agent"]}
    assert "g" not in plan.gateways
    assert plan.configs["g-n2"] == {
        "devices": [vxlan("g-n2", "vx-local", "210.168.1.2/8")],
        "iptables": forward("vx-local"),
    }
    assert "routes" not in plan.configs["p-n1"]


# --- families ------------------------------------------------------------------------------

DUAL = cluster("d", pods=["10.1.0.0/16", "fd01::/48"], services=["10.96.0.0/16", "fd96::/112"])
DUAL2 = cluster("e", pods=["10.2.0.0/16", "fd02::/48"], services=["10.97.0.0/16", "fd97::/112"])
ONLY4 = cluster("f", family="ipv4", pods=["10.3.0.0/16"], services=["10.98.0.0/16"])
ONLY6 = cluster("s", family="ipv6", pods=["fd06::/48"], services=["fd98::/112"])
DUAL_NODES = [
    node("d", "n1", "192.168.1.1", "fd00:1::1", pods=["10.1.1.0/24", "fd01:0:0:1::/64"]),
    node("e", "n1", "192.168.2.1", "fd00:2::1", pods=["10.2.1.0/24", "fd02:0:0:1::/64"]),
    # an IPv4-only cluster's node may have an IPv6 address: it gets no IPv6 device
    node("f", "n1", "192.168.3.1", "fd00:3::1", pods=["10.3.1.0/24"]),
    node("s", "n1", ip6="fd00:6::1", pods=["fd06:0:0:1::/64"]),
]


def test_dual_stack_gets_both_families_between_dual_stack_clusters():
    plan = compute([DUAL, DUAL2], DUAL_NODES[:2])
    spec = plan.configs["d-n1"]
    assert spec["devices"] == [
        vxlan("d-n1", "vx-bridge", "220.168.1.1/8"),
        vxlan("d-n1", "vx-bridge-6", "9470:1::1/16"),
    ]
    assert routes(spec) == {
        "10.2.1.0/24": ("220.168.2.1", "vx-bridge"),
        "10.97.0.0/16": ("220.168.2.1", "vx-bridge"),
        "fd02:0:0:1::/64": ("9470:2::1", "vx-bridge-6"),
        "fd97::/112": ("9470:2::1", "vx-bridge-6"),
    }
    assert spec["fdbs"] == [
        entry("192.168.2.1", "e-n1", "vx-bridge"),
        entry("fd00:2::1", "e-n1", "vx-bridge-6"),  # the VTEP: the node's IPv6 underlay
    ]
    assert spec["arps"] == [
        entry("220.168.2.1", "e-n1", "vx-bridge"),
        entry("9470:2::1", "e-n1", "vx-bridge-6"),
    ]
    assert spec["ipsets"] == [
        ipset("10.2.1.0/24", "10.97.0.0/16"),
        ipset("fd02:0:0:1::/64", "fd97::/112", name="kosmos-remote6"),
    ]
    assert spec["iptables"] == [
        accept("10.1.0.0/16"),
        accept("fd01::/48", "kosmos-remote6"),
        *forward("vx-bridge", "vx-bridge-6"),
    ]


def test_dual_stack_with_an_ipv4_only_cluster_shares_ipv4_only():
    plan = compute([DUAL, ONLY4], [DUAL_NODES[0], DUAL_NODES[2]])
    assert set(devices(plan.configs["f-n1"])) == {"vx-bridge"}
    assert routes(plan.configs["f-n1"]) == {
        "10.1.1.0/24": ("220.168.1.1", "vx-bridge"),
        "10.96.0.0/16": ("220.168.1.1", "vx-bridge"),
    }
    spec = plan.configs["d-n1"]
    assert set(devices(spec)) == {"vx-bridge", "vx-bridge-6"}
    assert routes(spec) == {
        "10.3.1.0/24": ("220.168.3.1", "vx-bridge"),
        "10.98.0.0/16": ("220.168.3.1", "vx-bridge"),
    }
    assert [s["name"] for s in spec["ipsets"]] == ["kosmos-remote"]
    # no IPv6 peer, so no IPv6 set and no rule matching one
    assert not [r for r in rules(spec) if "kosmos-remote6" in r]


def test_ipv6_only_cluster_meets_dual_stack_over_ipv6():
    plan = compute([DUAL, ONLY6], [DUAL_NODES[0], DUAL_NODES[3]])
    spec = plan.configs["s-n1"]
    assert spec["devices"] == [vxlan("s-n1", "vx-bridge-6", "9470:6::1/16")]
    assert routes(spec) == {
        "fd01:0:0:1::/64": ("9470:1::1", "vx-bridge-6"),
        "fd96::/112": ("9470:1::1", "vx-bridge-6"),
    }
    assert spec["fdbs"] == [entry("fd00:1::1", "d-n1", "vx-bridge-6")]
    assert routes(plan.configs["d-n1"]) == {
        "fd06:0:0:1::/64": ("9470:6::1", "vx-bridge-6"),
        "fd98::/112": ("9470:6::1", "vx-bridge-6"),
    }


def test_ipv4_only_and_ipv6_only_clusters_share_nothing():
    plan = compute([ONLY4, ONLY6], DUAL_NODES[2:])
    for spec in plan.configs.values():
        assert "routes" not in spec and "fdbs" not in spec and "ipsets" not in spec


def test_dual_stack_gateway_cluster():
    clusters = [
        cluster("g", mode="gateway", pods=["10.1.0.0/16", "fd01::/48"], services=["10.96.0.0/16"]),
        DUAL2,
    ]
    nodes = [
        node("g", "gw", "192.168.1.1", "fd00:1::1", gateway=True),
        node("g", "n2", "192.168.1.2", "fd00:1::2"),
        DUAL_NODES[1],
    ]
    plan = compute(clusters, nodes)
    assert plan.configs["g-n2"]["devices"] == [
        vxlan("g-n2", "vx-local", "210.168.1.2/8"),
        vxlan("g-n2", "vx-local-6", "9480:1::2/16"),
    ]
    assert routes(plan.configs["g-n2"]) == {
        "10.2.1.0/24": ("210.168.1.1", "vx-local"),
        "10.97.0.0/16": ("210.168.1.1", "vx-local"),
        "fd02:0:0:1::/64": ("9480:1::1", "vx-local-6"),
        "fd97::/112": ("9480:1::1", "vx-local-6"),
    }
    spec = plan.configs["g-gw"]
    assert [d["name"] for d in spec["devices"]] == [
        "vx-bridge",
        "vx-bridge-6",
        "vx-local",
        "vx-local-6",
    ]
    assert rules(spec, "POSTROUTING")[:4] == [
        "-s 210.0.0.0/8 -o vx-bridge -j MASQUERADE",
        "-s 220.0.0.0/8 ! -o vx-bridge -j MASQUERADE",
        "-s 9480::/16 -o vx-bridge-6 -j MASQUERADE",
        "-s 9470::/16 ! -o vx-bridge-6 -j MASQUERADE",
    ]
    assert spec["fdbs"][-2:] == [
        entry("192.168.1.2", "g-n2", "vx-local"),
        entry("fd00:1::2", "g-n2", "vx-local-6"),
    ]
    assert routes(plan.configs["e-n1"]) == {
        "10.1.0.0/16": ("220.168.1.1", "vx-bridge"),
        "10.96.0.0/16": ("220.168.1.1", "vx-bridge"),
        "fd01::/48": ("9470:1::1", "vx-bridge-6"),
    }


def test_custom_device_pools():
    pools = {
        "localCIDRs": {"ip": "10.210.0.0/16", "ip6": "fd21::/32"},
        "bridgeCIDRs": {"ip": "10.220.0.0/16", "ip6": "fd22::/32"},
    }
    clusters = [
        cluster("g", mode="gateway", family="ipv4", pods=["10.1.0.0/16"], **pools),
        P2P_CLUSTERS[1],
    ]
    nodes = [GW_NODES[0], GW_NODES[1], P2P_NODES[2]]
    plan = compute(clusters, nodes)
    assert {d["name"]: d["addr"] for d in plan.configs["g-gw"]["devices"]} == {
        "vx-bridge": "10.220.1.1/16",
        "vx-local": "10.210.1.1/16",
    }
    assert rules(plan.configs["g-gw"], "POSTROUTING")[:2] == [
        "-s 10.210.0.0/16 -o vx-bridge -j MASQUERADE",
        "-s 10.220.0.0/16 ! -o vx-bridge -j MASQUERADE",
    ]
    assert routes(plan.configs["b-n1"])["10.1.0.0/16"] == ("10.220.1.1", "vx-bridge")


# --- global CIDRs ----------------------------------------------------------------------------

SAME = ["10.99.0.0/16", "fd99::/48"]
GLOBAL_CLUSTERS = [
    cluster(
        "a",
        pods=SAME,
        services=["10.96.0.0/16"],
        globalCIDRsMap={"10.99.0.0/16": "10.201.0.0/16", "fd99::/48": "fd9a:1::/48"},
    ),
    cluster(
        "b",
        pods=SAME,
        services=["10.96.0.0/16"],
        globalCIDRsMap={
            "10.99.0.0/16": "10.202.0.0/16",
            "fd99::/48": "fd9a:2::/48",
            "10.96.0.0/16": "10.112.0.0/16",
        },
    ),
]
GLOBAL_NODES = [
    node("a", "n1", "192.168.1.1", "fd00:1::1", pods=["10.99.1.0/24", "fd99:0:0:1::/64"]),
    node("b", "n1", "192.168.2.1", "fd00:2::1", pods=["10.99.1.0/24", "fd99:0:0:1::/64"]),
]


def test_remote_routes_use_the_global_cidrs():
    plan = compute(GLOBAL_CLUSTERS, GLOBAL_NODES)
    assert routes(plan.configs["a-n1"]) == {
        "10.202.1.0/24": ("220.168.2.1", "vx-bridge"),
        "10.112.0.0/16": ("220.168.2.1", "vx-bridge"),
        "fd9a:2:0:1::/64": ("9470:2::1", "vx-bridge-6"),
    }
    assert routes(plan.configs["b-n1"]) == {
        "10.201.1.0/24": ("220.168.1.1", "vx-bridge"),
        "fd9a:1:0:1::/64": ("9470:1::1", "vx-bridge-6"),
    }


def test_unmapped_same_service_cidr_is_blocked_where_it_overlaps():
    # a's services are not mapped and equal b's real service CIDR: b cannot reach them
    plan = compute(GLOBAL_CLUSTERS, GLOBAL_NODES)
    assert "10.96.0.0/16" not in routes(plan.configs["b-n1"])
    message = (
        "10.96.0.0/16 of cluster a overlaps CIDRs of cluster b, so b cannot reach it; "
        "map one of them with globalCIDRsMap"
    )
    assert plan.problems == {"a": [message], "b": [message]}


def test_the_owning_node_netmaps_both_ways():
    plan = compute(GLOBAL_CLUSTERS, GLOBAL_NODES)
    assert plan.configs["b-n1"]["iptables"] == [
        nat("PREROUTING", "-d 10.112.0.0/16 -j NETMAP --to 10.96.0.0/16"),
        nat(
            "POSTROUTING",
            "-s 10.96.0.0/16 -m set --match-set kosmos-remote dst -j NETMAP --to 10.112.0.0/16",
        ),
        nat("PREROUTING", "-d 10.202.0.0/16 -j NETMAP --to 10.99.0.0/16"),
        nat(
            "POSTROUTING",
            "-s 10.99.0.0/16 -m set --match-set kosmos-remote dst -j NETMAP --to 10.202.0.0/16",
        ),
        nat("PREROUTING", "-d fd9a:2::/48 -j NETMAP --to fd99::/48"),
        nat(
            "POSTROUTING",
            "-s fd99::/48 -m set --match-set kosmos-remote6 dst -j NETMAP --to fd9a:2::/48",
        ),
        accept("10.99.0.0/16"),
        accept("fd99::/48", "kosmos-remote6"),
        *forward("vx-bridge", "vx-bridge-6"),
    ]


def test_global_map_on_a_gateway_cluster_is_applied_by_its_gateway_only():
    clusters = [
        cluster(
            "g",
            mode="gateway",
            family="ipv4",
            pods=["10.99.0.0/16"],
            globalCIDRsMap={"10.99.0.0/16": "10.201.0.0/16"},
        ),
        P2P_CLUSTERS[1],
    ]
    nodes = [GW_NODES[0], GW_NODES[1], P2P_NODES[2]]
    plan = compute(clusters, nodes)
    assert routes(plan.configs["b-n1"]) == {"10.201.0.0/16": ("220.168.1.1", "vx-bridge")}
    assert "-d 10.201.0.0/16 -j NETMAP --to 10.99.0.0/16" in rules(plan.configs["g-gw"])
    assert not [r for r in rules(plan.configs["g-n2"]) if "NETMAP" in r]


def test_the_outbound_netmap_needs_a_remote_set():
    # alone, a cluster has no remote CIDRs: the set does not exist, so no rule may match it
    plan = compute(GLOBAL_CLUSTERS[:1], GLOBAL_NODES[:1])
    assert rules(plan.configs["a-n1"], "POSTROUTING") == []
    assert rules(plan.configs["a-n1"], "PREROUTING") == [
        "-d 10.201.0.0/16 -j NETMAP --to 10.99.0.0/16",
        "-d fd9a:1::/48 -j NETMAP --to fd99::/48",
    ]


# --- conflicts -------------------------------------------------------------------------------


def test_overlapping_clusters_route_to_neither_and_both_are_told():
    clusters = [
        cluster("a", family="ipv4", pods=["10.1.0.0/16"]),
        cluster("b", family="ipv4", pods=["10.1.0.0/16"]),  # same as a, unmapped
        cluster("c", family="ipv4", pods=["10.3.0.0/16"]),
    ]
    nodes = [
        node("a", "n1", "192.168.1.1", pods=["10.1.1.0/24"]),
        node("b", "n1", "192.168.2.1", pods=["10.1.1.0/24"]),
        node("c", "n1", "192.168.3.1", pods=["10.3.1.0/24"]),
    ]
    plan = compute(clusters, nodes)
    # c cannot tell a's 10.1.1.0/24 from b's: it routes to neither
    assert routes(plan.configs["c-n1"]) == {}
    assert routes(plan.configs["a-n1"]) == {"10.3.1.0/24": ("220.168.3.1", "vx-bridge")}
    assert routes(plan.configs["b-n1"]) == {"10.3.1.0/24": ("220.168.3.1", "vx-bridge")}
    overlap = (
        "10.1.1.0/24 (a) overlaps 10.1.1.0/24 (b): neither is routed; "
        "give one cluster a globalCIDRsMap"
    )
    assert overlap in plan.problems["a"] and overlap in plan.problems["b"]
    assert "c" not in plan.problems


def test_a_remote_cidr_inside_own_cidrs_is_blocked_only_for_that_cluster():
    clusters = [
        cluster("a", family="ipv4", pods=["10.0.0.0/8"]),
        cluster("b", family="ipv4", pods=["10.2.0.0/16"]),
        cluster("c", family="ipv4", pods=["172.16.0.0/16"]),
    ]
    nodes = [
        node("a", "n1", "192.168.1.1", pods=["10.1.0.0/24"]),
        node("b", "n1", "192.168.2.1", pods=["10.2.0.0/24"]),
        node("c", "n1", "192.168.3.1", pods=["172.16.0.0/24"]),
    ]
    plan = compute(clusters, nodes)
    assert set(routes(plan.configs["a-n1"])) == {"172.16.0.0/24"}  # not b's 10.2.0.0/24
    assert set(routes(plan.configs["b-n1"])) == {"10.1.0.0/24", "172.16.0.0/24"}
    assert set(routes(plan.configs["c-n1"])) == {"10.1.0.0/24", "10.2.0.0/24"}
    assert sorted(plan.problems) == ["a", "b"]


def test_a_bridge_address_used_twice_gives_the_second_node_no_tunnel():
    clusters = [cluster("a", family="ipv4", pods=["10.1.0.0/16"]), P2P_CLUSTERS[1]]
    nodes = [
        node("a", "n1", "192.168.1.1", pods=["10.1.1.0/24"]),
        # same private underlay in another network: same vx-bridge address from 220.0.0.0/8
        node("b", "n1", "192.168.1.1", pods=["10.2.1.0/24"]),
        node("b", "n2", "192.168.2.2", pods=["10.2.2.0/24"]),
    ]
    plan = compute(clusters, nodes)
    assert plan.problems == {
        "b": [
            "ClusterNode b-n1 would get bridge address 220.168.1.1/8 already used by a-n1 "
            "(same underlay/elastic IP); it gets no cross-cluster tunnel"
        ]
    }
    assert "devices" not in plan.configs["b-n1"]
    assert "routes" not in plan.configs["b-n1"]
    # nobody routes to b-n1, b-n2 still works (b-n1 remains b's gateway: no b services here)
    assert set(routes(plan.configs["a-n1"])) == {"10.2.2.0/24"}


def test_an_elastic_ip_resolves_a_bridge_address_collision():
    nodes = [
        node("a", "n1", "192.168.1.1", pods=["10.1.1.0/24"]),
        node("b", "n1", "192.168.1.1", pods=["10.2.1.0/24"], eip="203.0.113.21"),
    ]
    plan = compute([cluster("a", family="ipv4", pods=["10.1.0.0/16"]), P2P_CLUSTERS[1]], nodes)
    assert plan.problems == {}
    assert routes(plan.configs["a-n1"]) == {
        "10.2.1.0/24": ("220.0.113.21", "vx-bridge"),
        "10.97.0.0/16": ("220.0.113.21", "vx-bridge"),
    }


# --- skipped nodes ----------------------------------------------------------------------------


def test_skipped_nodes_get_no_nodeconfig_and_the_plan_says_why():
    nodes = [*P2P_NODES[:2], node("b", "n1", "192.168.2.1", iface=""), node("z", "n1", "1.2.3.4")]
    plan = compute(P2P_CLUSTERS, nodes)
    assert sorted(plan.configs) == ["a-n1", "a-n2"]
    assert plan.skipped == {
        "b-n1": "its agent has not reported the tunnel interface yet",
        "z-n1": "Cluster 'z' does not exist or has ClusterLink disabled",
    }


def test_a_deleting_cluster_drops_out_of_everyones_plan():
    clusters = [P2P_CLUSTERS[0], cluster("b", family="ipv4", pods=["10.2.0.0/16"], deleting=True)]
    plan = compute(clusters, P2P_NODES)
    assert sorted(plan.configs) == ["a-n1", "a-n2"]
    assert "routes" not in plan.configs["a-n1"]
    assert sorted(plan.skipped) == ["b-n1", "b-n2"]


@pytest.mark.parametrize("family", ["ipv4", "all"])
def test_a_cluster_without_cidrs_still_gets_devices(family):
    clusters = [cluster("a", family=family), P2P_CLUSTERS[1]]
    nodes = [node("a", "n1", "192.168.1.1", "fd00::1"), P2P_NODES[2]]
    plan = compute(clusters, nodes)
    assert "vx-bridge" in devices(plan.configs["a-n1"])
    assert routes(plan.configs["b-n1"]) == {}
    assert set(routes(plan.configs["a-n1"])) == {"10.2.1.0/24", "10.97.0.0/16"}
