"""ipset save parsing and ipset restore text, on real ipset output."""

from kosmos.clusterlink.agent import desired
from kosmos.net import ipset
from kosmos.net.objects import IPSet

# Verbatim `ipset save` (ipset v7) of a network namespace with the agent's sets, kube-proxy's
# and Calico's (to be ignored), and a temporary set left behind by an interrupted restore.
# Host prefixes (/32, /128) are printed without their length.
SAVE = """\
create kosmos-remote hash:net family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x40cdf841
add kosmos-remote 10.2.1.0/24
add kosmos-remote 10.0.0.5
add kosmos-remote 10.97.0.0/16
create kosmos-remote6 hash:net family inet6 hashsize 1024 maxelem 65536 bucketsize 12 initval 0x9b1efa37
add kosmos-remote6 fd02:0:0:1::/64
add kosmos-remote6 fd02::5
create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x60e2e570
add KUBE-CLUSTER-IP 10.96.0.1,tcp:443
create cali40all-ipam-pools hash:net family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0xace6861c
add cali40all-ipam-pools 10.244.0.0/16
create kosmos-remote-tmp hash:net family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x02e9e1c0
"""  # noqa: E501 (verbatim)


def test_parse_save_reads_owned_sets_only():
    sets = ipset.parse_save(SAVE)
    assert set(sets) == {"kosmos-remote", "kosmos-remote6", "kosmos-remote-tmp"}
    assert sets["kosmos-remote6"].family == 6
    assert sets["kosmos-remote"].family == 4
    assert sets["kosmos-remote"].type == "hash:net"


def test_a_leftover_temporary_set_is_listed_so_that_prune_removes_it():
    assert ipset.parse_save(SAVE)["kosmos-remote-tmp"] == IPSet("kosmos-remote-tmp", "hash:net", 4)


def test_parse_save_with_another_prefix():
    assert set(ipset.parse_save(SAVE, "KUBE-")) == {"KUBE-CLUSTER-IP"}
    assert ipset.parse_save(SAVE, "KUBE-")["KUBE-CLUSTER-IP"].entries == {"10.96.0.1,tcp:443"}


def test_parse_save_of_nothing():
    assert ipset.parse_save("") == {}


def test_restore_text_builds_under_a_temporary_name_and_swaps():
    sets = [
        IPSet("kosmos-remote", "hash:net", 4, frozenset({"10.97.0.0/16", "10.2.1.0/24"})),
        IPSet("kosmos-remote6", "hash:net", 6, frozenset()),
    ]
    assert ipset.restore_text(sets) == (
        "create kosmos-remote hash:net family inet -exist\n"
        "create kosmos-remote-tmp hash:net family inet -exist\n"
        "flush kosmos-remote-tmp\n"
        "add kosmos-remote-tmp 10.2.1.0/24\n"
        "add kosmos-remote-tmp 10.97.0.0/16\n"
        "swap kosmos-remote-tmp kosmos-remote\n"
        "destroy kosmos-remote-tmp\n"
        "create kosmos-remote6 hash:net family inet6 -exist\n"
        "create kosmos-remote6-tmp hash:net family inet6 -exist\n"
        "flush kosmos-remote6-tmp\n"
        "swap kosmos-remote6-tmp kosmos-remote6\n"
        "destroy kosmos-remote6-tmp\n"
    )


def test_a_temporary_name_fits_the_kernels_31_characters():
    long = IPSet("kosmos-" + "x" * 24, "hash:net", 4, frozenset({"10.0.0.0/8"}))
    text = ipset.restore_text([long])
    temp = text.splitlines()[1].split()[1]
    assert temp.endswith("-tmp") and len(temp) <= 31 and temp != long.name


def test_parse_save_spells_entries_as_the_desired_state_does():
    # ipset prints 10.0.0.5/32 as "10.0.0.5": read as is, a wanted set holding a host prefix
    # never matched what the kernel had, and the agent rewrote it on every pass
    sets = ipset.parse_save(SAVE)
    assert sets["kosmos-remote"].entries == {"10.2.1.0/24", "10.0.0.5/32", "10.97.0.0/16"}
    assert sets["kosmos-remote6"].entries == {"fd02:0:0:1::/64", "fd02::5/128"}


def test_a_set_reads_back_equal_to_the_wanted_one():
    spec = {"ipsets": [{"name": "kosmos-remote", "entries": ["10.0.0.5/32", "10.2.1.0/24"]}]}
    (wanted,) = desired.build(spec, {}).state.ipsets
    kernel = (
        "create kosmos-remote hash:net family inet hashsize 1024 maxelem 65536 bucketsize 12\n"
        "add kosmos-remote 10.0.0.5\n"
        "add kosmos-remote 10.2.1.0/24\n"
    )
    assert ipset.parse_save(kernel) == {"kosmos-remote": wanted}
