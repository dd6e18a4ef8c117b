import ipaddress

import pytest

from kosmos.clusterlink import remotepools
from kosmos.clusterlink.remotepools import Overlap


def cluster(name, pods=(), services=(), global_map=None):
    link = {"cni": "calico"}
    if global_map:
        link["globalCIDRsMap"] = global_map
    return {
        "metadata": {"name": name},
        "spec": {"clusterLinkOptions": link},
        "status": {"clusterLinkStatus": {"podCIDRs": list(pods), "serviceCIDRs": list(services)}},
    }


def pool(name, cidr, ours=False):
    labels = {"app.kubernetes.io/managed-by": "kosmos-network-manager"} if ours else {}
    return {"metadata": {"name": name, "labels": labels}, "spec": {"cidr": cidr}}


OWN = [pool("default-ipv4-ippool", "10.244.0.0/16")]


@pytest.mark.parametrize(
    ("cluster_name", "kind", "cidr", "want"),
    [
        ("m2", "pod", "10.12.0.0/16", "clusterlink-m2-pod-10-12-0-0-16"),
        ("m2", "service", "10.112.0.0/16", "clusterlink-m2-service-10-112-0-0-16"),
        ("m-2", "pod", "fd00:12::/64", "clusterlink-m-2-pod-fd00-12---64"),
    ],
)
def test_pool_name(cluster_name, kind, cidr, want):
    assert remotepools.pool_name(cluster_name, kind, cidr) == want


@pytest.mark.parametrize(
    ("cidr", "global_map", "want"),
    [
        ("10.12.0.0/16", {}, "10.12.0.0/16"),
        ("10.12.0.0/16", {"10.12.0.0/16": "172.30.0.0/16"}, "172.30.0.0/16"),
        ("10.12.3.0/24", {"10.12.0.0/16": "172.30.0.0/16"}, "172.30.3.0/24"),  # inside
        ("10.13.0.0/16", {"10.12.0.0/16": "172.30.0.0/16"}, "10.13.0.0/16"),
        ("fd00:12::/64", {"fd00:12::/48": "fd99:12::/48"}, "fd99:12::/64"),
        ("10.12.0.0/16", {"fd00:12::/48": "fd99:12::/48"}, "10.12.0.0/16"),  # other family
    ],
)
def test_seen_through_the_global_map(cidr, global_map, want):
    assert str(remotepools.seen(ipaddress.ip_network(cidr), global_map)) == want


def test_a_disabled_non_nat_pool_per_remote_range():
    clusters = [
        cluster("m1", ["10.244.0.0/16"], ["10.96.0.0/12"]),  # the member itself: skipped
        cluster("m2", ["10.12.0.0/16", "fd00:12::/64"], ["10.112.0.0/16"]),
    ]
    wanted, overlaps = remotepools.remote_pools("m1", clusters, OWN)
    assert overlaps == []
    assert sorted(wanted) == [
        "clusterlink-m2-pod-10-12-0-0-16",
        "clusterlink-m2-pod-fd00-12---64",
        "clusterlink-m2-service-10-112-0-0-16",
    ]
    pod = wanted["clusterlink-m2-pod-10-12-0-0-16"]
    assert pod["apiVersion"] == "crd.projectcalico.org/v1"
    assert pod["kind"] == "IPPool"
    assert pod["metadata"]["labels"] == {
        "kosmos.io/cluster": "m2",
        "app.kubernetes.io/managed-by": "kosmos-network-manager",
    }
    assert pod["spec"] == {
        "cidr": "10.12.0.0/16",
        "natOutgoing": False,
        "disabled": True,
        "disableBGPExport": True,
        "vxlanMode": "Never",
        "ipipMode": "Never",
    }


def test_global_cidrs_replace_overlapping_real_ones():
    clusters = [cluster("m2", ["10.244.0.0/16"], global_map={"10.244.0.0/16": "172.30.0.0/16"})]
    wanted, overlaps = remotepools.remote_pools("m1", clusters, OWN)
    assert list(wanted) == ["clusterlink-m2-pod-172-30-0-0-16"]
    assert overlaps == []


def test_overlapping_remote_ranges_are_left_out_and_reported():
    clusters = [cluster("m2", ["10.244.128.0/17", "10.12.0.0/16"])]
    wanted, overlaps = remotepools.remote_pools("m1", clusters, OWN)
    assert list(wanted) == ["clusterlink-m2-pod-10-12-0-0-16"]
    assert overlaps == [Overlap("m2", "pod", "10.244.128.0/17", "default-ipv4-ippool")]
    assert "globalCIDRsMap" in str(overlaps[0])


def test_our_own_pools_do_not_count_as_the_members_ranges():
    pools = [*OWN, pool("clusterlink-m3-pod-10-13-0-0-16", "10.13.0.0/16", ours=True)]
    wanted, overlaps = remotepools.remote_pools("m1", [cluster("m3", ["10.13.0.0/16"])], pools)
    assert list(wanted) == ["clusterlink-m3-pod-10-13-0-0-16"]
    assert overlaps == []


def test_needs_apply_compares_our_spec_and_labels():
    want = remotepools.pool_object("m2", "pod", "10.12.0.0/16")
    live = {
        "metadata": {**want["metadata"], "resourceVersion": "5", "uid": "u"},
        "spec": {**want["spec"], "blockSize": 26, "nodeSelector": "all()"},  # Calico defaults
    }
    assert not remotepools.needs_apply(live, want)
    assert remotepools.needs_apply(None, want)
    assert remotepools.needs_apply({**live, "spec": {**live["spec"], "disabled": False}}, want)


def test_stale_pools_are_only_ours():
    wanted = {"clusterlink-m2-pod-10-12-0-0-16": {}}
    pools = [
        pool("clusterlink-m2-pod-10-12-0-0-16", "10.12.0.0/16", ours=True),
        pool("clusterlink-m3-pod-10-13-0-0-16", "10.13.0.0/16", ours=True),  # m3 left
        pool("clusterlink-legacy", "10.14.0.0/16"),  # someone else's (no label)
        pool("default-ipv4-ippool", "10.244.0.0/16"),
    ]
    assert remotepools.stale(pools, wanted) == ["clusterlink-m3-pod-10-13-0-0-16"]
