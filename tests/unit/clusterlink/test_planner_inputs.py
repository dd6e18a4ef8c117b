"""Clusters and ClusterNodes read into planner inputs: what takes part, and why not."""

import ipaddress

import pytest

from kosmos.clusterlink.planner import inputs
from kosmos.clusterlink.planner.inputs import ClusterNet
from tests.unit.clusterlink.linkcases import cluster, compute, node

net = ipaddress.ip_network

A = cluster("a", pods=["10.1.0.0/16", "fd01::/48"], services=["10.96.0.0/16"])
V4 = cluster("v4", family="ipv4", pods=["10.4.0.0/16"])
V6 = cluster("v6", family="ipv6", pods=["fd06::/48"])
SAME_SIZE = "must map to a CIDR of the same family and size"


def read(*objs):
    clusters = [o for o in objs if "clusterName" not in o["spec"]]
    nodes = [o for o in objs if "clusterName" in o["spec"]]
    return inputs.read(clusters, nodes)


# --- Clusters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pods", "want"),
    [
        ([], (4, 6)),
        (["10.1.0.0/16"], (4,)),
        (["fd01::/48"], (6,)),
        (["10.1.0.0/16", "fd01::/48"], (4, 6)),
    ],
)
def test_ip_family_all_is_every_family_the_pods_use(pods, want):
    """An IPv4-only cluster joined with the default waits for no IPv6 address."""
    assert read(cluster("a", pods=pods)).clusters["a"].families == want


def test_cluster_is_read_with_the_crd_defaults():
    got = read(cluster("a", pods=["10.1.0.0/16"], services=["10.96.0.0/12"])).clusters["a"]
    assert got == ClusterNet(
        name="a",
        mode="p2p",
        families=(4,),  # "all": the families its pods use
        pod_cidrs=(net("10.1.0.0/16"),),
        service_cidrs=(net("10.96.0.0/12"),),
        global_map=(),
        local_pools={4: "210.0.0.0/8", 6: "9480::/16"},
        bridge_pools={4: "220.0.0.0/8", 6: "9470::/16"},
        encryption="auto",
        key_secret="clusterlink-tunnel-key",
        key_field="psk",
    )


@pytest.mark.parametrize(
    ("options", "field", "want"),
    [
        ({"networkType": "gateway"}, "mode", "gateway"),
        ({"ipFamily": "ipv4"}, "families", (4,)),
        ({"ipFamily": "ipv6"}, "families", (6,)),
        ({"ipFamily": "all"}, "families", (4,)),
        (
            {"localCIDRs": {"ip": "10.200.0.0/16", "ip6": "fd99::/32"}},
            "local_pools",
            {4: "10.200.0.0/16", 6: "fd99::/32"},
        ),
        (
            {"bridgeCIDRs": {"ip": "10.201.0.0/16", "ip6": "fd98::/32"}},
            "bridge_pools",
            {4: "10.201.0.0/16", 6: "fd98::/32"},
        ),
        ({"encryption": {"mode": "wireguard"}}, "encryption", "wireguard"),
        ({"encryption": {"keySecretRef": {"name": "k"}}}, "key_secret", "k"),
        ({"encryption": {"keySecretRef": {"name": "k"}}}, "key_field", "psk"),
        ({"encryption": {"keySecretRef": {"name": "k", "key": "master"}}}, "key_field", "master"),
        # the override wins over what discovery found
        ({"clusterPodCIDRs": ["10.9.0.0/16"]}, "pod_cidrs", (net("10.9.0.0/16"),)),
        ({"clusterPodCIDRs": []}, "pod_cidrs", (net("10.1.0.0/16"),)),
        # a CIDR with host bits set is read as its network
        ({"clusterPodCIDRs": ["10.9.1.1/16"]}, "pod_cidrs", (net("10.9.0.0/16"),)),
    ],
)
def test_cluster_options(options, field, want):
    obj = cluster("a", pods=["10.1.0.0/16"])
    obj["spec"]["clusterLinkOptions"] = {
        k: v for k, v in obj["spec"]["clusterLinkOptions"].items() if k not in options
    } | options
    assert getattr(read(obj).clusters["a"], field) == want


def _without_options(obj):
    del obj["spec"]["clusterLinkOptions"]
    return obj


def _disabled(obj):
    obj["spec"]["clusterLinkOptions"]["enable"] = False
    return obj


def _empty(obj):
    obj["spec"]["clusterLinkOptions"] = {}
    return obj


@pytest.mark.parametrize(
    "obj",
    [
        _without_options(cluster("a")),
        _disabled(cluster("a")),
        _empty(cluster("a")),
        cluster("a", deleting=True),
    ],
    ids=["no-link-options", "enable-false", "empty-options", "deleting"],
)
def test_clusters_without_clusterlink_take_no_part(obj):
    got = read(obj, node("a", "n1", "192.168.1.1", "fd00::1"))
    assert got.clusters == {}
    assert got.members == {}
    assert got.skipped == {"a-n1": "Cluster 'a' does not exist or has ClusterLink disabled"}


def test_enable_true_is_read():
    obj = cluster("a")
    obj["spec"]["clusterLinkOptions"]["enable"] = True
    assert "a" in read(obj).clusters


@pytest.mark.parametrize(
    ("status", "overrides", "kept", "problem"),
    [
        (
            {"podCIDRs": ["10.1.0.0/16", "10.1.0.0/33"]},
            {},
            ["10.1.0.0/16"],
            "pod CIDRs: '10.1.0.0/33' is not a CIDR; it is ignored",
        ),
        ({"podCIDRs": ["nope"]}, {}, [], "pod CIDRs: 'nope' is not a CIDR; it is ignored"),
        (
            {"serviceCIDRs": ["10.96.0.0/12", "10.96/x"]},
            {},
            ["10.96.0.0/12"],
            "service CIDRs: '10.96/x' is not a CIDR; it is ignored",
        ),
        (
            {"podCIDRs": ["10.1.0.0/16"]},
            {"clusterPodCIDRs": ["10.300.0.0/16", "10.2.0.0/16"]},
            ["10.2.0.0/16"],
            "pod CIDRs: '10.300.0.0/16' is not a CIDR; it is ignored",
        ),
    ],
)
def test_bad_cidrs_are_problems_and_the_rest_is_kept(status, overrides, kept, problem):
    obj = cluster("a", **overrides)
    obj["status"]["clusterLinkStatus"].update(status)
    got = read(obj)
    assert got.problems == {"a": [problem]}
    assert [str(c) for c in got.clusters["a"].real_cidrs] == kept


@pytest.mark.parametrize(
    ("mapping", "kept", "problem"),
    [
        ({"10.1.0.0/16": "172.16.0.0/16"}, [("10.1.0.0/16", "172.16.0.0/16")], None),
        ({"fd01::/48": "fd91::/48"}, [("fd01::/48", "fd91::/48")], None),
        (
            {"10.1.0.0/16": "172.16.0.0/24"},
            [],
            "globalCIDRsMap: 10.1.0.0/16 -> 172.16.0.0/24 " + SAME_SIZE,
        ),
        (
            {"10.1.0.0/16": "fd91::/16"},
            [],
            "globalCIDRsMap: 10.1.0.0/16 -> fd91::/16 " + SAME_SIZE,
        ),
        (
            {"10.1.0.0/16": "not-a-cidr"},
            [],
            "globalCIDRsMap: '10.1.0.0/16' -> 'not-a-cidr' is not a pair of CIDRs",
        ),
        (
            {"10.1/x": "172.16.0.0/16"},
            [],
            "globalCIDRsMap: '10.1/x' -> '172.16.0.0/16' is not a pair of CIDRs",
        ),
        # a bad entry does not take the good ones with it; pairs are read in sorted order
        (
            {"fd01::/48": "fd91::/48", "10.1.0.0/16": "172.16.0.0/15"},
            [("fd01::/48", "fd91::/48")],
            "globalCIDRsMap: 10.1.0.0/16 -> 172.16.0.0/15 " + SAME_SIZE,
        ),
        (
            {"fd01::/48": "fd91::/48", "10.1.0.0/16": "172.16.0.0/16"},
            [("10.1.0.0/16", "172.16.0.0/16"), ("fd01::/48", "fd91::/48")],
            None,
        ),
    ],
)
def test_global_cidrs_map(mapping, kept, problem):
    got = read(cluster("a", globalCIDRsMap=mapping))
    assert [(str(a), str(b)) for a, b in got.clusters["a"].global_map] == kept
    assert got.problems == ({"a": [problem]} if problem else {})


@pytest.mark.parametrize(
    ("cidr", "want"),
    [
        ("10.1.0.0/16", "172.16.0.0/16"),  # the mapped CIDR itself
        ("10.1.7.0/24", "172.16.7.0/24"),  # a node's part of it keeps its offset
        ("10.1.255.128/25", "172.16.255.128/25"),
        ("10.2.0.0/16", "10.2.0.0/16"),  # not mapped: as is
        ("10.0.0.0/8", "10.0.0.0/8"),  # bigger than the mapped CIDR: not a part of it
        ("fd01:0:0:5::/64", "fd91:0:0:5::/64"),
        ("fd02::/48", "fd02::/48"),
    ],
)
def test_seen_translates_through_the_global_map(cidr, want):
    obj = cluster("a", globalCIDRsMap={"10.1.0.0/16": "172.16.0.0/16", "fd01::/48": "fd91::/48"})
    assert str(read(obj).clusters["a"].seen(net(cidr))) == want


def test_problems_are_not_repeated():
    got = inputs.Inputs()
    got.problem("a", "x")
    got.problem("a", "x")
    got.problem("a", "y")
    assert got.problems == {"a": ["x", "y"]}


# --- ClusterNodes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "why"),
    [
        (
            node("a", "n1", "192.168.1.1", "fd00::1", iface=""),
            "its agent has not reported the tunnel interface yet",
        ),
        (node("a", "n1", ip6="fd00::1"), "no IPv4 address although the cluster uses IPv4"),
        (node("a", "n1", "192.168.1.1"), "no IPv6 address although the cluster uses IPv6"),
        (node("v4", "n1", ip6="fd00::1"), "no IPv4 address although the cluster uses IPv4"),
        (node("v6", "n1", "192.168.1.1"), "no IPv6 address although the cluster uses IPv6"),
        (
            node("nope", "n1", "192.168.1.1", "fd00::1"),
            "Cluster 'nope' does not exist or has ClusterLink disabled",
        ),
        (
            node("", "n1", "192.168.1.1", "fd00::1"),
            "Cluster '' does not exist or has ClusterLink disabled",
        ),
    ],
)
def test_nodes_that_cannot_take_part_say_why(obj, why):
    got = read(A, V4, V6, obj)
    assert got.members == {}
    assert got.skipped == {obj["metadata"]["name"]: why}


@pytest.mark.parametrize(
    "obj",
    [
        node("v4", "n1", "192.168.1.1"),  # an IPv4-only cluster needs no ip6
        node("v6", "n1", ip6="fd00::1"),  # and an IPv6-only one no ip
        node("a", "n1", "192.168.1.1", "fd00::1"),
    ],
)
def test_nodes_with_what_their_families_need_take_part(obj):
    got = read(A, V4, V6, obj)
    assert list(got.members) == [obj["metadata"]["name"]]
    assert got.skipped == {}


def test_member_fields():
    obj = node(
        "a",
        "n1",
        "192.168.1.1",
        "fd00::1",
        pods=["10.1.1.0/24", "fd01:0:0:1::/64"],
        gateway=True,
        epoch=7,
        eip="203.0.113.1",
        iface="ens3",
        key="d2lyZWd1YXJkLXB1YmxpYy1rZXktb2YtYS1uMS0wMDA=",
    )
    member = read(A, obj).members["a-n1"]
    assert member == inputs.Member(
        name="a-n1",
        cluster="a",
        interface="ens3",
        ip="192.168.1.1",
        ip6="fd00::1",
        elastic_ip="203.0.113.1",
        pod_cidrs=(net("10.1.1.0/24"), net("fd01:0:0:1::/64")),
        gateway=True,
        epoch=7,
        public_key="d2lyZWd1YXJkLXB1YmxpYy1rZXktb2YtYS1uMS0wMDA=",
    )


@pytest.mark.parametrize(("epoch", "want"), [(None, 0), (3, 3), ("12", 12), ("soon", 0), ("", 0)])
def test_gateway_epoch_annotation(epoch, want):
    member = read(A, node("a", "n1", "192.168.1.1", "fd00::1", epoch=epoch)).members["a-n1"]
    assert member.epoch == want


def test_a_node_pod_cidr_that_does_not_parse_is_a_problem_of_its_cluster():
    obj = node("a", "n1", "192.168.1.1", "fd00::1", pods=["10.1.1.0/24", "10.1.2.0/40"])
    got = read(A, obj)
    assert got.members["a-n1"].pod_cidrs == (net("10.1.1.0/24"),)
    assert got.problems == {
        "a": ["ClusterNode a-n1 podCIDRs: '10.1.2.0/40' is not a CIDR; it is ignored"]
    }


@pytest.mark.parametrize(
    ("eip", "family", "want"),
    [
        ("", 4, "192.168.1.1"),
        ("", 6, "fd00::1"),
        ("203.0.113.1", 4, "203.0.113.1"),
        ("203.0.113.1", 6, "fd00::1"),  # an IPv4 elastic IP says nothing about IPv6
        ("2001:db8::1", 4, "192.168.1.1"),
        ("2001:db8::1", 6, "2001:db8::1"),
    ],
)
def test_reachable_is_the_elastic_ip_of_the_family(eip, family, want):
    member = read(A, node("a", "n1", "192.168.1.1", "fd00::1", eip=eip)).members["a-n1"]
    assert member.reachable(family) == want
    assert member.underlay(family) == ("192.168.1.1" if family == 4 else "fd00::1")


def test_read_does_not_depend_on_the_order_of_objects():
    objs = [
        A,
        V4,
        node("a", "n2", "192.168.1.2", "fd00::2"),
        node("v4", "n1", "192.168.4.1"),
        node("a", "n1", "192.168.1.1", "fd00::1"),
    ]
    first = read(*objs)
    again = read(*reversed(objs))
    assert list(first.members) == list(again.members) == ["a-n1", "a-n2", "v4-n1"]
    assert list(first.clusters) == list(again.clusters) == ["a", "v4"]


@pytest.mark.parametrize(
    ("obj", "why"),
    [
        # each of these passes the CRD (isIP) and used to fail the whole plan with ValueError
        (node("a", "n1", "fd00::9", "fd00::1"), "its ip 'fd00::9' is not an IPv4 address"),
        (
            node("a", "n1", "192.168.1.1", "192.168.1.9"),
            "its ip6 '192.168.1.9' is not an IPv6 address",
        ),
        (node("v6", "n1", "fd00::9", "fd00::1"), "its ip 'fd00::9' is not an IPv4 address"),
        (
            node("a", "n1", "192.168.1.1", "fd00::1", eip="nope"),
            "its elasticIP 'nope' is not an IP address",
        ),
        (node("v4", "n1", "192.168.1"), "its ip '192.168.1' is not an IPv4 address"),
    ],
)
def test_a_node_address_of_the_wrong_family_leaves_the_node_out(obj, why):
    got = read(A, V4, V6, obj)
    assert got.members == {}
    assert got.skipped == {obj["metadata"]["name"]: why}


def test_a_node_address_of_the_wrong_family_does_not_fail_the_plan():
    good = node("v4", "n1", "192.168.4.1", pods=["10.4.1.0/24"])
    bad = node("v4", "n2", "fd00::9", pods=["10.4.2.0/24"])
    plan = compute([V4, cluster("w", family="ipv4", pods=["10.5.0.0/16"])], [good, bad])
    assert sorted(plan.configs) == ["v4-n1"]
    assert plan.skipped == {"v4-n2": "its ip 'fd00::9' is not an IPv4 address"}


@pytest.mark.parametrize(
    ("options", "local", "bridge", "problem"),
    [
        # each of these passes the CRD (isCIDR) and used to fail the whole plan with ValueError
        (
            {"localCIDRs": {"ip": "fd00::/64", "ip6": "fd01::/64"}},
            {4: "210.0.0.0/8", 6: "fd01::/64"},
            {4: "220.0.0.0/8", 6: "9470::/16"},
            "localCIDRs.ip: 'fd00::/64' is not an IPv4 CIDR; 210.0.0.0/8 is used",
        ),
        (
            {"bridgeCIDRs": {"ip": "10.220.0.0/16", "ip6": "10.221.0.0/16"}},
            {4: "210.0.0.0/8", 6: "9480::/16"},
            {4: "10.220.0.0/16", 6: "9470::/16"},
            "bridgeCIDRs.ip6: '10.221.0.0/16' is not an IPv6 CIDR; 9470::/16 is used",
        ),
        (
            {"bridgeCIDRs": {"ip": "220.0.0.0/33", "ip6": "9470::/16"}},
            {4: "210.0.0.0/8", 6: "9480::/16"},
            {4: "220.0.0.0/8", 6: "9470::/16"},
            "bridgeCIDRs.ip: '220.0.0.0/33' is not an IPv4 CIDR; 220.0.0.0/8 is used",
        ),
        # a pool the apiserver would have defaulted
        ({"localCIDRs": {"ip": "10.210.0.0/16"}}, {4: "10.210.0.0/16", 6: "9480::/16"}, None, None),
    ],
)
def test_device_pools_of_the_wrong_family_are_problems_and_the_default_is_used(
    options, local, bridge, problem
):
    got = read(cluster("a", **options))
    assert got.clusters["a"].local_pools == local
    if bridge:
        assert got.clusters["a"].bridge_pools == bridge
    assert got.problems == ({"a": [problem]} if problem else {})


def test_a_device_pool_of_the_wrong_family_does_not_fail_the_plan():
    bad = cluster(
        "v4",
        family="ipv4",
        pods=["10.4.0.0/16"],
        bridgeCIDRs={"ip": "fd00::/64", "ip6": "fd01::/64"},
    )
    plan = compute([bad], [node("v4", "n1", "192.168.4.1", pods=["10.4.1.0/24"])])
    assert plan.configs["v4-n1"]["devices"][0]["addr"] == "220.168.4.1/8"
    assert plan.problems == {
        "v4": ["bridgeCIDRs.ip: 'fd00::/64' is not an IPv4 CIDR; 220.0.0.0/8 is used"]
    }
