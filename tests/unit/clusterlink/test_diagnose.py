"""A node's kernel against its NodeConfig: the findings and the peers each one cuts off."""

from dataclasses import replace

import pytest

from kosmos.clusterlink import diagnose, peers
from kosmos.clusterlink.agent import desired
from kosmos.net.netlink import LinkInfo
from kosmos.net.objects import Drop, Fdb, Route
from kosmos.net.snapshot import Snapshot
from tests.unit.clusterlink.linkcases import cluster, compute, node

CLUSTERS = [
    cluster("a", pods=["10.1.0.0/16"], services=["10.96.0.0/16"], family="ipv4"),
    cluster("b", pods=["10.2.0.0/16"], services=["10.97.0.0/16"], family="ipv4"),
    cluster("g", mode="gateway", pods=["10.3.0.0/16"], family="ipv4"),
]
NODES = [
    node("a", "n1", "192.168.1.1", pods=["10.1.1.0/24"]),
    node("a", "n2", "192.168.1.2", pods=["10.1.2.0/24"]),
    node("b", "n1", "192.168.2.1", pods=["10.2.1.0/24"]),
    node("b", "n2", "192.168.2.2", pods=["10.2.2.0/24"]),
    node("g", "gw", "192.168.3.1", gateway=True),
    node("g", "n2", "192.168.3.2", pods=["10.3.2.0/24"]),
]
PLAN = compute(CLUSTERS, NODES)
CONFIGS = [{"metadata": {"name": n}, "spec": s} for n, s in PLAN.configs.items()]
LINK = peers.build(CLUSTERS, NODES, CONFIGS)
IPS = {n["metadata"]["name"]: n["spec"]["ip"] for n in NODES}


def binds(name):
    return {"eth0": LinkInfo("eth0", 2, 1500, True, (IPS[name],), ())}


def in_sync(name):
    """The dump of a node whose kernel is exactly what its agent programs."""
    state = desired.build(PLAN.configs[name], binds(name)).state
    return Snapshot(state, binds=dict(binds(name)))


def findings(name, snap):
    return diagnose.analyze(name, PLAN.configs[name], snap, LINK)


def test_a_node_in_sync_has_no_findings():
    for name in PLAN.configs:
        assert findings(name, in_sync(name)) == [], name


def test_a_missing_fdb_entry_names_the_peer_whose_vtep_it_is():
    snap = in_sync("a-n1")
    lost = next(f for f in snap.state.fdbs if f.dst == "192.168.2.1")
    snap.state = replace(snap.state, fdbs=snap.state.fdbs - {lost})
    (found,) = findings("a-n1", snap)
    assert (found.kind, found.state, found.breaks, found.traffic) == (
        "fdb",
        "missing",
        ("b/*", "b/n1"),  # b/n1 also receives b's service traffic (the p2p gateway)
        ("pod",),
    )
    assert lost.mac in found.entry and "192.168.2.1" in found.entry


def test_an_fdb_entry_pointing_elsewhere_differs():
    snap = in_sync("a-n1")
    lost = next(f for f in snap.state.fdbs if f.dst == "192.168.2.2")
    moved = Fdb(lost.mac, "192.168.9.9", lost.dev)
    snap.state = replace(snap.state, fdbs=(snap.state.fdbs - {lost}) | {moved})
    (found,) = findings("a-n1", snap)
    assert (found.kind, found.state, found.breaks) == ("fdb", "differs", ("b/n2",))
    assert "192.168.9.9 dev vx-bridge (want" in found.entry


def test_an_internal_nodes_fdb_to_its_gateway_breaks_every_remote_peer():
    snap = in_sync("g-n2")
    (to_gateway,) = snap.state.fdbs
    snap.state = replace(snap.state, fdbs=frozenset())
    (found,) = findings("g-n2", snap)
    assert found.kind == "fdb" and to_gateway.dst == "192.168.3.1"
    assert found.breaks == ("a/n1", "a/n2", "a/*", "b/*", "b/n1", "b/n2")[:0] or set(
        found.breaks
    ) >= {
        "a/n1",
        "a/n2",
        "b/n1",
        "b/n2",
    }


def test_a_gateways_return_fdb_names_its_internal_node():
    snap = in_sync("g-gw")
    back = next(f for f in snap.state.fdbs if f.dst == "192.168.3.2")
    snap.state = replace(snap.state, fdbs=snap.state.fdbs - {back})
    (found,) = findings("g-gw", snap)
    assert found.breaks == ("g/n2",)


def test_missing_route_and_neighbour_name_the_peers_behind_them():
    snap = in_sync("a-n1")
    route = next(r for r in snap.state.routes if r.dst == "10.3.0.0/16")
    neigh = next(n for n in snap.state.neighbours if n.ip == route.gateway)
    snap.state = replace(
        snap.state, routes=snap.state.routes - {route}, neighbours=snap.state.neighbours - {neigh}
    )
    got = {(f.kind, f.state): f.breaks for f in findings("a-n1", snap)}
    # g's gateway lists no pod CIDRs of its own: it is taken to hold its cluster's
    both = ("g/gw", "g/n2")
    assert got == {("route", "missing"): both, ("neighbour", "missing"): both}


def test_a_route_to_a_service_cidr_names_the_cluster():
    snap = in_sync("a-n1")
    route = next(r for r in snap.state.routes if r.dst == "10.97.0.0/16")
    snap.state = replace(snap.state, routes=snap.state.routes - {route})
    (found,) = findings("a-n1", snap)
    assert found.breaks == ("b/*",)


def test_an_unexpected_route_is_reported():
    snap = in_sync("a-n1")
    stray = Route("10.2.1.0/24", "220.1.1.1", "vx-bridge")
    snap.state = replace(snap.state, routes=snap.state.routes | {stray})
    (found,) = findings("a-n1", snap)
    assert (found.kind, found.state, found.breaks) == ("route", "unexpected", ("b/n1",))


def test_a_missing_device_breaks_every_peer_routed_over_it():
    snap = in_sync("a-n1")
    snap.state = replace(snap.state, devices=frozenset())
    device = next(f for f in findings("a-n1", snap) if f.kind == "device")
    assert device.state == "missing"
    assert set(device.breaks) >= {"b/n1", "b/n2", "g/n2"}


def test_a_missing_bind_device_is_a_device_finding_naming_the_peers():
    snap = in_sync("a-n1")
    snap.binds = {"eth0": None}
    got = [f for f in findings("a-n1", snap) if f.kind == "device"]
    assert got[0].state == "missing" and "does not exist" in got[0].entry
    assert set(got[0].breaks) >= {"b/n1", "g/n2"}


def test_rules_chains_sets_and_forwarding():
    snap = in_sync("a-n1")
    state = snap.state
    chain = next(iter(state.chains))
    ipset = next(iter(state.ipsets))
    snap.state = replace(
        state,
        rules=frozenset(),
        chains=frozenset({replace(chain, parent="")}),
        ipsets=frozenset({replace(ipset, entries=ipset.entries - {"10.2.1.0/24"})}),
        sysctls=(("net.ipv4.ip_forward", "0"),),
    )
    got = {(f.kind, f.state): f for f in findings("a-n1", snap)}
    assert set(got) >= {
        ("rule", "missing"),
        ("iptables", "differs"),
        ("ipset", "differs"),
        ("sysctl", "differs"),
    }
    assert got[("ipset", "differs")].breaks == ("b/n1",)
    assert "no jump from" in got[("iptables", "differs")].entry


def test_the_read_back_spelling_of_a_rule_is_no_difference():
    extra = {"table": "filter", "chain": "FORWARD", "rule": "-d 10.96.0.10 -j ACCEPT"}
    spec = {**PLAN.configs["g-gw"]}
    spec["iptables"] = [*spec["iptables"], extra]
    state = desired.build(spec, binds("g-gw")).state
    chain = next(c for c in state.chains if c.table == "filter" and c.family == 4)
    saved = replace(
        chain, rules=tuple(r.replace("10.96.0.10", "10.96.0.10/32") for r in chain.rules)
    )
    snap = Snapshot(replace(state, chains=(state.chains - {chain}) | {saved}), binds=binds("g-gw"))
    assert saved != chain
    assert diagnose.analyze("g-gw", spec, snap, LINK) == []


@pytest.mark.parametrize(
    ("error", "lost"),
    [
        ("iptables (IPv4): iptables-save failed", {"chains": frozenset()}),
        ("ipsets: ipset failed", {"ipsets": frozenset()}),
        ("sysctl: no sysctl", {"sysctls": ()}),
        (
            "devices, routes, FDB, neighbours, rules: netns gone",
            {"devices": frozenset(), "routes": frozenset(), "fdbs": frozenset(),
             "neighbours": frozenset(), "rules": frozenset()},
        ),
    ],
)  # fmt: skip
def test_an_unreadable_part_is_one_finding_and_its_kinds_are_not_compared(error, lost):
    snap = in_sync("a-n1")
    snap.state = replace(snap.state, **lost)
    snap.errors = [error]
    assert [(f.kind, f.state, f.entry) for f in findings("a-n1", snap)] == [
        ("read", "failed", error)
    ]


@pytest.mark.parametrize(
    ("drop", "breaks", "traffic"),
    [
        # a peer cluster's pod CIDR, as a source or a destination
        (
            Drop(4, "filter", "FORWARD", "-s 10.2.0.0/16 -j DROP", "10.2.0.0/16"),
            ("b/n1", "b/n2"),
            ("pod",),
        ),
        (
            Drop(4, "filter", "FORWARD", "-d 10.2.1.0/24 -j DROP", "", "10.2.1.0/24"),
            ("b/n1",),
            ("pod",),
        ),
        # a peer's node address: its node traffic, and the tunnel (UDP between the nodes)
        (
            Drop(4, "raw", "PREROUTING", "-s 192.168.2.2/32 -j DROP", "192.168.2.2/32"),
            ("b/n2",),
            ("node", "pod"),
        ),
        (
            Drop(
                4,
                "filter",
                "INPUT",
                "-s 192.168.2.2/32 -p tcp -j DROP",
                "192.168.2.2/32",
                "",
                "tcp",
            ),
            ("b/n2",),
            ("node",),
        ),
        # the VXLAN port, from anywhere: every remote peer's tunnel
        (
            Drop(4, "filter", "INPUT", "-p udp --dport 4876 -j DROP", "", "", "udp", "4876"),
            ("b/n1", "b/n2", "g/gw", "g/n2"),
            ("node", "pod"),
        ),
        # kube-proxy's firewall and a conntrack drop: nobody's
        (Drop(4, "filter", "KUBE-FIREWALL", "...", "!127.0.0.0/8", "127.0.0.0/8"), (), ()),
        (Drop(4, "filter", "FORWARD", "-m conntrack --ctstate INVALID -j DROP"), (), ()),
        # another family, or the own cluster's CIDR: nobody's
        (Drop(6, "filter", "FORWARD", "-d fd02::/48 -j DROP", "", "fd02::/48"), (), ()),
        (Drop(4, "filter", "FORWARD", "-d 10.1.2.0/24 -j DROP", "", "10.1.2.0/24"), (), ()),
        # the other side must be this node's: traffic between two remote clusters is not ours
        (
            Drop(
                4,
                "filter",
                "FORWARD",
                "-s 10.3.0.0/16 -d 10.2.0.0/16 -j DROP",
                "10.3.0.0/16",
                "10.2.0.0/16",
            ),
            (),
            (),
        ),
    ],
)
def test_foreign_drops_name_the_peers_they_cut_off(drop, breaks, traffic):
    snap = in_sync("a-n1")
    snap.drops = [drop]
    got = findings("a-n1", snap)
    if not breaks:
        assert got == []
        return
    (found,) = got
    assert (found.kind, found.state, found.breaks, found.traffic) == (
        "drop",
        "drops",
        breaks,
        traffic,
    )
