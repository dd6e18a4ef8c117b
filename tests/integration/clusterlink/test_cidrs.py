"""CIDR discovery against the real members: the probe, the nodes, CNI configs, the override."""

from __future__ import annotations

import json

from tests.fixtures.link import LinkEnv
from tests.integration.clusterlink.support import (
    CALICO_CRDS,
    calico,
    cluster_node,
    discovered,
    ippools,
    link_options,
    link_status,
    node_pod_cidrs,
    wait_reason,
    wait_status,
)
from tests.support import apply, wait_for


def test_service_cidrs_come_from_the_invalid_service_probe(link: LinkEnv) -> None:
    # The local members run kube-apiserver as a process, not a pod: the probe is the path.
    for member, want in zip(link.env.members, (["10.111.0.0/16"], ["10.112.0.0/16"]), strict=True):
        assert link.env.plan(member).service_cidr == want[0]
        wait_status(link, member, "serviceCIDRs", want)
        condition = discovered(link, member)
        assert condition["status"] == "True", condition
        assert condition["message"].endswith(f"service CIDRs {want[0]} from probe")
    assert not link.member("cluster1").ok("get", "service", "kosmos-service-cidr-probe")


def test_pod_cidrs_are_the_aggregate_of_node_pod_cidrs(link: LinkEnv) -> None:
    for member in link.env.members:
        index = link.env.plan(member).index
        want = [f"10.{10 + index}.0.0/23", f"10.{10 + index}.2.0/24"]  # three /24 nodes
        assert node_pod_cidrs(link, member) == want
        wait_status(link, member, "podCIDRs", want)
        assert f"pod CIDRs {', '.join(want)} from nodes" in discovered(link, member)["message"]


def test_cluster_pod_cidrs_override_discovery(link: LinkEnv) -> None:
    nodes = node_pod_cidrs(link, "cluster2")
    with link_options(link, "cluster2", clusterPodCIDRs=["10.250.1.0/24", "10.250.0.7/24"]):
        wait_status(link, "cluster2", "podCIDRs", ["10.250.0.0/23"])
        assert "from override" in discovered(link, "cluster2")["message"]
    wait_status(link, "cluster2", "podCIDRs", nodes)


def test_flannel_config_is_read_and_followed(link: LinkEnv) -> None:
    member = link.member("cluster1")
    nodes = node_pod_cidrs(link, "cluster1")

    def flannel(network: str) -> dict[str, object]:
        conf = {"Network": network, "IPv6Network": "fd00:211::/56", "Backend": {"Type": "vxlan"}}
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "kube-flannel-cfg", "namespace": "kube-system"},
            "data": {"net-conf.json": json.dumps(conf)},
        }

    try:
        with link_options(link, "cluster1", cni="flannel"):
            condition = wait_reason(link, "cluster1", "FlannelConfigNotFound")
            assert condition["status"] == "False"
            assert "kube-flannel-cfg" in condition["message"]
            assert "spec.clusterLinkOptions.cni" in condition["message"]
            assert link_status(link, "cluster1")["podCIDRs"] == nodes  # kept, not blanked
            events = link.host.run(
                "get", "events", "-n", "default",
                "--field-selector", "involvedObject.name=cluster1,reason=FlannelConfigNotFound",
            )  # fmt: skip
            assert "kube-flannel-cfg" in events
            apply(member, flannel("10.211.0.0/16"))
            wait_status(link, "cluster1", "podCIDRs", ["10.211.0.0/16", "fd00:211::/56"])
            apply(member, flannel("10.212.0.0/16"))  # an edit is followed, not only a timer
            wait_status(link, "cluster1", "podCIDRs", ["10.212.0.0/16", "fd00:211::/56"])
    finally:
        member.run(
            "delete", "configmap", "-n", "kube-system", "kube-flannel-cfg", "--ignore-not-found"
        )
    wait_status(link, "cluster1", "podCIDRs", nodes)


def test_cilium_cluster_pool_and_kubernetes_ipam(link: LinkEnv) -> None:
    member = link.member("cluster2")
    nodes = node_pod_cidrs(link, "cluster2")

    def cilium(**data: str) -> dict[str, object]:
        meta = {"name": "cilium-config", "namespace": "kube-system"}
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}

    try:
        with link_options(link, "cluster2", cni="cilium"):
            wait_reason(link, "cluster2", "CiliumConfigNotFound")
            apply(member, cilium(**{"cluster-pool-ipv4-cidr": "10.221.0.0/17 10.221.128.0/17"}))
            wait_status(link, "cluster2", "podCIDRs", ["10.221.0.0/16"])
            assert "from cilium" in discovered(link, "cluster2")["message"]
            apply(member, cilium(ipam="kubernetes", **{"cluster-pool-ipv4-cidr": "10.221.0.0/16"}))
            wait_status(link, "cluster2", "podCIDRs", nodes)
            assert "from nodes" in discovered(link, "cluster2")["message"]
    finally:
        member.run(
            "delete", "configmap", "-n", "kube-system", "cilium-config", "--ignore-not-found"
        )


def test_calico_pools_and_block_affinities_come_and_go_with_the_crds(link: LinkEnv) -> None:
    member = link.member("cluster2")
    nodes = node_pod_cidrs(link, "cluster2")
    try:
        with link_options(link, "cluster2", cni="calico"):
            condition = wait_reason(link, "cluster2", "CalicoNotInstalled")
            assert "crd.projectcalico.org/v1 IPPools" in condition["message"]
            apply(member, *CALICO_CRDS)
            member.run("wait", "--for", "condition=Established", "--timeout", "30s",
                       "crd/ippools.crd.projectcalico.org",
                       "crd/blockaffinities.crd.projectcalico.org")  # fmt: skip
            apply(
                member,
                calico("IPPool", "default-ipv4-ippool", cidr="10.232.0.0/16"),
                calico("IPPool", "retired", cidr="10.9.0.0/16", disabled=True),
                # the pool ClusterLink would create there for a remote cluster
                calico("IPPool", "clusterlink-cluster1-pod-10-11-0-0-16", cidr="10.11.0.0/16"),
                calico("BlockAffinity", "b1", node="cluster2-node1", cidr="10.232.1.0/26",
                       state="confirmed", deleted="false"),
                calico("BlockAffinity", "b2", node="cluster2-node1", cidr="10.232.1.64/26",
                       state="confirmed", deleted="false"),
                calico("BlockAffinity", "b3", node="cluster2-node1", cidr="10.232.7.0/26",
                       state="pending", deleted="false"),
            )  # fmt: skip
            wait_status(link, "cluster2", "podCIDRs", ["10.232.0.0/16"])
            assert "from calico" in discovered(link, "cluster2")["message"]
            # cluster1's ranges become disabled, non-NAT pools in cluster2
            remote = {
                "clusterlink-cluster1-pod-10-11-0-0-23": "10.11.0.0/23",
                "clusterlink-cluster1-pod-10-11-2-0-24": "10.11.2.0/24",
                "clusterlink-cluster1-service-10-111-0-0-16": "10.111.0.0/16",
            }
            pools = wait_for(
                lambda: (p := ippools(link, "cluster2")).keys() >= remote.keys() and p,
                20,
                "IPPools for cluster1's CIDRs in cluster2",
            )
            for name, cidr in remote.items():
                assert pools[name]["spec"]["cidr"] == cidr
                assert pools[name]["spec"]["disabled"] is True
                assert pools[name]["spec"]["natOutgoing"] is False
                assert pools[name]["metadata"]["labels"]["kosmos.io/cluster"] == "cluster1"
            assert not any(n.startswith("clusterlink-cluster2-") for n in pools)
            wait_for(
                lambda: (
                    (cluster_node(link, "cluster2-cluster2-node1") or {})["spec"].get("podCIDRs")
                    == ["10.232.1.0/25"]
                ),
                20,
                "node1's confirmed blocks as its podCIDRs",
            )
            assert cluster_node(link, "cluster2-cluster2-node2")["spec"].get("podCIDRs") in (
                None,
                [],
            )
            for crd in CALICO_CRDS:
                member.run("delete", "crd", crd["metadata"]["name"])
            wait_reason(link, "cluster2", "CalicoNotInstalled")
            wait_for(
                lambda: (
                    cluster_node(link, "cluster2-cluster2-node1")["spec"]["podCIDRs"]
                    == ["10.12.0.0/24"]
                ),
                20,
                "node podCIDRs again without Calico",
            )
    finally:
        for crd in CALICO_CRDS:
            member.run("delete", "crd", crd["metadata"]["name"], "--ignore-not-found")
    wait_status(link, "cluster2", "podCIDRs", nodes)


def test_the_apiserver_flag_wins_unless_use_external_apiserver(link: LinkEnv) -> None:
    member = link.member("cluster1")
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "kube-apiserver-linktest",
            "namespace": "kube-system",
            "labels": {"component": "kube-apiserver", "tier": "control-plane"},
        },
        "spec": {
            "nodeName": "cluster1-node1",
            "containers": [
                {
                    "name": "kube-apiserver",
                    "image": "registry.k8s.io/kube-apiserver:v1.36.3",
                    "command": ["kube-apiserver", "--service-cluster-ip-range=10.96.0.0/16"],
                }
            ],
        },
    }
    try:
        apply(member, pod)
        # the flag, plus the apiserver's ServiceCIDR objects (here they disagree on purpose)
        wait_status(link, "cluster1", "serviceCIDRs", ["10.96.0.0/16", "10.111.0.0/16"])
        assert discovered(link, "cluster1")["message"].endswith("from flags")
        with link_options(link, "cluster1", useExternalApiserver=True):
            wait_status(link, "cluster1", "serviceCIDRs", ["10.111.0.0/16"])
            assert discovered(link, "cluster1")["message"].endswith("from probe")
    finally:
        member.run(
            "delete", "pod", "-n", "kube-system", "kube-apiserver-linktest",
            "--ignore-not-found", "--grace-period=0", "--force",
        )  # fmt: skip
    wait_status(link, "cluster1", "serviceCIDRs", ["10.111.0.0/16"])
