import ipaddress

import pytest

from kosmos.local.nodes import network
from kosmos.local.nodes.plan import (
    REAL_NODE_KEY,
    REAL_NODE_TAINT,
    apiserver_sans,
    environment_name,
    real_node,
    real_nodes,
)
from kosmos.local.nodes.plan import network as network_of
from kosmos.local.topology import Options, PlanError, plan


def test_real_nodes_follow_the_option_per_cluster():
    clusters = plan(Options(real_nodes=2))
    env = environment_name(clusters)
    assert env == "kosmos-16400"
    assert [n.name for n in real_nodes(clusters[1], env)] == ["cluster1-real1", "cluster1-real2"]
    assert real_nodes(plan(Options())[0], env) == []


@pytest.mark.parametrize("count", [-1, 21])
def test_real_node_count_is_bounded(count):
    with pytest.raises(PlanError, match="--real-nodes"):
        plan(Options(real_nodes=count))


def test_networks_are_distinct_per_cluster_and_per_environment_and_clear_of_cluster_ranges():
    a = plan(Options(members=3, real_nodes=1))
    b = plan(Options(members=3, real_nodes=1, port_base=17300))
    nets = [ipaddress.ip_network(network_of(c).subnet) for c in a + b]
    assert len(set(nets)) == len(nets)
    ranges = [ipaddress.ip_network(c.pod_cidr) for c in a] + [
        ipaddress.ip_network(c.service_cidr) for c in a
    ]
    for net in nets:
        assert net.prefixlen == 24 and not any(net.overlaps(r) for r in ranges)
    names = [network_of(c).netns for c in a + b] + [network_of(c).host_link for c in a + b]
    assert len(set(names)) == len(names)
    assert all(len(network_of(c).host_link) <= 15 for c in a + b)  # a link name's limit


def test_highest_port_block_still_maps_inside_10_slash_8():
    top = plan(Options(members=0, port_base=65530 - 10))[0]
    assert ipaddress.ip_network(network_of(top).subnet).subnet_of(
        ipaddress.ip_network("10.0.0.0/8")
    )


def test_a_node_has_its_address_names_and_cgroup():
    host, member = plan(Options(real_nodes=1))[:2]
    node = real_node(member, 1, "kosmos-16400")
    assert node.address == str(ipaddress.ip_network(node.network.subnet)[11])
    assert node.network.host_address.endswith(".1")
    assert node.netns == "kosmos-16410-cluster1-real1"
    assert node.cgroup == "kosmos-16400/cluster1-real1"
    assert node.apiserver == f"https://{node.network.host_address}:16410"
    assert node.cluster_dns == "10.111.0.10"
    assert node.labels[REAL_NODE_KEY] == "true"
    assert node.taints == (REAL_NODE_TAINT,), "members' real nodes take only tolerating pods"
    assert real_node(host, 1, "kosmos-16400").taints == (), "the host's are plain workers"


def test_apiserver_certificate_names_the_relay_address_and_the_kubernetes_service():
    member = plan(Options(real_nodes=1))[1]
    assert apiserver_sans(member) == [network_of(member).host_address, "10.111.0.1"]


def test_relay_route_goes_from_the_network_to_the_loopback_apiserver():
    member = plan(Options(real_nodes=1))[1]
    net = network_of(member)
    assert network.relay_route(net) == f"{net.host_address}:16410=127.0.0.1:16410"


def test_underlay_routes_every_other_network_through_the_own_networks_router_port():
    nets = [network_of(c) for c in plan(Options(real_nodes=1))]
    host, member1, member2 = nets
    assert network.router_netns(nets) == "kosmos-16400-wan"
    assert network.router_address(member1) == str(ipaddress.ip_network(member1.subnet)[254])
    routes = network.underlay_routes(member1, nets)
    assert routes == {host.subnet: network.router_address(member1),
                      member2.subnet: network.router_address(member1)}  # fmt: skip
    assert network.underlay_routes(member1, [member1]) == {}


def test_each_network_has_its_own_uplink_on_the_router():
    nets = [network_of(c) for c in plan(Options(real_nodes=1))]
    links = [network.uplink(n) for n in nets]
    assert len({u.link for u in links}) == len(nets)
    assert all(len(u.link) <= 15 and u.peer == "wan" for u in links)
    assert links[1].address == f"{network.router_address(nets[1])}/24"


def test_real_nodes_of_two_environments_never_share_a_pod_range():
    """Each real node's /24 is routed in the host's namespace: environments must differ."""
    seen: dict[str, str] = {}
    for base in (16400, 17500, 18000, 18100, 18200, 18300, 18400):
        env = environment_name(plan(Options(port_base=base, real_nodes=2)))
        for cluster in plan(Options(port_base=base, real_nodes=2)):
            for node in real_nodes(cluster, env):
                cidr = node.node_pod_cidr
                assert cidr is not None and ipaddress.ip_network(cidr).subnet_of(
                    ipaddress.ip_network(cluster.pod_cidr)
                )
                assert int(cidr.split(".")[2]) >= 128  # above the kwok nodes' /24s
                assert cidr not in seen, (cidr, seen.get(cidr), f"{base} {node.name}")
                seen[cidr] = f"{base} {node.name}"
    third = real_node(plan(Options(real_nodes=3))[0], 3, "kosmos-16400")
    assert third.node_pod_cidr is None  # the controller manager picks one
