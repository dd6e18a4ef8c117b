import json

import pytest

from kosmos.clusterlink import discovery
from kosmos.clusterlink.discovery import DiscoveryError

# Verbatim answers of kube-apiserver v1.36.3 (the local environment's cluster1) to
# probe_service(4) and probe_service(6); the second cluster serves IPv4 only.
REJECTED_V4 = (
    'Service "kosmos-service-cidr-probe" is invalid: spec.clusterIPs: Invalid value: '
    '["0.0.0.1"]: failed to allocate IP 0.0.0.1: the provided IP (0.0.0.1) is not in the '
    "valid range. The range of valid IPs is 10.111.0.0/16"
)
REJECTED_V6_UNSERVED = (
    'Service "kosmos-service-cidr-probe" is invalid: spec.ipFamilies[0]: Invalid value: '
    '"IPv6": not configured on this cluster'
)
REJECTED_V6_NO_FAMILY = (
    'Service "kosmos-service-cidr-probe" is invalid: spec.clusterIPs[0]: Invalid value: '
    '["::1"]: IPv6 is not configured on this cluster'
)
# The same allocator error for the secondary family of a dual-stack apiserver
# (ipallocator.ErrNotInRange, pkg/registry/core/service/ipallocator/interfaces.go).
REJECTED_V6 = (
    'Service "kosmos-service-cidr-probe" is invalid: spec.clusterIPs: Invalid value: '
    '["::1"]: failed to allocate IP ::1: the provided IP (::1) is not in the valid range. '
    "The range of valid IPs is fd00:10:96::/112"
)


def obj(name, namespace=None, **fields):
    meta = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {"metadata": meta, **fields}


def cluster(**link):
    return {"metadata": {"name": "m1"}, "spec": {"clusterLinkOptions": link}}


# --- normalisation and aggregation --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("10.0.0.0/16", "10.0.0.0/16"),
        (" 10.0.3.7/16 ", "10.0.0.0/16"),  # host bits cleared
        ("2409:8c2f:3800:0011::0a18:0000/114", "2409:8c2f:3800:11::a18:0/114"),  # spec §6.2
        ("FD00::/64", "fd00::/64"),
        ("10.1.2.3", "10.1.2.3/32"),
    ],
)
def test_normalize(text, want):
    assert str(discovery.normalize(text, "x")) == want


@pytest.mark.parametrize("text", ["", "10.0.0.0/33", "not-a-cidr", "10.0.0/8x"])
def test_normalize_rejects_with_the_source(text):
    with pytest.raises(DiscoveryError, match="^flag: "):
        discovery.normalize(text, "flag")


@pytest.mark.parametrize(
    ("cidrs", "want"),
    [
        ([], []),
        (["10.11.0.0/24", "10.11.1.0/24", "10.11.2.0/24"], ["10.11.0.0/23", "10.11.2.0/24"]),
        (["10.0.0.0/16", "10.0.5.0/24"], ["10.0.0.0/16"]),  # contained
        (["10.0.0.0/24", "10.0.0.0/24"], ["10.0.0.0/24"]),  # duplicate
        (["fd00::/65", "10.2.0.0/16", "fd00:0:0:0:8000::/65", "10.1.0.0/16"],
         ["10.1.0.0/16", "10.2.0.0/16", "fd00::/64"]),  # v4 first, each sorted
        (["10.0.1.0/24", "10.0.2.0/24"], ["10.0.1.0/24", "10.0.2.0/24"]),  # not aligned
    ],
)  # fmt: skip
def test_aggregate(cidrs, want):
    assert discovery.parse_list(cidrs, "x") == want


# --- pod CIDR sources ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("link", "want"),
    [
        ({}, "calico"),  # the CRD's default
        ({"cni": "calico"}, "calico"),
        ({"cni": "Flannel"}, "flannel"),
        ({"cni": "cilium"}, "cilium"),
        ({"cni": "kwok"}, "nodes"),
        ({"cni": "weave"}, "nodes"),
        ({"cni": "calico", "clusterPodCIDRs": ["10.9.0.0/16"]}, "override"),
    ],
)
def test_pod_source(link, want):
    assert discovery.pod_source(cluster(**link)) == want


def test_override_is_normalised_and_aggregated():
    c = cluster(clusterPodCIDRs=["10.9.1.0/24", "10.9.0.7/24", "fd00::/64"])
    assert discovery.override_cidrs(c) == ["10.9.0.0/23", "fd00::/64"]


def pool(name, cidr=None, **spec):
    return obj(name, spec={**({"cidr": cidr} if cidr else {}), **spec})


@pytest.mark.parametrize(
    ("pools", "want"),
    [
        ([pool("default-ipv4-ippool", "10.244.0.0/16")], ["10.244.0.0/16"]),
        ([pool("a", "10.244.0.0/17"), pool("b", "10.244.128.0/17"), pool("v6", "fd00::/48")],
         ["10.244.0.0/16", "fd00::/48"]),
        ([pool("a", "10.244.0.0/16"), pool("old", "10.8.0.0/16", disabled=True)],
         ["10.244.0.0/16"]),
        ([pool("a", "10.244.0.0/16"), pool("clusterlink-m2-pod-10-12-0-0-16", "10.12.0.0/16")],
         ["10.244.0.0/16"]),  # ours, for a remote cluster
        ([pool("clusterlinker", "10.3.0.0/16")], ["10.3.0.0/16"]),  # prefix is clusterlink-
        ([pool("a", "10.0.0.0/16", disabled=False)], ["10.0.0.0/16"]),
        ([], []),
    ],
)  # fmt: skip
def test_calico_pools(pools, want):
    assert discovery.calico_pool_cidrs(pools) == want


def test_calico_pool_without_cidr_is_named():
    with pytest.raises(DiscoveryError, match="IPPool broken has no spec.cidr"):
        discovery.calico_pool_cidrs([pool("broken")])


def flannel(conf, namespace="kube-flannel"):
    text = conf if isinstance(conf, str) else json.dumps(conf)
    return obj("kube-flannel-cfg", namespace, data={"net-conf.json": text})


@pytest.mark.parametrize(
    ("configs", "want"),
    [
        ([flannel({"Network": "10.244.0.0/16", "Backend": {"Type": "vxlan"}})], ["10.244.0.0/16"]),
        ([flannel({"Network": "10.244.0.0/16", "IPv6Network": "2001:cafe:42::/56",
                   "EnableIPv6": True})], ["10.244.0.0/16", "2001:cafe:42::/56"]),
        ([flannel({"IPv6Network": "fd00::/56", "EnableIPv4": False})], ["fd00::/56"]),
        ([flannel({"Network": "10.1.0.0/16"}), flannel({"Network": "10.1.0.0/16"}, "kube-system")],
         ["10.1.0.0/16"]),
    ],
)  # fmt: skip
def test_flannel(configs, want):
    assert discovery.flannel_cidrs(configs) == want


@pytest.mark.parametrize(
    ("config", "error"),
    [
        (obj("kube-flannel-cfg", "kube-flannel", data={}), "has no key net-conf.json"),
        (flannel("{not json"), "net-conf.json is not JSON"),
        (flannel("[1]"), "is not a JSON object"),
        (flannel({"Backend": {"Type": "vxlan"}}), "has neither Network nor IPv6Network"),
        (flannel({"Network": "10.244.0.0/33"}), "'10.244.0.0/33' is not a CIDR"),
    ],
)
def test_flannel_errors_name_the_configmap(config, error):
    with pytest.raises(DiscoveryError, match="ConfigMap kube-flannel/kube-flannel-cfg") as info:
        discovery.flannel_cidrs([config])
    assert error in str(info.value)


def cilium(**data):
    return obj("cilium-config", "kube-system", data=data)


@pytest.mark.parametrize(
    ("config", "want"),
    [
        (cilium(**{"cluster-pool-ipv4-cidr": "10.0.0.0/8"}), ["10.0.0.0/8"]),
        (cilium(**{"cluster-pool-ipv4-cidr": "10.0.0.0/9 10.128.0.0/9"}), ["10.0.0.0/8"]),
        (cilium(**{"cluster-pool-ipv4-cidr": "10.0.0.0/8", "enable-ipv6": "true",
                   "cluster-pool-ipv6-cidr": "fd02::/104"}), ["10.0.0.0/8", "fd02::/104"]),
        # IPv6 pool present but IPv6 disabled (Cilium's default): not a pod network
        (cilium(**{"cluster-pool-ipv4-cidr": "10.0.0.0/8", "cluster-pool-ipv6-cidr": "fd02::/104"}),
         ["10.0.0.0/8"]),
        (cilium(**{"enable-ipv4": "false", "enable-ipv6": "true",
                   "cluster-pool-ipv6-cidr": "fd02::/104"}), ["fd02::/104"]),
        (cilium(**{"ipam": "kubernetes", "cluster-pool-ipv4-cidr": "10.0.0.0/8"}), None),
    ],
)  # fmt: skip
def test_cilium(config, want):
    assert discovery.cilium_cidrs(config) == want


def test_cilium_without_pool_says_what_to_do():
    with pytest.raises(DiscoveryError, match="ipam multi-pool.*clusterPodCIDRs"):
        discovery.cilium_cidrs(cilium(ipam="multi-pool"))


LEAF = {"kosmos.io/node": "true"}


def node(name, cidrs=None, cidr=None, labels=None):
    spec = {}
    if cidrs is not None:
        spec["podCIDRs"] = cidrs
    if cidr is not None:
        spec["podCIDR"] = cidr
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": spec}


@pytest.mark.parametrize(
    ("nodes", "want"),
    [
        ([node("a", ["10.11.0.0/24"]), node("b", ["10.11.1.0/24"]), node("c", ["10.11.2.0/24"])],
         ["10.11.0.0/23", "10.11.2.0/24"]),
        ([node("a", ["10.1.0.0/24", "fd00:1::/64"]), node("b", ["10.1.1.0/24", "fd00:1:0:1::/64"])],
         ["10.1.0.0/23", "fd00:1::/63"]),
        ([node("a", cidr="10.1.0.0/24")], ["10.1.0.0/24"]),  # only the legacy field
        ([node("a", ["10.1.0.0/24"]), node("leaf", ["10.9.0.0/24"], labels=LEAF)],
         ["10.1.0.0/24"]),  # leaf nodes are virtual
        ([node("a"), node("b")], []),
    ],
)  # fmt: skip
def test_nodes_pod_cidrs(nodes, want):
    assert discovery.nodes_pod_cidrs(nodes) == want


def affinity(node_name, cidr, state="confirmed", deleted="false"):
    return obj(
        f"{node_name}-{cidr}",
        spec={"node": node_name, "cidr": cidr, "state": state, "deleted": deleted},
    )


@pytest.mark.parametrize(
    ("aff", "want"),
    [
        (affinity("n1", "10.244.1.0/26"), "n1"),
        (affinity("n1", "10.244.1.0/26", state="pending"), None),
        (affinity("n1", "10.244.1.0/26", state="pendingDeletion"), None),
        (affinity("n1", "10.244.1.0/26", deleted="true"), None),
        (obj("old", spec={"node": "n1", "cidr": "10.244.1.0/26"}), "n1"),  # older Calico
        (obj("x", spec={"cidr": "10.244.1.0/26"}), None),
    ],
)
def test_affinity_node(aff, want):
    assert discovery.affinity_node(aff) == want


def test_block_cidrs_aggregate_a_nodes_blocks():
    blocks = [affinity("n1", c) for c in ("10.244.1.64/26", "10.244.1.0/26", "10.244.9.0/26")]
    assert discovery.block_cidrs(blocks) == ["10.244.1.0/25", "10.244.9.0/26"]


# --- service CIDRs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "want"),
    [
        (["kube-apiserver", "--service-cluster-ip-range=10.96.0.0/12"], "10.96.0.0/12"),
        (["kube-apiserver", "--service-cluster-ip-range", "10.96.0.0/12"], "10.96.0.0/12"),
        (["--service-cluster-ip-range=10.96.0.0/12,fd00::/108"], "10.96.0.0/12,fd00::/108"),
        (["--service-cluster-ip-range=a", "--service-cluster-ip-range=b"], "b"),  # last wins
        (["--service-cluster-ip-range-extra=x"], None),
        (["--service-cluster-ip-range"], None),  # no value
        ([], None),
    ],
)
def test_flag_value(argv, want):
    assert discovery.flag_value(argv, discovery.SERVICE_RANGE_FLAG) == want


def apiserver_pod(name="kube-apiserver-master1", command=(), args=(), labels=None, **meta):
    return {
        "metadata": {"name": name, "namespace": "kube-system", "labels": labels or {}, **meta},
        "spec": {"containers": [{"name": "kube-apiserver", "command": list(command),
                                 "args": list(args)}]},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("pods", "want"),
    [
        ([apiserver_pod(command=["kube-apiserver", "--service-cluster-ip-range=10.96.0.0/12"])],
         (["10.96.0.0/12"], "kube-apiserver-master1")),
        ([apiserver_pod(command=["kube-apiserver"],
                        args=["--service-cluster-ip-range=10.96.0.1/12,FD00::/108"])],
         (["10.96.0.0/12", "fd00::/108"], "kube-apiserver-master1")),
        # found by label, whatever the name (static pods of managed distributions)
        ([apiserver_pod("apiserver-x", ["--service-cluster-ip-range=10.3.0.0/16"],
                        labels={"component": "kube-apiserver"})],
         (["10.3.0.0/16"], "apiserver-x")),
        # the first apiserver pod by name that has the flag
        ([apiserver_pod("kube-apiserver-b", ["--service-cluster-ip-range=10.2.0.0/16"]),
          apiserver_pod("kube-apiserver-a", ["kube-apiserver"]),
          apiserver_pod("kube-apiserver-c", ["--service-cluster-ip-range=10.3.0.0/16"])],
         (["10.2.0.0/16"], "kube-apiserver-b")),
        ([apiserver_pod("coredns-1", ["--service-cluster-ip-range=10.9.0.0/16"])], None),
        ([apiserver_pod(command=["--service-cluster-ip-range=10.9.0.0/16"],
                        deletionTimestamp="2026-01-01T00:00:00Z")], None),
        ([apiserver_pod(command=["kube-apiserver"])], None),
        ([], None),
    ],
)  # fmt: skip
def test_apiserver_service_cidrs(pods, want):
    assert discovery.apiserver_service_cidrs(pods) == want


def test_apiserver_flag_with_a_bad_cidr_names_the_pod():
    pods = [apiserver_pod(command=["--service-cluster-ip-range=10.96.0.0/40"])]
    with pytest.raises(DiscoveryError, match="kube-system/kube-apiserver-master1"):
        discovery.apiserver_service_cidrs(pods)


@pytest.mark.parametrize(
    ("message", "want"),
    [
        (REJECTED_V4, "10.111.0.0/16"),
        (REJECTED_V6, "fd00:10:96::/112"),
        (REJECTED_V6_UNSERVED, None),
        (REJECTED_V6_NO_FAMILY, None),
        ("create services default/x: " + REJECTED_V4, "10.111.0.0/16"),  # as ApiError says it
    ],
)
def test_parse_probe_rejection(message, want):
    assert discovery.parse_probe_rejection(message) == want


@pytest.mark.parametrize(
    "message",
    [
        'services "kosmos-service-cidr-probe" is forbidden: User "x" cannot create resource',
        "admission webhook denied the request",
        "",
    ],
)
def test_unexpected_probe_answers_are_errors(message):
    with pytest.raises(DiscoveryError, match="unexpected answer to the service CIDR probe"):
        discovery.parse_probe_rejection(message)


@pytest.mark.parametrize("family", [4, 6])
def test_probe_service_is_single_stack_with_an_impossible_address(family):
    body = discovery.probe_service(family)
    spec = body["spec"]
    assert spec["ipFamilies"] == [f"IPv{family}"]
    assert spec["ipFamilyPolicy"] == "SingleStack"
    assert spec["clusterIP"] == spec["clusterIPs"][0] == discovery.PROBE_IPS[family]
    assert body["metadata"] == {"name": "kosmos-service-cidr-probe", "namespace": "default"}


def test_service_cidr_objects_skip_deleting_ones():
    objects = [
        obj("kubernetes", spec={"cidrs": ["10.111.0.0/16"]}),
        obj("extra", spec={"cidrs": ["10.200.0.0/24", "fd00:200::/112"]}),
        {"metadata": {"name": "old", "deletionTimestamp": "t"}, "spec": {"cidrs": ["10.9.0.0/16"]}},
    ]
    want = ["10.111.0.0/16", "10.200.0.0/24", "fd00:200::/112"]
    assert discovery.service_cidr_objects(objects) == want
