"""The pure diff between the wanted and the actual dataplane: devices, routes, FDB, ARP."""

import dataclasses

import pytest

from kosmos.net import sysctl
from kosmos.net.objects import Fdb, Neigh, Route, Vxlan
from kosmos.net.state import EntryPlan, NodeState, plan_devices, plan_entries, split_routes

BRIDGE = Vxlan(
    "vx-bridge", 54, 4876, "eth0", "192.168.1.1", "b6:80:a3:2b:d1:23", "220.168.1.1/8", 1450
)
LOCAL = Vxlan(
    "vx-local", 55, 4877, "eth0", "192.168.1.1", "8a:c2:92:77:bc:35", "210.168.1.1/8", 1450
)
BRIDGE6 = Vxlan(
    "vx-bridge-6", 64, 4866, "eth0", "fd00:1::1", "b6:80:a3:2b:d1:24", "9470:1::1/16", 1430
)


def changed(device, **fields):
    return dataclasses.replace(device, **fields)


# --- devices -------------------------------------------------------------------------------


def test_missing_devices_are_created_in_name_order():
    plan = plan_devices(frozenset({LOCAL, BRIDGE6, BRIDGE}), {})
    assert plan.create == [BRIDGE, BRIDGE6, LOCAL]
    assert plan.update == [] and plan.delete == []


def test_nothing_to_do_when_the_kernel_has_what_is_wanted():
    plan = plan_devices(frozenset({BRIDGE, LOCAL}), {"vx-bridge": BRIDGE, "vx-local": LOCAL})
    assert not plan
    assert (plan.create, plan.update, plan.delete) == ([], [], [])


@pytest.mark.parametrize(
    "fields",
    [
        {"mac": "b6:80:a3:2b:d1:99"},
        {"mtu": 1400},
        {"address": "220.0.113.11/8"},  # the node got an elastic IP
        {"mac": "b6:80:a3:2b:d1:99", "mtu": 8951, "address": "220.168.1.9/8"},
    ],
)
def test_mac_mtu_and_address_are_changed_in_place(fields):
    current = changed(BRIDGE, **fields)
    plan = plan_devices(frozenset({BRIDGE}), {"vx-bridge": current})
    assert plan.update == [(current, BRIDGE)]
    assert plan.create == [] and plan.delete == []


@pytest.mark.parametrize(
    "fields",
    [
        {"vni": 540},
        {"port": 4789},
        {"bind_dev": "ens5"},
        {"local": "192.168.1.9"},  # the node's underlay address changed
        {"vni": 540, "mtu": 1400},  # a link change wins over an in-place one
    ],
)
def test_vni_port_bind_device_or_local_address_changes_recreate_the_device(fields):
    current = changed(BRIDGE, **fields)
    plan = plan_devices(frozenset({BRIDGE, LOCAL}), {"vx-bridge": current, "vx-local": LOCAL})
    assert plan.delete == ["vx-bridge"]
    assert plan.create == [BRIDGE]
    assert plan.update == []


def test_devices_no_longer_wanted_are_deleted():
    plan = plan_devices(
        frozenset({LOCAL}), {"vx-bridge": BRIDGE, "vx-local": LOCAL, "vx-bridge-6": BRIDGE6}
    )
    assert plan.delete == ["vx-bridge", "vx-bridge-6"]
    assert plan.create == [] and plan.update == []


def test_everything_at_once():
    wanted = frozenset({BRIDGE, changed(LOCAL, mtu=1400), BRIDGE6})
    actual = {"vx-bridge": changed(BRIDGE, port=1), "vx-local": LOCAL, "vx-local-6": LOCAL}
    plan = plan_devices(wanted, actual)
    assert plan.delete == ["vx-bridge", "vx-local-6"]
    assert plan.create == [BRIDGE, BRIDGE6]  # the recreated one first, then the new ones
    assert plan.update == [(LOCAL, changed(LOCAL, mtu=1400))]


# --- routes, FDB, ARP ----------------------------------------------------------------------

R1 = Route("10.2.1.0/24", "220.168.2.1", "vx-bridge")
R2 = Route("10.2.2.0/24", "220.168.2.2", "vx-bridge")
R6 = Route("fd02:0:0:1::/64", "9470:2::1", "vx-bridge-6")
F1 = Fdb("16:f5:79:2b:73:48", "192.168.2.1", "vx-bridge")
F2 = Fdb("f2:e8:0a:31:47:86", "192.168.2.2", "vx-bridge")
N1 = Neigh("220.168.2.1", "16:f5:79:2b:73:48", "vx-bridge")
N2 = Neigh("220.168.2.2", "f2:e8:0a:31:47:86", "vx-bridge")


def state(*items):
    kinds = {Route: "routes", Fdb: "fdbs", Neigh: "neighbours"}
    grouped = {
        name: frozenset(i for i in items if kinds[type(i)] == name) for name in kinds.values()
    }
    return NodeState(**grouped)


def test_no_entry_changes():
    assert not plan_entries(state(R1, F1, N1), state(R1, F1, N1))
    assert plan_entries(state(R1, F1, N1), state(R1, F1, N1)).count() == 0


def test_missing_entries_are_added_sorted():
    plan = plan_entries(state(R2, R1, R6, F2, F1, N2, N1), state())
    assert plan == EntryPlan(add_neighbours=[N1, N2], add_fdbs=[F1, F2], add_routes=[R1, R2, R6])
    assert plan.count() == 7


def test_entries_no_longer_wanted_are_deleted():
    plan = plan_entries(state(R1, F1, N1), state(R1, R2, F1, F2, N1, N2))
    assert plan == EntryPlan(delete_routes=[R2], delete_fdbs=[F2], delete_neighbours=[N2])


def test_a_route_whose_gateway_changed_is_replaced_not_deleted_first():
    moved = Route("10.2.1.0/24", "220.168.2.9", "vx-bridge")  # a new owner of 10.2.1.0/24
    plan = plan_entries(state(moved), state(R1))
    assert plan.delete_routes == []  # deleting first would leave a gap
    assert plan.add_routes == [moved]


def test_a_route_moving_to_another_device_is_replaced_too():
    moved = Route("10.2.1.0/24", "210.168.1.1", "vx-local")  # this node lost its bridge role
    plan = plan_entries(state(moved), state(R1))
    assert (plan.delete_routes, plan.add_routes) == ([], [moved])


def test_the_routes_a_new_route_replaces_are_checked_after_the_adds():
    moved = Route("10.2.1.0/24", "192.168.1.12", "eth0")  # direct routing over the NIC
    plan = plan_entries(state(moved), state(R1, R2))
    assert (plan.delete_routes, plan.add_routes, plan.replaced_routes) == ([R2], [moved], [R1])
    assert plan.count() == 2  # not a step of its own


def test_a_replaced_route_without_a_device_is_not_checked():
    # deleting it would go by destination alone, and could hit the route just added
    blackhole = Route("10.2.1.0/24", "", "")
    plan = plan_entries(state(R1), state(blackhole))
    assert (plan.add_routes, plan.replaced_routes) == ([R1], [])


def test_a_route_in_another_table_is_not_a_replacement():
    other = dataclasses.replace(R1, table=201)
    plan = plan_entries(state(R1), state(other))
    assert (plan.delete_routes, plan.add_routes) == ([other], [R1])


NIC = Route("10.52.0.0/16", "192.168.10.12", "eth0")
OWNED = ("vx-bridge", "vx-local", "vx-bridge-6", "vx-local-6")


def test_routes_over_present_owned_devices_and_existing_links_are_usable():
    usable, missing = split_routes({R1, NIC}, OWNED, {"vx-bridge"}, {"eth0", "vx-bridge", "lo"})
    assert (usable, missing) == ({R1, NIC}, [])


def test_a_route_over_a_link_that_does_not_exist_is_missing():
    eth9 = Route("10.53.0.0/16", "192.168.10.12", "eth9")
    usable, missing = split_routes({NIC, eth9}, OWNED, set(), {"eth0"})
    assert (usable, missing) == ({NIC}, [eth9])


def test_a_route_over_an_owned_device_not_created_is_neither_usable_nor_missing():
    # the device's own failure says why: the route is not reported twice
    usable, missing = split_routes({R1, NIC}, OWNED, set(), {"eth0"})
    assert (usable, missing) == ({NIC}, [])


def test_an_owned_name_that_is_not_our_vxlan_is_not_usable():
    # a link by our name that is not a VXLAN device (``present`` leaves it out) is not the NIC
    usable, missing = split_routes({R1}, OWNED, set(), {"vx-bridge"})
    assert (usable, missing) == (frozenset(), [])


def test_a_neighbour_whose_mac_changed_is_replaced_not_deleted_first():
    moved = Neigh("220.168.2.1", "aa:bb:cc:dd:ee:02", "vx-bridge")
    plan = plan_entries(state(moved), state(N1))
    assert plan.delete_neighbours == []
    assert plan.add_neighbours == [moved]


def test_the_same_neighbour_ip_on_another_device_is_not_a_replacement():
    other = Neigh("220.168.2.1", "16:f5:79:2b:73:48", "vx-local")
    plan = plan_entries(state(N1), state(other))
    assert (plan.delete_neighbours, plan.add_neighbours) == ([other], [N1])


def test_an_fdb_entry_toward_a_new_vtep_replaces_the_old_one():
    # FDB entries are appended per (MAC, VTEP): the old VTEP has to go, or frames go to both
    moved = Fdb("16:f5:79:2b:73:48", "203.0.113.21", "vx-bridge")
    plan = plan_entries(state(moved), state(F1))
    assert (plan.delete_fdbs, plan.add_fdbs) == ([F1], [moved])


def test_removals_come_before_additions():
    plan = plan_entries(state(R1, F1, N1), state(R2, F2, N2))
    order = [name for name, items in vars(plan).items() if items]
    assert order == [
        "delete_routes",
        "delete_fdbs",
        "delete_neighbours",
        "add_neighbours",
        "add_fdbs",
        "add_routes",  # last: a route needs its next hop's ARP and FDB entries first
    ]


def test_device_names_of_a_state():
    assert NodeState(devices=frozenset({BRIDGE, LOCAL})).device_names == {"vx-bridge", "vx-local"}


# --- sysctl keys ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "want"),
    [
        ("net.ipv4.conf.vx-bridge.rp_filter", "vx-bridge"),
        ("net.ipv4.conf.eth0.rp_filter", "eth0"),
        ("net.ipv6.conf.vx-bridge-6.disable_ipv6", "vx-bridge-6"),
        ("net.ipv4.conf.all.rp_filter", None),
        ("net.ipv4.conf.default.rp_filter", None),
        ("net.ipv4.ip_forward", None),
        ("net.ipv6.conf.all.forwarding", None),
        ("net.ipv4.conf.eth0.100.rp_filter", None),  # a dotted name is not a per-device key
    ],
)
def test_sysctl_device_of(key, want):
    assert sysctl.device_of(key) == want
