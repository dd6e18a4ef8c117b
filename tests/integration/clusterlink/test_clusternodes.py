"""ClusterNodes against the real members: one per node, in step with it, sharing fields."""

from __future__ import annotations

import json
import urllib.request

from tests.fixtures.link import LinkEnv
from tests.integration.clusterlink.support import (
    cluster_node,
    cluster_nodes,
    discovered,
    link_options,
    link_status,
    ready,
)
from tests.support import wait_for

TEST_NODE = "cluster1-linktest"
AGENT = {"ip": "192.168.10.2", "ip6": "fd00:10::2", "interfaceName": "eth0", "roles": ["gateway"]}


def test_a_cluster_node_for_every_member_node(link: LinkEnv) -> None:
    for member in link.env.members:
        plan = link.env.plan(member)
        want = {f"{member}-{node.name}": node for node in plan.nodes}
        found = wait_for(
            lambda m=member, w=want: (cns := cluster_nodes(link, m)).keys() >= w.keys() and cns,
            20,
            f"ClusterNodes of {member}",
        )
        for name, node in want.items():
            cn = found[name]
            assert cn["metadata"]["labels"]["kosmos.io/cluster"] == member
            assert cn["spec"]["clusterName"] == member
            assert cn["spec"]["nodeName"] == node.name
            assert cn["spec"]["podCIDRs"] == [node.pod_cidr]
            assert ready(cn) == "True"


def _node_status(link: LinkEnv, status: str, message: str) -> None:
    condition = {
        "type": "Ready",
        "status": status,
        "reason": "KubeletReady" if status == "True" else "KubeletNotReady",
        "message": message,
        "lastHeartbeatTime": "2026-01-01T00:00:00Z",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }
    link.member("cluster1").run(
        "patch", "node", TEST_NODE, "--subresource", "status", "--type", "merge",
        "-p", json.dumps({"status": {"conditions": [condition]}}),
    )  # fmt: skip


def test_cluster_nodes_follow_node_add_ready_flips_exclusion_and_delete(link: LinkEnv) -> None:
    member = link.member("cluster1")
    name = f"cluster1-{TEST_NODE}"
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": TEST_NODE},  # no kwok label: kwok leaves it to the test
        "spec": {"podCIDR": "10.11.240.0/24", "podCIDRs": ["10.11.240.0/24"]},
    }
    try:
        member.run("create", "-f", "-", stdin=json.dumps(node))
        _node_status(link, "True", "kubelet is posting ready status")
        cn = wait_for(lambda: ready(c := cluster_node(link, name)) == "True" and c, 20, name)
        assert cn["spec"]["podCIDRs"] == ["10.11.240.0/24"]
        wait_for(
            lambda: "10.11.240.0/24" in link_status(link, "cluster1")["podCIDRs"],
            20,
            "the new node's podCIDR in the cluster's pod CIDRs",
        )
        _node_status(link, "False", "container runtime is down")
        cn = wait_for(lambda: ready(c := cluster_node(link, name)) == "False" and c, 20, "False")
        (condition,) = cn["status"]["conditions"]
        assert condition["reason"] == "KubeletNotReady"
        assert condition["message"] == "container runtime is down"
        member.run("label", "node", TEST_NODE, "kosmos.io/exclude=true")
        wait_for(lambda: cluster_node(link, name) is None, 20, "excluded node's ClusterNode gone")
        member.run("label", "node", TEST_NODE, "kosmos.io/exclude-")
        wait_for(lambda: cluster_node(link, name) is not None, 20, "ClusterNode back")
        member.run("delete", "node", TEST_NODE)
        wait_for(lambda: cluster_node(link, name) is None, 20, "deleted node's ClusterNode gone")
        wait_for(
            lambda: "10.11.240.0/24" not in link_status(link, "cluster1")["podCIDRs"],
            20,
            "the deleted node's podCIDR out of the cluster's pod CIDRs",
        )
    finally:
        member.run("delete", "node", TEST_NODE, "--ignore-not-found")


def test_agent_fields_survive_and_elastic_ips_match_exact_node_names(link: LinkEnv) -> None:
    name = "cluster1-cluster1-node2"
    patch = {"spec": {**AGENT, "podCIDRs": ["10.99.0.0/24"]}}  # podCIDRs is ours: restored
    link.host.run(
        "patch", "clusternode", name, "--type", "merge", "--field-manager", "kosmos-agent",
        "-p", json.dumps(patch),
    )  # fmt: skip
    try:
        with link_options(
            link,
            "cluster1",
            # "node1" is a substring of cluster1-node1 and must not match it
            nodeElasticIPMap={"cluster1-node2": "203.0.113.2", "node1": "203.0.113.99"},
        ):
            cn = wait_for(
                lambda: (
                    (c := cluster_node(link, name))["spec"].get("elasticIP") == "203.0.113.2"
                    and c["spec"]["podCIDRs"] == ["10.11.1.0/24"]
                    and c
                ),
                20,
                "elastic IP set and podCIDRs restored",
            )
            assert {k: cn["spec"].get(k) for k in AGENT} == AGENT
            assert "elasticIP" not in cluster_node(link, "cluster1-cluster1-node1")["spec"]
        cn = wait_for(
            lambda: "elasticIP" not in (c := cluster_node(link, name))["spec"] and c,
            20,
            "elastic IP removed with the map entry",
        )
        assert {k: cn["spec"].get(k) for k in AGENT} == AGENT
        assert ready(cn) == "True"
    finally:
        remove = [{"op": "remove", "path": f"/spec/{k}"} for k in AGENT]
        link.host.run("patch", "clusternode", name, "--type", "json", "-p", json.dumps(remove))


def test_a_deleted_cluster_node_comes_back(link: LinkEnv) -> None:
    name = "cluster2-cluster2-node3"
    uid = wait_for(
        lambda: (cluster_node(link, name) or {}).get("metadata", {}).get("uid"), 20, name
    )
    link.host.run("delete", "clusternode", name)
    wait_for(
        lambda: (c := cluster_node(link, name)) is not None and c["metadata"]["uid"] != uid,
        20,
        "ClusterNode re-created",
    )


def test_unjoin_removes_cluster_nodes_nodeconfigs_and_the_finalizer(link: LinkEnv) -> None:
    name = "t-link-unjoin"  # a second Cluster for cluster2: the shared ones stay joined
    link.join(name, kubeconfig_of="cluster2")
    try:
        wait_for(lambda: len(cluster_nodes(link, name)) == 3, 20, "its ClusterNodes")
        assert "kosmos.io/network-manager" in link.cluster(name)["metadata"]["finalizers"]
        nodeconfig = {
            "apiVersion": "kosmos.io/v1alpha1",
            "kind": "NodeConfig",
            "metadata": {"name": f"{name}-cluster2-node1", "labels": {"kosmos.io/cluster": name}},
            "spec": {},
        }  # as the planner names and labels them
        link.host.run("create", "-f", "-", stdin=json.dumps(nodeconfig))
    finally:
        link.unjoin(name)
    assert not link.host.ok("get", "cluster", name)
    assert cluster_nodes(link, name) == {}
    left = link.host.run("get", "nodeconfigs", "-l", f"kosmos.io/cluster={name}", "-o", "name")
    assert left.strip() == ""


def test_an_unloadable_kubeconfig_is_reported_on_the_cluster(link: LinkEnv) -> None:
    cluster = {
        "apiVersion": "kosmos.io/v1alpha1",
        "kind": "Cluster",
        "metadata": {"name": "t-link-nocreds"},
        "spec": {
            "kubeconfigSecretRef": {"name": "kosmos-kubeconfig-missing"},
            "clusterLinkOptions": {"enable": True, "cni": "kwok"},
            "clusterTreeOptions": {"enable": False},
        },
    }
    link.host.run("create", "-f", "-", stdin=json.dumps(cluster))
    try:
        condition = wait_for(
            lambda: (c := discovered(link, "t-link-nocreds")).get("status") == "False" and c,
            20,
            "CIDRsDiscovered False",
        )
        assert condition["reason"] == "KubeconfigInvalid"
        assert "kosmos-system/kosmos-kubeconfig-missing" in condition["message"]
    finally:
        link.host.run("delete", "cluster", "t-link-nocreds", "--timeout", "30s")


def test_metrics_count_discoveries_and_cluster_nodes(link: LinkEnv) -> None:
    url = f"http://127.0.0.1:{link.ports.network_health}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    assert 'kosmos_clusterlink_discovered_cidrs{cluster="cluster1",kind="service"} 1.0' in text
    assert (
        'kosmos_clusterlink_cidr_discoveries_total{cluster="cluster1",kind="service",source="probe"}'
        in text
    )
    assert 'kosmos_reconcile_total{controller="network-manager-clusternodes"' in text


def test_the_host_is_its_own_member_when_the_root_cluster_links(link: LinkEnv) -> None:
    root = "kosmos-control-cluster"
    previous = (
        link.cluster(root)["spec"].get("clusterLinkOptions")
        if link.host.ok("get", "cluster", root)
        else False
    )
    if previous is False:
        cluster = {
            "apiVersion": "kosmos.io/v1alpha1",
            "kind": "Cluster",
            "metadata": {"name": root, "annotations": {"kosmos.io/cluster-role": "root"}},
            "spec": {
                "clusterLinkOptions": {"enable": True, "cni": "kwok"},
                "clusterTreeOptions": {"enable": False},
            },
        }
        link.host.run("create", "-f", "-", stdin=json.dumps(cluster))
    else:
        link.patch_link(root, {"enable": True, "cni": "kwok"})
    try:
        want = {f"{root}-{node.name}" for node in link.env.plan(link.env.host).nodes}
        wait_for(lambda: cluster_nodes(link, root).keys() == want, 20, "the host's ClusterNodes")
        wait_for(
            lambda: link_status(link, root).get("serviceCIDRs") == ["10.110.0.0/16"],
            20,
            "the host's service CIDR",
        )
        assert link_status(link, root)["podCIDRs"] == ["10.10.0.0/23", "10.10.2.0/24"]
    finally:
        if previous is False:
            link.host.run("delete", "cluster", root, "--timeout", "30s")
        elif previous is None:
            remove = [{"op": "remove", "path": "/spec/clusterLinkOptions"}]
            link.host.run("patch", "cluster", root, "--type", "json", "-p", json.dumps(remove))
        else:
            replace = [{"op": "replace", "path": "/spec/clusterLinkOptions", "value": previous}]
            link.host.run("patch", "cluster", root, "--type", "json", "-p", json.dumps(replace))
    wait_for(lambda: cluster_nodes(link, root) == {}, 20, "the host's ClusterNodes gone")
