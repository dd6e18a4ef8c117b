"""The plan's encryption decisions, its determinism, and that the apiserver accepts it."""

import hashlib
import ipaddress
import json
import random

import pytest

from kosmos.clusterlink.planner import plan as planmod
from tests.unit.clusterlink import test_planner_plan as scenarios
from tests.unit.clusterlink.crdcheck import nodeconfig_errors
from tests.unit.clusterlink.linkcases import cluster, compute, node, routes

KEY_REF = {"name": "clusterlink-tunnel-key", "namespace": "kosmos-system", "key": "psk"}


def pair(mode_a="auto", mode_b="auto", eip_a="", eip_b="", **b_node):
    clusters = [
        cluster(
            "a",
            family="ipv4",
            pods=["10.1.0.0/16"],
            services=["10.96.0.0/16"],
            encryption={"mode": mode_a},
        ),
        cluster(
            "b",
            family="ipv4",
            pods=["10.2.0.0/16"],
            services=["10.97.0.0/16"],
            encryption={"mode": mode_b},
        ),
    ]
    nodes = [
        node("a", "n1", "192.168.1.1", pods=["10.1.1.0/24"], eip=eip_a),
        node("b", "n1", "192.168.2.1", pods=["10.2.1.0/24"], eip=eip_b, **b_node),
    ]
    return compute(clusters, nodes)


EA, EB = "203.0.113.11", "203.0.113.21"


@pytest.mark.parametrize(
    ("mode_a", "mode_b", "eip_a", "eip_b", "want"),
    [
        ("auto", "auto", EA, EB, "ipsec"),  # the seed: both ends with elastic IPs
        ("auto", "auto", EA, "", ""),  # auto needs both
        ("auto", "auto", "", EB, ""),
        ("auto", "auto", "", "", ""),
        ("ipsec", "auto", "", "", "ipsec"),  # one side asking is enough
        ("auto", "ipsec", "", "", "ipsec"),
        ("wireguard", "auto", "", "", "wireguard"),
        ("ipsec", "wireguard", EA, EB, "wireguard"),  # wireguard wins over ipsec
        ("none", "auto", EA, EB, ""),  # none wins over everything
        ("auto", "none", EA, EB, ""),
        ("none", "ipsec", "", "", ""),
        ("wireguard", "none", "", "", ""),
    ],
)
def test_encryption_decision(mode_a, mode_b, eip_a, eip_b, want):
    plan = pair(mode_a, mode_b, eip_a, eip_b)
    for here, there in (("a-n1", "b-n1"), ("b-n1", "a-n1")):
        spec = plan.configs[here]
        tunnels = spec.get("tunnels", [])
        if want:
            assert [(t["name"], t["type"]) for t in tunnels] == [(there, want)]
            assert "routes" not in spec and "fdbs" not in spec and "arps" not in spec
        else:
            assert tunnels == []
            assert len(spec["routes"]) == 2  # pods + services over VXLAN


def test_an_encrypted_tunnel_carries_pod_cidrs_between_elastic_ips():
    plan = pair(eip_a=EA, eip_b=EB)
    assert plan.configs["a-n1"]["tunnels"] == [
        {
            "name": "b-n1",
            "type": "ipsec",
            "localAddress": "192.168.1.1",  # own underlay (the elastic IP is NATed to it)
            "remoteAddress": EB,
            "localID": EA,
            "remoteID": EB,
            "localSubnets": ["10.1.1.0/24"],  # a-n1 owns a's services too, but not in here
            "remoteSubnets": ["10.2.1.0/24"],  # nor b's 10.97.0.0/16
            "keySecretRef": KEY_REF,
        }
    ]
    # the remote set still lists the peer's pods (no masquerade toward them), not its services
    assert plan.configs["a-n1"]["ipsets"] == [
        {"name": "kosmos-remote", "type": "hash:net", "entries": ["10.2.1.0/24"]}
    ]


def test_without_elastic_ips_the_tunnel_runs_between_underlay_addresses():
    spec = pair("ipsec").configs["b-n1"]
    (tunnel,) = spec["tunnels"]
    assert (tunnel["localAddress"], tunnel["remoteAddress"]) == ("192.168.2.1", "192.168.1.1")
    assert (tunnel["localID"], tunnel["remoteID"]) == ("192.168.2.1", "192.168.1.1")


def test_the_peer_public_key_is_passed_on():
    plan = pair("wireguard", key="cGVlci1iLW4xLXB1YmxpYy1rZXktMDAwMDAwMDAwMDA=")
    (to_b,) = plan.configs["a-n1"]["tunnels"]
    assert to_b["remotePublicKey"] == "cGVlci1iLW4xLXB1YmxpYy1rZXktMDAwMDAwMDAwMDA="
    (to_a,) = plan.configs["b-n1"]["tunnels"]
    assert "remotePublicKey" not in to_a  # a-n1 has not published one yet


def test_both_ends_name_the_key_secret_of_the_lexicographically_smaller_cluster():
    clusters = [
        cluster(
            "zeta",
            family="ipv4",
            pods=["10.1.0.0/16"],
            encryption={"mode": "ipsec", "keySecretRef": {"name": "zeta-key"}},
        ),
        cluster(
            "alpha",
            family="ipv4",
            pods=["10.2.0.0/16"],
            encryption={"keySecretRef": {"name": "alpha-key", "key": "master"}},
        ),
        cluster("mid", family="ipv4", pods=["10.3.0.0/16"], encryption={"mode": "ipsec"}),
    ]
    nodes = [
        node("zeta", "n1", "192.168.1.1", pods=["10.1.1.0/24"]),
        node("alpha", "n1", "192.168.2.1", pods=["10.2.1.0/24"]),
        node("mid", "n1", "192.168.3.1", pods=["10.3.1.0/24"]),
    ]
    plan = compute(clusters, nodes)
    refs = {
        (name, t["name"]): t["keySecretRef"]
        for name, spec in plan.configs.items()
        for t in spec.get("tunnels", [])
    }
    alpha = {"name": "alpha-key", "namespace": "kosmos-system", "key": "master"}
    assert refs == {
        ("zeta-n1", "alpha-n1"): alpha,
        ("alpha-n1", "zeta-n1"): alpha,
        ("zeta-n1", "mid-n1"): KEY_REF,  # mid names no Secret: the default one
        ("mid-n1", "zeta-n1"): KEY_REF,
        ("alpha-n1", "mid-n1"): alpha,
        ("mid-n1", "alpha-n1"): alpha,
    }


def test_encryption_is_decided_per_node_pair():
    clusters = [
        cluster("a", family="ipv4", pods=["10.1.0.0/16"]),
        cluster("b", family="ipv4", pods=["10.2.0.0/16"]),
    ]
    nodes = [
        node("a", "n1", "192.168.1.1", pods=["10.1.1.0/24"], eip=EA),
        node("a", "n2", "192.168.1.2", pods=["10.1.2.0/24"]),  # no elastic IP: plain VXLAN
        node("b", "n1", "192.168.2.1", pods=["10.2.1.0/24"], eip=EB),
    ]
    plan = compute(clusters, nodes)
    assert [t["name"] for t in plan.configs["a-n1"]["tunnels"]] == ["b-n1"]
    assert "tunnels" not in plan.configs["a-n2"]
    assert routes(plan.configs["a-n2"]) == {"10.2.1.0/24": ("220.0.113.21", "vx-bridge")}
    spec = plan.configs["b-n1"]
    assert [t["name"] for t in spec["tunnels"]] == ["a-n1"]
    assert routes(spec) == {"10.1.2.0/24": ("220.168.1.2", "vx-bridge")}


def test_a_gateway_cluster_encrypts_at_its_gateway():
    clusters = [
        cluster(
            "g", mode="gateway", family="ipv4", pods=["10.1.0.0/16"], services=["10.96.0.0/16"]
        ),
        cluster("p", family="ipv4", pods=["10.2.0.0/16"]),
    ]
    nodes = [
        node("g", "gw", "192.168.1.1", gateway=True, eip=EA),
        node("g", "n2", "192.168.1.2"),
        node("p", "n1", "192.168.2.1", pods=["10.2.1.0/24"], eip=EB),
    ]
    plan = compute(clusters, nodes)
    (tunnel,) = plan.configs["g-gw"]["tunnels"]
    assert tunnel["localSubnets"] == ["10.1.0.0/16"]  # the whole cluster, no services
    assert tunnel["remoteSubnets"] == ["10.2.1.0/24"]
    # internal nodes still reach the peer's pods through their gateway
    assert routes(plan.configs["g-n2"])["10.2.1.0/24"] == ("210.168.1.1", "vx-local")
    assert "tunnels" not in plan.configs["g-n2"]


def test_internal_nodes_do_not_send_an_encrypted_peers_services_to_their_gateway():
    # The gateway carries only pod CIDRs through the tunnel and has no route for the peer's
    # services; internal nodes used to route them to it anyway, and the gateway's main
    # table would have sent them out of its default route in the clear.
    clusters = [
        cluster(
            "g", mode="gateway", family="ipv4", pods=["10.1.0.0/16"], services=["10.96.0.0/16"]
        ),
        cluster("p", family="ipv4", pods=["10.2.0.0/16"], services=["10.97.0.0/16"]),
    ]
    nodes = [
        node("g", "gw", "192.168.1.1", gateway=True, eip=EA),
        node("g", "n2", "192.168.1.2"),
        node("p", "n1", "192.168.2.1", pods=["10.2.1.0/24"], eip=EB),
    ]
    plan = compute(clusters, nodes)
    gateway, internal = plan.configs["g-gw"], plan.configs["g-n2"]
    assert "routes" not in gateway
    assert routes(internal) == {"10.2.1.0/24": ("210.168.1.1", "vx-local")}
    assert internal["ipsets"] == gateway["ipsets"]  # the same remote CIDRs everywhere
    # without encryption the services go the VXLAN way, from internal nodes too
    plain = compute(
        [
            clusters[0],
            cluster(
                "p",
                family="ipv4",
                pods=["10.2.0.0/16"],
                services=["10.97.0.0/16"],
                encryption={"mode": "none"},
            ),
        ],
        nodes,
    )
    assert set(routes(plain.configs["g-n2"])) == {"10.2.1.0/24", "10.97.0.0/16"}
    assert set(routes(plain.configs["g-gw"])) == {"10.2.1.0/24", "10.97.0.0/16"}


@pytest.mark.parametrize(
    ("peer", "want"),
    [
        ("b-n1", "b-n1"),
        ("x" * 63, "x" * 63),
        ("x" * 64, "x" * 54 + "-" + hashlib.sha256(b"x" * 64).hexdigest()[:8]),
    ],
)
def test_tunnel_name_fits_the_crd(peer, want):
    assert planmod.tunnel_name(peer) == want
    assert len(planmod.tunnel_name(peer)) <= 63


# --- determinism -----------------------------------------------------------------------------

MIXED_CLUSTERS = [
    *scenarios.GW_CLUSTERS,
    *scenarios.GLOBAL_CLUSTERS,
    scenarios.DUAL2,
    scenarios.ONLY6,
    cluster("w", family="ipv4", pods=["10.50.0.0/16"], encryption={"mode": "wireguard"}),
    cluster("x", family="ipv4", pods=["10.1.5.0/24"]),  # overlaps g
]
MIXED_NODES = [
    *scenarios.GW_NODES,
    *scenarios.GLOBAL_NODES,
    scenarios.DUAL_NODES[1],
    scenarios.DUAL_NODES[3],
    node(
        "w",
        "n1",
        "192.168.50.1",
        pods=["10.50.1.0/24"],
        key="d2cta2V5LW9mLXctbjEtMDAwMDAwMDAwMDAwMDA=",
    ),
    node("x", "n1", "192.168.60.1", pods=["10.1.5.0/24"], eip="203.0.113.60"),
    node("x", "n2", "192.168.60.2", pods=["10.1.6.0/24"], gateway=True, epoch=1),
]


def _everything(plan):
    return json.dumps(
        {
            "configs": plan.configs,
            "problems": plan.problems,
            "gateways": plan.gateways,
            "skipped": plan.skipped,
        }
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_same_input_in_another_order_gives_the_same_plan(seed):
    first = compute(MIXED_CLUSTERS, MIXED_NODES)
    clusters, nodes = list(MIXED_CLUSTERS), list(MIXED_NODES)
    rng = random.Random(seed)
    rng.shuffle(clusters)
    rng.shuffle(nodes)
    assert _everything(compute(clusters, nodes)) == _everything(first)


def test_recomputing_gives_the_same_plan():
    assert _everything(compute(MIXED_CLUSTERS, MIXED_NODES)) == _everything(
        compute(MIXED_CLUSTERS, MIXED_NODES)
    )


def test_lists_are_sorted():
    plan = compute(MIXED_CLUSTERS, MIXED_NODES)
    assert list(plan.configs) == sorted(plan.configs)
    for spec in plan.configs.values():
        cidrs = [r["cidr"] for r in spec.get("routes", [])]
        assert cidrs == sorted(cidrs) and len(set(cidrs)) == len(cidrs)
        fdbs = [(f["dev"], f["ip"], f["mac"]) for f in spec.get("fdbs", [])]
        assert fdbs == sorted(set(fdbs))
        arps = [(a["dev"], a["ip"]) for a in spec.get("arps", [])]
        assert arps == sorted(set(arps))
        for s in spec.get("ipsets", []):
            assert s["entries"] == sorted(set(s["entries"]))
        names = [t["name"] for t in spec.get("tunnels", [])]
        assert names == sorted(names)
        for t in spec.get("tunnels", []):
            assert t["localSubnets"] == sorted(set(t["localSubnets"]), key=_net_key)
            assert t["remoteSubnets"] == sorted(set(t["remoteSubnets"]))


def _net_key(cidr):
    net = ipaddress.ip_network(cidr)
    return (net.version, int(net.network_address), net.prefixlen)


def test_the_mixed_plan_has_what_it_is_meant_to_exercise():
    """Guards the determinism scenario: it must keep covering every kind of entry."""
    plan = compute(MIXED_CLUSTERS, MIXED_NODES)
    kinds = {k for spec in plan.configs.values() for k in spec}
    assert kinds == {"devices", "routes", "fdbs", "arps", "iptables", "ipsets", "tunnels"}
    assert set(plan.problems) >= {"g", "x"}


# --- the apiserver accepts every NodeConfig ---------------------------------------------------

PLANS = {
    "p2p": (scenarios.P2P_CLUSTERS, scenarios.P2P_NODES),
    "gateway": (scenarios.GW_CLUSTERS, scenarios.GW_NODES),
    "dual": (
        [scenarios.DUAL, scenarios.DUAL2, scenarios.ONLY4, scenarios.ONLY6],
        scenarios.DUAL_NODES,
    ),
    "global": (scenarios.GLOBAL_CLUSTERS, scenarios.GLOBAL_NODES),
    "mixed": (MIXED_CLUSTERS, MIXED_NODES),
}


@pytest.mark.parametrize("name", sorted(PLANS))
def test_every_nodeconfig_spec_is_accepted_by_the_crd_schema(name):
    plan = compute(*PLANS[name])
    assert plan.configs
    for node_name, spec in plan.configs.items():
        assert nodeconfig_errors(spec) == [], node_name


@pytest.mark.parametrize(
    ("modes", "eips"),
    [
        (("auto", "auto"), (EA, EB)),
        (("ipsec", "auto"), ("", "")),
        (("wireguard", "none"), ("", "")),
    ],
)
def test_encrypted_nodeconfigs_are_accepted_by_the_crd_schema(modes, eips):
    plan = pair(*modes, *eips, key="cGVlci1iLW4xLXB1YmxpYy1rZXktMDAwMDAwMDAwMDA=")
    for spec in plan.configs.values():
        assert nodeconfig_errors(spec) == []


@pytest.mark.parametrize(
    ("path", "value", "says"),
    [
        (("devices", 0, "mac"), "b6:80:a3:2b:d1", "does not match"),
        (("devices", 0, "name"), "vx-bridge-too-long", "does not match"),
        (("devices", 0, "addr"), "220.168.1.1", "must be a CIDR"),
        (("devices", 0, "id"), 1 << 24, "out of"),
        (("devices", 0, "id"), -1, "out of"),
        (("devices", 0, "port"), 0, "out of"),
        (("devices", 0, "port"), "4876", "not of type integer"),
        (("devices", 0, "type"), "geneve", "not in"),
        (("routes", 0, "gw"), "220.168.2.300", "must be an IP"),
        (("routes", 0, "cidr"), "10.2.1.0/33", "must be a CIDR"),
        (("fdbs", 0, "ip"), "fe80::1%eth0", "must be an IP"),
        (("routes", 0, "via"), "x", "unknown field via"),
        (("iptables", 0, "table"), "security", "not in"),
    ],
)
def test_crdcheck_refuses_what_the_apiserver_would(path, value, says):
    spec = json.loads(json.dumps(compute(*PLANS["p2p"]).configs["a-n1"]))
    target = spec
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    found = nodeconfig_errors(spec)
    assert len(found) == 1 and says in found[0], found


def test_crdcheck_refuses_missing_required_fields_and_empty_selectors():
    spec = json.loads(json.dumps(pair("ipsec").configs["a-n1"]))
    spec["tunnels"][0]["localSubnets"] = []
    del spec["tunnels"][0]["keySecretRef"]
    found = nodeconfig_errors(spec)
    assert any("fewer than 1 items" in e for e in found), found
    assert any("missing keySecretRef" in e for e in found), found


@pytest.mark.parametrize("mode", ["ipsec", "wireguard"])
def test_a_node_without_pod_cidrs_gets_no_tunnel_and_a_valid_nodeconfig(mode):
    # b-n1 owns no pod CIDR (its CNI has not given it one yet); it used to get tunnels with
    # empty localSubnets, which the CRD refuses (the apply of its whole NodeConfig failed).
    clusters = [
        cluster("a", family="ipv4", pods=["10.1.0.0/16"], encryption={"mode": mode}),
        cluster("b", family="ipv4", pods=["10.2.0.0/16"], services=["10.97.0.0/16"]),
    ]
    nodes = [
        node("a", "n1", "192.168.1.1", pods=["10.1.1.0/24"]),
        node("b", "n1", "192.168.2.1"),
        node("b", "n2", "192.168.2.2", pods=["10.2.2.0/24"]),
    ]
    plan = compute(clusters, nodes)
    assert "tunnels" not in plan.configs["b-n1"]
    assert [t["name"] for t in plan.configs["b-n2"]["tunnels"]] == ["a-n1"]
    assert [t["name"] for t in plan.configs["a-n1"]["tunnels"]] == ["b-n2"]
    for spec in plan.configs.values():
        assert nodeconfig_errors(spec) == []
