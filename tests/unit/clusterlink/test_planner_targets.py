"""Gateways, who owns which destination, and which destinations cannot be routed."""

import ipaddress

import pytest

from kosmos.clusterlink.planner import inputs, targets
from kosmos.clusterlink.planner.targets import Target
from tests.unit.clusterlink.linkcases import cluster, node

net = ipaddress.ip_network


def read(clusters, nodes):
    return inputs.read(clusters, nodes)


def v4(cluster_name, name, last, **kw):
    return node(cluster_name, name, f"192.168.{ord(cluster_name[0]) % 50}.{last}", **kw)


# --- gateway election ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "nodes", "want"),
    [
        # the flagged node with the newest epoch
        ("gateway", [("n1", True, 1), ("n2", True, 2), ("n3", False, 9)], "g-n2"),
        ("gateway", [("n1", True, 5), ("n2", True, 2)], "g-n1"),
        # same epoch: the name decides (the larger one, as max() over (epoch, name))
        ("gateway", [("n1", True, 3), ("n2", True, 3)], "g-n2"),
        # no epoch annotation counts as 0
        ("gateway", [("n1", True, None), ("n2", True, 1)], "g-n2"),
        ("gateway", [("n1", False, None), ("n2", True, None)], "g-n2"),
        # p2p: a flagged node is the gateway too, else the first node by name
        ("p2p", [("n2", False, None), ("n1", False, None), ("n3", False, None)], "g-n1"),
        ("p2p", [("n1", False, None), ("n3", True, 1)], "g-n3"),
        # gateway mode without a flagged node: none
        ("gateway", [("n1", False, None), ("n2", False, 4)], None),
    ],
)
def test_gateway_election(mode, nodes, want):
    objs = [
        node("g", n, f"192.168.0.{i + 1}", gateway=gw, epoch=epoch)
        for i, (n, gw, epoch) in enumerate(nodes)
    ]
    got = read([cluster("g", mode=mode, family="ipv4")], objs)
    chosen = targets.elect(got)
    assert (chosen["g"].name if "g" in chosen else None) == want
    if want is None:
        assert got.problems == {"g": ["no gateway elected yet: no Ready node runs an agent"]}
    else:
        assert got.problems == {}


def test_election_is_per_cluster():
    objs = [
        v4("a", "n1", 1, gateway=True, epoch=1),
        v4("b", "n1", 1, gateway=True, epoch=9),
        v4("b", "n2", 2),
        v4("c", "n1", 1),
    ]
    clusters = [
        cluster("a", mode="gateway", family="ipv4"),
        cluster("b", mode="gateway", family="ipv4"),
        cluster("c", mode="gateway", family="ipv4"),
        cluster("d", mode="gateway", family="ipv4"),  # no nodes at all: nothing to elect
    ]
    got = read(clusters, objs)
    chosen = targets.elect(got)
    assert {c: m.name for c, m in chosen.items()} == {"a": "a-n1", "b": "b-n1"}
    assert got.problems == {"c": ["no gateway elected yet: no Ready node runs an agent"]}


# --- what each node owns -------------------------------------------------------------------

GW = cluster(
    "gw",
    mode="gateway",
    family="ipv4",
    pods=["10.1.0.0/16"],
    services=["10.96.0.0/16"],
)
P2P = cluster("p", mode="p2p", family="ipv4", pods=["10.2.0.0/16"], services=["10.97.0.0/16"])
MAPPED = cluster(
    "m",
    mode="p2p",
    family="ipv4",
    pods=["10.3.0.0/16"],
    services=["10.98.0.0/16"],
    globalCIDRsMap={"10.3.0.0/16": "172.30.0.0/16", "10.98.0.0/16": "172.31.0.0/16"},
)
NODES = [
    node("gw", "n1", "192.168.1.1", gateway=True, pods=["10.1.1.0/24"]),
    node("gw", "n2", "192.168.1.2", pods=["10.1.2.0/24"]),
    node("p", "n1", "192.168.2.1", pods=["10.2.1.0/24"]),
    node("p", "n2", "192.168.2.2", pods=["10.2.2.0/24"]),
    node("m", "n1", "192.168.3.1", pods=["10.3.1.0/24"]),
]


@pytest.mark.parametrize(
    ("member", "services", "want"),
    [
        ("gw-n1", True, ["10.1.0.0/16", "10.96.0.0/16"]),  # gateway: whole cluster + services
        ("gw-n1", False, ["10.1.0.0/16"]),
        ("gw-n2", True, []),  # internal nodes receive nothing from other clusters
        ("p-n1", True, ["10.2.1.0/24", "10.97.0.0/16"]),  # p2p fallback gateway: + services
        ("p-n1", False, ["10.2.1.0/24"]),
        ("p-n2", True, ["10.2.2.0/24"]),
        ("m-n1", True, ["172.30.1.0/24", "172.31.0.0/16"]),  # as others see them: global
    ],
)
def test_owned(member, services, want):
    got = read([GW, P2P, MAPPED], NODES)
    gateways = targets.elect(got)
    m = got.members[member]
    owned = targets.owned(got.clusters[m.cluster], m, gateways.get(m.cluster), services=services)
    assert [str(c) for c in owned] == want


def test_collect_lists_every_target_sorted_with_the_service_flag():
    got = read([GW, P2P, MAPPED], NODES)
    found = targets.collect(got, targets.elect(got))
    assert [(str(t.cidr), t.cluster, t.owner, t.service) for t in found] == [
        ("10.1.0.0/16", "gw", "gw-n1", False),
        ("10.2.1.0/24", "p", "p-n1", False),
        ("10.2.2.0/24", "p", "p-n2", False),
        ("10.96.0.0/16", "gw", "gw-n1", True),
        ("10.97.0.0/16", "p", "p-n1", True),
        ("172.30.1.0/24", "m", "m-n1", False),
        ("172.31.0.0/16", "m", "m-n1", True),
    ]


def test_collect_keeps_only_the_families_of_the_cluster():
    clusters = [cluster("a", family="ipv4", pods=["10.1.0.0/16", "fd01::/48"])]
    objs = [node("a", "n1", "192.168.1.1", "fd00::1", pods=["10.1.1.0/24", "fd01:0:0:1::/64"])]
    got = read(clusters, objs)
    found = targets.collect(got, targets.elect(got))
    assert [str(t.cidr) for t in found] == ["10.1.1.0/24"]


# --- overlaps -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("items", "want"),
    [
        ([("10.0.0.0/16", "a"), ("10.1.0.0/16", "b")], []),  # adjacent, disjoint
        ([("10.0.0.0/16", "a"), ("10.0.255.0/24", "b")], [(0, 1)]),  # nested at the end
        ([("10.0.0.0/24", "a"), ("10.0.0.0/16", "b")], [(0, 1)]),  # same start
        ([("10.0.0.0/16", "a"), ("10.0.0.0/16", "a")], []),  # same tag: not a conflict
        ([("10.0.0.0/16", "a"), ("::/0", "b")], []),  # other family never overlaps
        ([("fd00::/48", "a"), ("fd00:0:0:1::/64", "b")], [(0, 1)]),
        # a big CIDR stays active over many small ones after it
        (
            [("10.0.0.0/8", "a"), ("10.1.0.0/16", "b"), ("10.2.0.0/16", "c"), ("11.0.0.0/8", "d")],
            [(0, 1), (0, 2)],
        ),
        # the sweep forgets CIDRs that have ended
        ([("10.0.0.0/24", "a"), ("10.0.1.0/24", "b"), ("10.0.1.128/25", "c")], [(1, 2)]),
        ([], []),
    ],
)
def test_overlaps(items, want):
    tagged = [(net(c), tag) for c, tag in items]
    assert sorted(tuple(sorted(p)) for p in targets.overlaps(tagged)) == want


def test_overlaps_agrees_with_the_pairwise_check():
    cidrs = [
        "10.0.0.0/8",
        "10.0.0.0/16",
        "10.0.128.0/17",
        "10.0.1.0/24",
        "10.1.0.0/16",
        "10.1.1.0/24",
        "192.168.0.0/16",
        "192.168.1.0/24",
        "fd00::/8",
        "fd01::/16",
        "fe80::/10",
    ]
    tagged = [(net(c), f"t{i % 3}") for i, c in enumerate(cidrs)]
    want = {
        (min(i, j), max(i, j))
        for i in range(len(cidrs))
        for j in range(len(cidrs))
        if i != j and tagged[i][1] != tagged[j][1] and tagged[i][0].overlaps(tagged[j][0])
    }
    got = {(min(i, j), max(i, j)) for i, j in targets.overlaps(tagged)}
    assert got == want


def _conflicts(clusters, nodes):
    got = read(clusters, nodes)
    found = targets.collect(got, targets.elect(got))
    dropped, blocked = targets.conflicts(got, found)
    return got, dropped, blocked


def _names(items):
    return sorted((str(t.cidr), t.cluster) for t in items)


def test_two_owners_of_overlapping_cidrs_are_both_dropped_and_both_clusters_told():
    clusters = [
        cluster("a", family="ipv4", pods=["10.1.0.0/16"]),
        cluster("b", family="ipv4", pods=["10.2.0.0/16"]),
        cluster("c", family="ipv4", pods=["10.3.0.0/16"]),
    ]
    nodes = [
        node("a", "n1", "192.168.1.1", pods=["10.9.0.0/24"]),  # a and b both claim 10.9.0.x
        node("b", "n1", "192.168.2.1", pods=["10.9.0.128/25"]),
        node("c", "n1", "192.168.3.1", pods=["10.3.1.0/24"]),
    ]
    got, dropped, blocked = _conflicts(clusters, nodes)
    assert _names(dropped) == [("10.9.0.0/24", "a"), ("10.9.0.128/25", "b")]
    assert blocked == set()
    message = (
        "10.9.0.0/24 (a) overlaps 10.9.0.128/25 (b): neither is routed; "
        "give one cluster a globalCIDRsMap"
    )
    assert got.problems == {"a": [message], "b": [message]}


def test_a_remote_cidr_inside_a_clusters_own_cidrs_is_blocked_only_for_that_cluster():
    clusters = [
        cluster("a", family="ipv4", pods=["10.0.0.0/8"]),  # a's pods cover b's
        cluster("b", family="ipv4", pods=["10.2.0.0/16"]),
        cluster("c", family="ipv4", pods=["172.16.0.0/16"]),
    ]
    nodes = [
        node("a", "n1", "192.168.1.1", pods=["10.1.0.0/24"]),
        node("b", "n1", "192.168.2.1", pods=["10.2.0.0/24"]),
        node("c", "n1", "192.168.3.1", pods=["172.16.0.0/24"]),
    ]
    got, dropped, blocked = _conflicts(clusters, nodes)
    assert dropped == set()
    # a cannot route into its own 10/8; b still reaches a's 10.1.0.0/24, c reaches both
    assert sorted((c, str(t.cidr)) for c, t in blocked) == [("a", "10.2.0.0/24")]
    message = (
        "10.2.0.0/24 of cluster b overlaps CIDRs of cluster a, so a cannot reach it; "
        "map one of them with globalCIDRsMap"
    )
    assert got.problems == {"a": [message], "b": [message]}
    assert "c" not in got.problems


def test_a_global_cidr_resolves_the_overlap():
    clusters = [
        cluster("a", family="ipv4", pods=["10.1.0.0/16"]),
        cluster(
            "b",
            family="ipv4",
            pods=["10.1.0.0/16"],
            globalCIDRsMap={"10.1.0.0/16": "172.16.0.0/16"},
        ),
    ]
    nodes = [
        node("a", "n1", "192.168.1.1", pods=["10.1.1.0/24"]),
        node("b", "n1", "192.168.2.1", pods=["10.1.1.0/24"]),
    ]
    got, dropped, blocked = _conflicts(clusters, nodes)
    # b is seen as 172.16.1.0/24 by a; a's 10.1.1.0/24 still lies in b's own 10.1.0.0/16
    assert dropped == set()
    assert sorted((c, str(t.cidr)) for c, t in blocked) == [("b", "10.1.1.0/24")]
    assert "a" in got.problems and "b" in got.problems


def test_sort_key_orders_by_family_then_address():
    ts = [
        Target(net("fd00::/64"), 6, "a", "a-n1"),
        Target(net("10.2.0.0/16"), 4, "a", "a-n1"),
        Target(net("10.10.0.0/16"), 4, "a", "a-n1"),
        Target(net("10.2.0.0/24"), 4, "b", "b-n1"),
    ]
    assert [str(t.cidr) for t in sorted(ts, key=Target.sort_key)] == [
        "10.2.0.0/16",
        "10.2.0.0/24",
        "10.10.0.0/16",
        "fd00::/64",
    ]
