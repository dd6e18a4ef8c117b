"""The underlay: nodes of two clusters reach each other through the router namespace, the
host forwards nothing, and ``up`` puts back a route or router port that went missing."""

from __future__ import annotations

import ipaddress
import subprocess

from kosmos.local.nodes import layout, lifecycle, network
from kosmos.local.nodes.plan import RealNodePlan
from kosmos.net import wiring
from tests.integration.realnodes.conftest import RealEnv


def _ping(netns: str, address: str) -> bool:
    argv = ["ip", "netns", "exec", netns, "ping", "-c1", "-W1", address]
    return subprocess.run(argv, capture_output=True, check=False).returncode == 0


def _node(name: str) -> RealNodePlan:
    plan = layout.load(name)
    assert plan is not None, name
    return plan


def test_nodes_of_different_clusters_reach_each_other_through_the_router(real: RealEnv):
    one, two = _node("cluster1-real1"), _node("cluster2-real1")
    assert one.network.subnet != two.network.subnet
    assert _ping(one.netns, two.address) and _ping(two.netns, one.address)
    assert _ping(real.second.netns, two.address)  # a node added later has the routes too
    status = lifecycle.underlay_status()
    assert status is not None and status[0], status


def test_up_repairs_a_missing_route_and_router_port(real: RealEnv):
    one = _node("cluster1-real1")
    others = [n for n in network.recorded() if n.subnet != one.network.subnet]
    wiring.batch(one.netns, [f"route del {others[0].subnet}"])
    router = network.router_netns(network.recorded())
    wiring.batch(router, [f"link del {network.uplink(others[0]).link}"])
    status = lifecycle.underlay_status()
    assert status is not None and not status[0]
    assert others[0].subnet in status[1] and network.uplink(others[0]).link in status[1]
    network.ensure_underlay()  # what `up` runs (lifecycle.prepare)
    status = lifecycle.underlay_status()
    assert status is not None and status[0], status
    first_node = str(ipaddress.ip_network(others[0].subnet)[11])
    assert _ping(one.netns, first_node) and _ping(real.second.netns, first_node)
