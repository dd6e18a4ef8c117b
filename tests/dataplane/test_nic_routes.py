"""Routes over the node's own NIC in Kosmos's table (direct routing), against a real kernel.

Under direct routing an internal node routes remote CIDRs to its gateway's node address over
``eth0`` instead of through ``vx-local``. The NIC is not the agent's: it is never created or
deleted, but the routes over it in table 200 are the agent's like any other -- added without
``onlink`` (so the kernel refuses a gateway off the NIC's subnets, and the report says why),
replaced on a gateway or device change without leaving the old one behind, and removed.

One node of the testbed: ``eth0`` holds 192.168.10.11/24 and fd00:10::11/64, so 192.168.10.12
and fd00:10::12 are gateways on its segment and 192.168.20.12, fd00:20::12 are not.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest

from kosmos.net.objects import ROUTE_TABLE, Route, Rule, Vxlan
from kosmos.net.state import NodeState
from kosmos.net.sync import Dataplane
from tests.dataplane.testbed import Build, ClusterSpec, NodeSpec, ip, run

NIC4 = Route("198.51.100.0/24", "192.168.10.12", "eth0")
NIC6 = Route("2001:db8:100::/64", "fd00:10::12", "eth0")
OFF4 = Route("198.51.101.0/24", "192.168.20.12", "eth0")  # another cluster's subnet
OFF6 = Route("2001:db8:101::/64", "fd00:20::12", "eth0")
RULES = frozenset({Rule(4), Rule(6)})
VX_LOCAL = Vxlan(
    "vx-local", 55, 4877, "eth0", "192.168.10.11", "8a:c2:92:77:bc:35", "210.168.1.1/8", 1450
)


@pytest.fixture
async def node(testbed: Build) -> AsyncIterator[tuple[str, Dataplane]]:
    """One node's namespace and a Dataplane on it (closed afterwards)."""
    me = NodeSpec("a", "n1", 1, "10.1.1.0/24", "fd01:0:0:1::/64")
    ns = testbed([ClusterSpec("a", 1, [me])]).node_ns(me)
    plane = Dataplane(ns)
    try:
        yield ns, plane
    finally:
        await plane.close()


def table(ns: str, which: str = str(ROUTE_TABLE)) -> list[str]:
    """The kernel's own view (``ip route``) of a table, both families, one route a line,
    without what the agent does not set (protocol, IPv6 metric and preference)."""
    lines = "".join(  # a table no route of a family was ever in "does not exist"
        run("ip", "-n", ns, *family, "route", "show", "table", which, check=False)
        for family in ((), ("-6",))
    )
    return [_route_words(line) for line in lines.splitlines() if line.strip()]


def _route_words(line: str) -> str:
    return re.sub(r" (proto|metric|pref) \S+", "", " ".join(line.split()))


def state(*routes: Route, devices: frozenset[Vxlan] = frozenset()) -> NodeState:
    return NodeState(devices=devices, routes=frozenset(routes), rules=RULES)


async def test_a_route_over_the_nic_is_added_kept_replaced_and_removed(
    node: tuple[str, Dataplane],
) -> None:
    ns, plane = node
    report = await plane.sync(state(NIC4, NIC6))
    assert report.ok, report.failures
    assert report.changes == 4  # two rules, two routes
    lines = table(ns)
    assert any(line.startswith("198.51.100.0/24 via 192.168.10.12 dev eth0") for line in lines)
    assert any(line.startswith("2001:db8:100::/64 via fd00:10::12 dev eth0") for line in lines)
    assert not any("onlink" in line for line in lines), lines  # the kernel checked the gateway
    assert (await plane.read()).routes == {NIC4, NIC6}  # a dumped route equals the wanted one

    again = await plane.sync(state(NIC4, NIC6))
    assert (again.changes, again.failures) == (0, [])

    moved4 = Route(NIC4.dst, "192.168.10.13", "eth0")
    moved6 = Route(NIC6.dst, "fd00:10::13", "eth0")
    report = await plane.sync(state(moved4, moved6))
    assert (report.changes, report.failures) == (2, [])
    assert (await plane.read()).routes == {moved4, moved6}  # no stale route on eth0

    report = await plane.sync(state(moved6))
    assert (report.changes, report.failures) == (1, [])
    assert (await plane.read()).routes == {moved6}

    report = await plane.remove_all()
    assert report.ok, report.failures
    assert table(ns) == []
    assert "eth0" in ip(ns, "link", "show", "eth0")  # the NIC is not the agent's to delete


async def test_a_route_moves_between_vx_local_and_the_nic_without_a_stale_one(
    node: tuple[str, Dataplane],
) -> None:
    ns, plane = node
    overlay = Route(NIC4.dst, "210.168.1.2", "vx-local")
    devices = frozenset({VX_LOCAL})
    report = await plane.sync(state(overlay, devices=devices))
    assert report.ok, report.failures
    assert table(ns) == [f"{NIC4.dst} via 210.168.1.2 dev vx-local onlink"]  # VXLAN: onlink

    for wanted, line in (
        (NIC4, f"{NIC4.dst} via 192.168.10.12 dev eth0"),  # direct routing turned on
        (overlay, f"{NIC4.dst} via 210.168.1.2 dev vx-local onlink"),  # and off again
    ):
        report = await plane.sync(state(wanted, devices=devices))
        assert (report.changes, report.failures) == (1, [])
        assert table(ns) == [line]

    await plane.remove_all()
    assert table(ns) == []
    assert "vx-local" not in ip(ns, "link", "show")


async def test_an_old_route_the_kernel_does_not_replace_in_place_is_deleted_after(
    node: tuple[str, Dataplane],
) -> None:
    """``replace`` replaces a route of the same metric only: one of another metric (here a
    better one, which would win every lookup) stays beside the new route unless deleted."""
    ns, plane = node
    for family, route, old_gateway in (("-4", NIC4, "192.168.10.99"), ("-6", NIC6, "fd00:10::99")):
        ip(ns, family, "route", "add", route.dst, "via", old_gateway, "dev", "eth0",
           "metric", "7", "table", str(ROUTE_TABLE))  # fmt: skip
    report = await plane.sync(state(NIC4, NIC6))
    assert (report.changes, report.failures) == (6, [])  # 2 rules, 2 adds, then 2 deletes
    assert sorted(table(ns)) == [
        f"{NIC4.dst} via {NIC4.gateway} dev eth0",
        f"{NIC6.dst} via {NIC6.gateway} dev eth0",
    ]
    assert (await plane.sync(state(NIC4, NIC6))).changes == 0


async def test_a_gateway_off_the_nic_subnet_is_refused_with_the_reason(
    node: tuple[str, Dataplane],
) -> None:
    ns, plane = node
    report = await plane.sync(state(NIC4, NIC6, OFF4, OFF6))
    failures = dict(report.failures)
    assert sorted(failures) == [
        f"route {OFF4.dst} via {OFF4.gateway}",
        f"route {OFF6.dst} via {OFF6.gateway}",
    ]
    hint = (
        "the gateway is not on a subnet of eth0: direct routing needs the nodes on one L2 segment"
    )
    assert "Network is unreachable" in failures[f"route {OFF4.dst} via {OFF4.gateway}"]
    assert "No route to host" in failures[f"route {OFF6.dst} via {OFF6.gateway}"]
    assert all(why.endswith(hint) for why in failures.values()), failures
    assert (await plane.read()).routes == {NIC4, NIC6}  # the rest is applied
    everywhere = table(ns, "all")
    assert not any(line.startswith(("198.51.101.", "2001:db8:101:")) for line in everywhere)

    again = await plane.sync(state(NIC4, NIC6, OFF4, OFF6))
    assert again.changes == 0 and dict(again.failures) == failures  # reported each time

    await plane.remove_all()
    assert table(ns) == []


async def test_a_failed_move_to_the_nic_keeps_the_old_route(
    node: tuple[str, Dataplane],
) -> None:
    ns, plane = node
    overlay = Route(OFF4.dst, "210.168.1.2", "vx-local")
    devices = frozenset({VX_LOCAL})
    assert (await plane.sync(state(overlay, devices=devices))).ok
    report = await plane.sync(state(OFF4, devices=devices))
    assert [item for item, _ in report.failures] == [f"route {OFF4.dst} via {OFF4.gateway}"]
    assert (await plane.read()).routes == {overlay}  # still reachable the old way
    await plane.remove_all()
    assert table(ns) == []


async def test_a_route_over_a_nic_that_does_not_exist_is_reported_once(
    node: tuple[str, Dataplane],
) -> None:
    ns, plane = node
    ghost = Route("198.51.102.0/24", "192.168.10.12", "eth9")
    report = await plane.sync(state(NIC4, ghost))
    assert report.failures == [
        (f"route {ghost.dst}", f"route {ghost.dst}: device eth9 does not exist")
    ]
    assert (await plane.read()).routes == {NIC4}
    await plane.remove_all()
    assert table(ns) == []


async def test_remove_all_clears_routes_it_did_not_add(node: tuple[str, Dataplane]) -> None:
    """Table 200 is Kosmos's: what somebody else left there goes too, whatever its device."""
    ns, plane = node
    ip(ns, "route", "add", "198.51.103.0/24", "via", "192.168.10.99", "dev", "eth0", "table", "200")
    ip(ns, "route", "add", "blackhole", "198.51.104.0/24", "table", "200")
    ip(ns, "-6", "route", "add", "2001:db8:103::/64", "dev", "eth0", "table", "200")
    assert len(table(ns)) == 3
    report = await plane.remove_all()
    assert report.ok, report.failures
    assert table(ns) == []
