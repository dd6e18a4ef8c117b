"""Device addresses and MACs: derived from the node, the same on every computation."""

import re

import pytest

from kosmos.clusterlink.planner import addressing

MAC = re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")


@pytest.mark.parametrize(
    ("underlay", "pool", "want"),
    [
        # the original's examples (spec 6.4)
        ("100.10.10.1", "210.0.0.0/8", "210.10.10.1/8"),
        ("2409:7c85:6200::a0e:1702", "9480::/16", "9480:7c85:6200::a0e:1702/16"),
        ("192.168.10.11", "220.0.0.0/8", "220.168.10.11/8"),
        ("192.168.10.11", "172.16.0.0/16", "172.16.10.11/16"),
        ("192.168.10.11", "172.16.0.0/12", "172.24.10.11/12"),  # host bits beyond the prefix
        ("192.168.10.11", "220.9.9.9/8", "220.168.10.11/8"),  # pool host bits are ignored
        ("192.168.10.11", "10.0.0.7/32", "10.0.0.7/32"),  # no host bits to keep
        ("192.168.10.11", "0.0.0.0/0", "192.168.10.11/0"),
        ("fd00:1:2:3::11", "9470::/16", "9470:1:2:3::11/16"),
        ("fd00::1", "9470:aa::/32", "9470:aa::1/32"),
        ("203.0.113.7", "220.0.0.0/8", "220.0.113.7/8"),  # an elastic IP numbers vx-bridge
    ],
)
def test_device_address_keeps_the_host_bits_under_the_pool(underlay, pool, want):
    assert addressing.device_address(underlay, pool) == want


@pytest.mark.parametrize(
    ("underlay", "pool"),
    [("192.168.10.11", "9480::/16"), ("fd00::1", "210.0.0.0/8")],
)
def test_device_address_refuses_mixed_families(underlay, pool):
    with pytest.raises(ValueError, match="different IP families"):
        addressing.device_address(underlay, pool)


@pytest.mark.parametrize(("underlay", "pool"), [("node-a", "210.0.0.0/8"), ("10.0.0.1", "")])
def test_device_address_refuses_what_is_not_an_address(underlay, pool):
    with pytest.raises(ValueError):
        addressing.device_address(underlay, pool)


NODES = ["a-n1", "a-n2", "b-node-with-a-long-name-" + "x" * 40]
KINDS = ["vx-bridge", "vx-local", "vx-bridge-6", "vx-local-6"]


@pytest.mark.parametrize("node", NODES)
@pytest.mark.parametrize("device", KINDS)
def test_mac_is_locally_administered_unicast(node, device):
    mac = addressing.mac(node, device)
    assert MAC.match(mac), mac
    first = int(mac[:2], 16)
    assert first & 0x02, "locally administered bit set"
    assert not first & 0x01, "unicast (multicast bit clear)"


def test_mac_is_stable_across_calls_and_releases():
    # Pinned: a MAC that changed between releases would rewrite every peer's FDB and ARP.
    assert addressing.mac("a-n1", "vx-bridge") == "b6:80:a3:2b:d1:23"
    assert addressing.mac("a-n1", "vx-local") == "8a:c2:92:77:bc:35"
    assert addressing.mac("a-n1", "vx-bridge") == addressing.mac("a-n1", "vx-bridge")


def test_macs_differ_per_node_and_device():
    macs = {addressing.mac(n, d) for n in NODES for d in KINDS}
    assert len(macs) == len(NODES) * len(KINDS)


@pytest.mark.parametrize(
    ("address", "want"),
    [("220.168.10.11/8", "220.168.10.11"), ("9470::1/16", "9470::1"), ("10.0.0.1", "10.0.0.1")],
)
def test_ip_of(address, want):
    assert addressing.ip_of(address) == want
