"""The agent's pure half: NodeConfig spec -> NodeState, tunnel keys, and the NIC choice."""

import base64

import pytest

from kosmos.clusterlink.agent import desired, detect, keys
from kosmos.net.netlink import LinkInfo
from kosmos.net.objects import Chain, Fdb, IPSet, Neigh, Route, Rule, Vxlan
from tests.unit.clusterlink.linkcases import cluster, compute, node

ETH0 = LinkInfo("eth0", 2, 1500, True, ("192.168.1.1",), ("fd00:1::1",))
ENS5 = LinkInfo("ens5", 3, 9001, True, ("10.0.0.5",), ())
V6ONLY = LinkInfo("eth6", 4, 1500, True, (), ("fd00:6::1",))
VLAN = LinkInfo("eth0.100", 5, 1500, True, ("172.16.0.1",), ())
BINDS = {b.name: b for b in (ETH0, ENS5, V6ONLY, VLAN)}


def dev(name="vx-bridge", addr="220.168.1.1/8", bind="eth0", **extra):
    return {
        "type": "vxlan",
        "name": name,
        "addr": addr,
        "mac": "B6:80:A3:2B:D1:23",
        "bindDev": bind,
        "id": 54,
        "port": 4876,
        **extra,
    }


# --- devices -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "want"),
    [
        # local address from the bind device, MTU = bind MTU - 50 over IPv4
        (
            dev(),
            Vxlan(
                "vx-bridge",
                54,
                4876,
                "eth0",
                "192.168.1.1",
                "b6:80:a3:2b:d1:23",
                "220.168.1.1/8",
                1450,
            ),
        ),
        (
            dev(bind="ens5"),
            Vxlan(
                "vx-bridge",
                54,
                4876,
                "ens5",
                "10.0.0.5",
                "b6:80:a3:2b:d1:23",
                "220.168.1.1/8",
                8951,
            ),
        ),
        # an IPv6 device binds to the IPv6 address, MTU - 70 over IPv6
        (
            dev("vx-bridge-6", "9470:1::1/16", id=64, port=4866),
            Vxlan(
                "vx-bridge-6",
                64,
                4866,
                "eth0",
                "fd00:1::1",
                "b6:80:a3:2b:d1:23",
                "9470:1::1/16",
                1430,
            ),
        ),
        # an explicit MTU wins
        (
            dev(mtu=1400),
            Vxlan(
                "vx-bridge",
                54,
                4876,
                "eth0",
                "192.168.1.1",
                "b6:80:a3:2b:d1:23",
                "220.168.1.1/8",
                1400,
            ),
        ),
        # addresses are normalised, as the kernel reads them back
        (
            dev("vx-bridge-6", "9470:0001:0:0::0001/16", id=64, port=4866),
            Vxlan(
                "vx-bridge-6",
                64,
                4866,
                "eth0",
                "fd00:1::1",
                "b6:80:a3:2b:d1:23",
                "9470:1::1/16",
                1430,
            ),
        ),
    ],
)
def test_device(spec, want):
    assert desired.device(spec, BINDS) == want


@pytest.mark.parametrize(
    ("spec", "error", "says"),
    [
        (dev(bind="eth9"), KeyError, "bind device 'eth9' does not exist on this node"),
        (dev(bind=""), KeyError, "bind device '' does not exist"),
        (dev("vx-bridge-6", "9470::1/16", bind="ens5"), ValueError, "ens5 has no IPv6 address"),
        (dev(bind="eth6"), ValueError, "eth6 has no IPv4 address"),
        (dev(addr="220.168.1.300/8"), ValueError, "does not appear to be"),
    ],
)
def test_device_that_cannot_be_built(spec, error, says):
    with pytest.raises(error, match=says):
        desired.device(spec, BINDS)


# --- the whole state -----------------------------------------------------------------------

SPEC = {
    "devices": [
        dev("vx-bridge", "220.168.1.1/8", "eth9"),  # its NIC is missing on this node
        dev("vx-local", "210.168.1.1/8", id=55, port=4877),
        dev("vx-local-6", "9480:1::1/16", id=65, port=4867),
    ],
    "routes": [
        {"cidr": "10.2.1.0/24", "gw": "220.168.2.1", "dev": "vx-bridge"},
        {"cidr": "10.3.1.7/24", "gw": "210.168.1.3", "dev": "vx-local"},  # host bits cleared
        {"cidr": "fd03:0:0:1::/64", "gw": "9480:1:0::3", "dev": "vx-local-6"},
    ],
    "fdbs": [
        {"ip": "192.168.2.1", "mac": "16:F5:79:2B:73:48", "dev": "vx-bridge"},
        {"ip": "192.168.1.3", "mac": "EE:D5:D3:D9:09:7D", "dev": "vx-local"},
    ],
    "arps": [
        {"ip": "220.168.2.1", "mac": "16:f5:79:2b:73:48", "dev": "vx-bridge"},
        {"ip": "210.168.1.3", "mac": "ee:d5:d3:d9:09:7d", "dev": "vx-local"},
        {"ip": "9480:1::3", "mac": "ee:d5:d3:d9:09:7e", "dev": "vx-local-6"},
    ],
    "iptables": [
        {
            "table": "nat",
            "chain": "POSTROUTING",
            "rule": "-s 210.0.0.0/8 -o vx-bridge -j MASQUERADE",
        },
        {
            "table": "nat",
            "chain": "POSTROUTING",
            "rule": "-s 9480::/16 -o vx-bridge-6 -j MASQUERADE",
        },
        {
            "table": "nat",
            "chain": "PREROUTING",
            "rule": "-d 10.201.0.0/16 -j NETMAP --to 10.99.0.0/16",
        },
        {
            "table": "nat",
            "chain": "POSTROUTING",
            "rule": "-s fd99::/48 -m set --match-set kosmos-remote6 dst -j NETMAP --to fd9a:1::/48",
        },
        {"table": "filter", "chain": "FORWARD", "rule": "-i vx-local -j ACCEPT"},
    ],
    "ipsets": [
        {"name": "kosmos-remote", "type": "hash:net", "entries": ["10.2.1.0/24", "10.3.1.9/24"]},
        {"name": "kosmos-remote6", "entries": ["fd03:0:0:1::/64"]},
    ],
}


def test_a_missing_bind_device_fails_that_device_and_leaves_the_rest():
    got = desired.build(SPEC, BINDS)
    assert got.failures == [("device vx-bridge", "bind device 'eth9' does not exist on this node")]
    state = got.state
    assert {d.name for d in state.devices} == {"vx-local", "vx-local-6"}
    # what hangs on the missing device is left out; the rest is kept
    assert state.routes == {
        Route("10.3.1.0/24", "210.168.1.3", "vx-local"),
        Route("fd03:0:0:1::/64", "9480:1::3", "vx-local-6"),
    }
    assert state.fdbs == {Fdb("ee:d5:d3:d9:09:7d", "192.168.1.3", "vx-local")}
    assert state.neighbours == {
        Neigh("210.168.1.3", "ee:d5:d3:d9:09:7d", "vx-local"),
        Neigh("9480:1::3", "ee:d5:d3:d9:09:7e", "vx-local-6"),
    }
    assert state.rules == {Rule(4), Rule(6)}  # one per family that has routes
    assert state.ipsets == {
        IPSet("kosmos-remote", "hash:net", 4, frozenset({"10.2.1.0/24", "10.3.1.0/24"})),
        IPSet("kosmos-remote6", "hash:net", 6, frozenset({"fd03:0:0:1::/64"})),
    }


def test_chains_are_named_after_their_parent_and_split_by_family():
    state = desired.build(SPEC, BINDS).state
    assert state.chains == {
        Chain(
            4,
            "nat",
            "KOSMOS-POSTROUTING",
            "POSTROUTING",
            ("-s 210.0.0.0/8 -o vx-bridge -j MASQUERADE",),
        ),
        Chain(
            6,
            "nat",
            "KOSMOS-POSTROUTING",
            "POSTROUTING",
            (
                "-s 9480::/16 -o vx-bridge-6 -j MASQUERADE",
                "-s fd99::/48 -m set --match-set kosmos-remote6 dst -j NETMAP --to fd9a:1::/48",
            ),
        ),
        Chain(
            4,
            "nat",
            "KOSMOS-PREROUTING",
            "PREROUTING",
            ("-d 10.201.0.0/16 -j NETMAP --to 10.99.0.0/16",),
        ),
        # no address in the rule: both families
        Chain(4, "filter", "KOSMOS-FORWARD", "FORWARD", ("-i vx-local -j ACCEPT",)),
        Chain(6, "filter", "KOSMOS-FORWARD", "FORWARD", ("-i vx-local -j ACCEPT",)),
    }


def test_sysctls_forwarding_per_family_and_loose_rp_filter_on_the_tunnel_path():
    state = desired.build(SPEC, BINDS).state
    assert state.sysctls == (
        ("net.ipv4.conf.eth0.rp_filter", "2"),
        ("net.ipv4.conf.vx-local-6.rp_filter", "2"),
        ("net.ipv4.conf.vx-local.rp_filter", "2"),
        ("net.ipv4.ip_forward", "1"),
        ("net.ipv6.conf.all.forwarding", "1"),
    )


def test_an_ipv4_only_node_forwards_ipv4_only_and_skips_dotted_device_names():
    spec = {
        "devices": [dev(bind="eth0.100")],
        "routes": [{"cidr": "10.2.0.0/16", "gw": "220.168.2.1", "dev": "vx-bridge"}],
        "iptables": [
            {"table": "filter", "chain": "FORWARD", "rule": "-o vx-bridge -j ACCEPT"},
            {"table": "nat", "chain": "POSTROUTING", "rule": "-s fd00::/8 -j ACCEPT"},
        ],
    }
    state = desired.build(spec, BINDS).state
    # eth0.100 would be read as a key path by sysctl: only the VXLAN device gets rp_filter
    assert state.sysctls == (
        ("net.ipv4.conf.vx-bridge.rp_filter", "2"),
        ("net.ipv4.ip_forward", "1"),
    )
    assert state.rules == {Rule(4)}
    # only the families of the node's devices get chains: the IPv6 rule has nowhere to go
    assert state.chains == {
        Chain(4, "filter", "KOSMOS-FORWARD", "FORWARD", ("-o vx-bridge -j ACCEPT",))
    }


def test_a_route_that_does_not_parse_is_a_failure_and_the_rest_stays():
    spec = {
        "devices": [dev()],
        "routes": [
            {"cidr": "10.2.0.0/16", "gw": "220.168.2.1", "dev": "vx-bridge"},
            {"cidr": "10.3.0.0/33", "gw": "220.168.2.1", "dev": "vx-bridge"},
            {"cidr": "10.4.0.0/16", "dev": "vx-bridge"},  # no gateway: on-link
        ],
    }
    got = desired.build(spec, BINDS)
    assert [item for item, _ in got.failures] == ["route 10.3.0.0/33"]
    assert got.state.routes == {
        Route("10.2.0.0/16", "220.168.2.1", "vx-bridge"),
        Route("10.4.0.0/16", "", "vx-bridge"),
    }


def test_a_route_over_the_nic_is_kept_whatever_the_devices():
    # direct routing: the route goes over the node's NIC, which is no device of the spec
    spec = {
        "devices": [dev("vx-bridge", bind="eth9")],  # not built
        "routes": [
            {"cidr": "10.52.0.0/16", "gw": "192.168.1.12", "dev": "eth0"},
            {"cidr": "fd52::/48", "gw": "fd00:1::12", "dev": "eth0"},
            {"cidr": "10.53.0.0/16", "gw": "192.168.1.12", "dev": "eth7"},  # the Dataplane says
            {"cidr": "10.2.0.0/16", "gw": "220.168.2.1", "dev": "vx-bridge"},  # device failed
            {"cidr": "10.4.0.0/16", "gw": "220.168.2.1"},  # no device at all
        ],
    }
    got = desired.build(spec, BINDS)
    assert [item for item, _ in got.failures] == ["device vx-bridge"]
    assert got.state.routes == {
        Route("10.52.0.0/16", "192.168.1.12", "eth0"),
        Route("fd52::/48", "fd00:1::12", "eth0"),
        Route("10.53.0.0/16", "192.168.1.12", "eth7"),
    }
    assert got.state.rules == {Rule(4), Rule(6)}
    # the NICs the routes leave by filter loosely, as a vx-local bind device did
    assert got.state.sysctls == (
        ("net.ipv4.conf.eth0.rp_filter", "2"),
        ("net.ipv4.conf.eth7.rp_filter", "2"),
        ("net.ipv4.ip_forward", "1"),
        ("net.ipv6.conf.all.forwarding", "1"),
    )


def test_an_empty_spec_is_an_empty_state():
    got = desired.build({}, BINDS)
    assert got.failures == []
    assert got.state.devices == got.state.routes == got.state.chains == frozenset()
    assert got.state.sysctls == ()


@pytest.mark.parametrize(
    ("rule", "want"),
    [
        ("-s 10.1.0.0/16 -o vx-bridge -j MASQUERADE", (4,)),
        ("-d 10.96.0.10 -j ACCEPT", (4,)),
        ("-s 9480::/16 ! -o vx-bridge-6 -j MASQUERADE", (6,)),
        ("-d fd9a:2::/48 -j NETMAP --to fd99::/48", (6,)),
        ("-m set --match-set kosmos-remote6 dst -j ACCEPT", (6,)),  # the set names the family
        ("-s 10.1.0.0/16 -m set --match-set kosmos-remote dst -j ACCEPT", (4,)),
        ("-i vx-bridge -j ACCEPT", (4, 6)),  # no address: both
        ("-p udp --dport 4876 -j ACCEPT", (4, 6)),  # a port is no address
        ("-m mac --mac-source b6:80:a3:2b:d1:23 -j ACCEPT", (4, 6)),  # nor is a MAC
    ],
)
def test_rule_family(rule, want):
    assert desired.rule_family(rule) == want


def test_the_planners_nodeconfigs_build_without_failures():
    clusters = [
        cluster("g", mode="gateway", pods=["10.1.0.0/16", "fd01::/48"], services=["10.96.0.0/16"]),
        cluster(
            "p", pods=["10.2.0.0/16", "fd02::/48"], globalCIDRsMap={"10.2.0.0/16": "10.202.0.0/16"}
        ),
    ]
    nodes = [
        node("g", "gw", "192.168.1.1", "fd00:1::1", gateway=True),
        node("g", "n2", "192.168.1.2", "fd00:1::2"),
        node("p", "n1", "192.168.2.1", "fd00:2::1", pods=["10.2.1.0/24", "fd02:0:0:1::/64"]),
    ]
    plan = compute(clusters, nodes)
    for name, spec in plan.configs.items():
        got = desired.build(spec, BINDS)
        assert got.failures == [], name
        assert len(got.state.routes) == len(spec.get("routes", [])), name
        assert len(got.state.devices) == len(spec["devices"]), name
    gateway = desired.build(plan.configs["g-gw"], BINDS).state
    assert {(c.family, c.table, c.name) for c in gateway.chains} == {
        (4, "nat", "KOSMOS-POSTROUTING"),
        (6, "nat", "KOSMOS-POSTROUTING"),
        (4, "filter", "KOSMOS-FORWARD"),
        (6, "filter", "KOSMOS-FORWARD"),
    }


# --- tunnel keys ---------------------------------------------------------------------------

MASTER = bytes(range(32))


def test_pair_key_is_symmetric_32_bytes_and_per_pair():
    ab = keys.pair_key(MASTER, "a-n1", "b-n1")
    assert ab == keys.pair_key(MASTER, "b-n1", "a-n1")
    assert len(ab) == 32
    others = {
        keys.pair_key(MASTER, "a-n1", "c-n1"),
        keys.pair_key(MASTER, "a-n2", "b-n1"),
        keys.pair_key(MASTER, "a-n1", "b-n1x"),
        keys.pair_key(bytes(range(1, 33)), "a-n1", "b-n1"),  # a rotated master re-keys
    }
    assert ab not in others and len(others) == 4


def test_pair_key_separates_the_names():
    # "a|bc" and "ab|c" must not derive the same key
    assert keys.pair_key(MASTER, "a", "bc") != keys.pair_key(MASTER, "ab", "c")


def secret(data):
    return {"metadata": {"name": "clusterlink-tunnel-key"}, "data": data}


def test_master_decodes_the_secret_field():
    raw = b"0123456789abcdef-master"
    assert keys.master(secret({"psk": base64.b64encode(raw).decode()}), "psk") == raw


@pytest.mark.parametrize(
    ("obj", "field", "says"),
    [
        (secret({"other": "eA=="}), "psk", "Secret clusterlink-tunnel-key has no key 'psk'"),
        (secret({"psk": ""}), "psk", "has no key 'psk'"),
        ({"metadata": {"name": "k"}}, "psk", "Secret k has no key 'psk'"),
        ({}, "psk", r"Secret \? has no key"),
        (secret({"psk": base64.b64encode(b"short").decode()}), "psk", "at least 16 bytes"),
        (secret({"psk": base64.b64encode(b"x" * 15).decode()}), "psk", "at least 16 bytes"),
    ],
)
def test_master_errors(obj, field, says):
    with pytest.raises(keys.KeyError_, match=says):
        keys.master(obj, field)


def test_master_of_exactly_16_bytes_is_enough():
    assert len(keys.master(secret({"psk": base64.b64encode(b"x" * 16).decode()}), "psk")) == 16


# --- which NIC -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "node_name", "want"),
    [
        (
            {"nicNodeNames": [{"interfaceName": "ens5", "nodeName": ["node-a"]}]},
            "node-a",
            ("ens5", ""),
        ),
        # exact names: the original's substring match gave "a" the NIC of "node-a"
        ({"nicNodeNames": [{"interfaceName": "ens5", "nodeName": ["node-a"]}]}, "a", ("*", "")),
        ({"nicNodeNames": [{"interfaceName": "ens5", "nodeName": ["a"]}]}, "node-a", ("*", "")),
        (
            {
                "nicNodeNames": [
                    {"interfaceName": "ens5", "nodeName": ["node-a"]},
                    {"interfaceName": "ens6", "nodeName": ["node-ab", "node-b"]},
                ]
            },
            "node-ab",
            ("ens6", ""),
        ),
        # the first entry that lists the node wins
        (
            {
                "nicNodeNames": [
                    {"interfaceName": "ens5", "nodeName": ["node-a"]},
                    {"interfaceName": "ens6", "nodeName": ["node-a"]},
                ]
            },
            "node-a",
            ("ens5", ""),
        ),
        ({"defaultNICName": "eth1"}, "node-a", ("eth1", "")),
        (
            {
                "defaultNICName": "eth1",
                "nicNodeNames": [{"interfaceName": "ens5", "nodeName": ["x"]}],
            },
            "node-a",
            ("eth1", ""),
        ),
        ({"defaultNICName": "*"}, "node-a", ("*", "")),
        ({}, "node-a", ("*", "")),
        ({"autodetectionMethod": "can-reach=10.0.0.1"}, "node-a", ("*", "10.0.0.1")),
        ({"autodetectionMethod": "can-reach=fd00::1"}, "node-a", ("*", "fd00::1")),
        ({"autodetectionMethod": "interface=eth0"}, "node-a", ("*", "")),  # unsupported: default
        # a named NIC needs no target
        (
            {"defaultNICName": "eth1", "autodetectionMethod": "can-reach=10.0.0.1"},
            "node-a",
            ("eth1", "10.0.0.1"),
        ),
        ({"nicNodeNames": [{"interfaceName": "ens5"}]}, "node-a", ("*", "")),  # no nodeName list
    ],
)
def test_nic_choice(options, node_name, want):
    assert detect.nic_choice(options, node_name) == want


def test_an_ipset_entry_that_does_not_parse_is_a_failure_and_the_rest_stays():
    # the CRD bounds set entries by length only: a bad one used to raise out of build()
    spec = {
        "devices": [dev()],
        "routes": [{"cidr": "10.2.0.0/16", "gw": "220.168.2.1", "dev": "vx-bridge"}],
        "ipsets": [{"name": "kosmos-remote", "entries": ["10.2.0.0/16", "10.0.0.0/33", "x"]}],
    }
    got = desired.build(spec, BINDS)
    assert [item for item, _ in got.failures] == [
        "ipset kosmos-remote entry 10.0.0.0/33",
        "ipset kosmos-remote entry x",
    ]
    assert got.state.ipsets == {IPSet("kosmos-remote", "hash:net", 4, frozenset({"10.2.0.0/16"}))}
    assert got.state.routes == {Route("10.2.0.0/16", "220.168.2.1", "vx-bridge")}
