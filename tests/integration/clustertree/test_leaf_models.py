"""Leaf models (one-to-one, label-selected group) with their labels and taints; unjoin."""

from __future__ import annotations

import json
import urllib.request
from fractions import Fraction
from typing import Any

from kosmos.api.objects import node_ready
from kosmos.api.podrequests import pod_requests
from kosmos.api.quantity import parse_quantity
from tests.fixtures.tree import TreeEnv, leaf_nodes
from tests.integration.clustertree.test_tree import LEAF_TOLERATION, pods, running
from tests.support import apply, get, wait_for


def set_models(tree: TreeEnv, cluster: str, models: list[dict[str, Any]] | None) -> None:
    patch = {"spec": {"clusterTreeOptions": {"leafModels": models}}}
    tree.host.run("patch", "cluster", cluster, "--type", "merge", "-p", json.dumps(patch))


def names(tree: TreeEnv, cluster: str) -> set[str]:
    return {
        n["metadata"]["name"]
        for n in leaf_nodes(tree)
        if n["metadata"]["labels"].get("kosmos.io/owner-cluster") == cluster and node_ready(n)
    }


def pinned_pod(name: str, node: str, **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "nodeName": node,
            "tolerations": [LEAF_TOLERATION, {"key": "dedicated", "operator": "Exists"}],
            "containers": [{"name": "c", "image": "busybox"}],
            **extra,
        },
    }


def test_one_to_one_and_group_models_apply_labels_and_taints(tree: TreeEnv, namespace: str) -> None:
    member = tree.member("cluster2")
    nodes = get(member, "nodes")["items"]
    first = nodes[0]["metadata"]["name"]
    zone = nodes[1]["metadata"]["labels"]["topology.kubernetes.io/zone"]
    set_models(
        tree,
        "cluster2",
        [
            {
                "nodeSelector": {"nodeName": first},
                "labels": {"tier": "gold"},
                "taints": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}],
            },
            {
                "leafNodeName": "cluster2-zone-b",
                "nodeSelector": {
                    "labelSelector": {"matchLabels": {"topology.kubernetes.io/zone": zone}}
                },
            },
        ],
    )
    try:
        wait_for(
            lambda: names(tree, "cluster2") == {first, "cluster2-zone-b"},
            30,
            "one-to-one and group leaf nodes replacing kosmos-cluster2",
        )
        one = get(tree.host, "node", first)
        assert one["metadata"]["labels"]["tier"] == "gold"
        assert one["metadata"]["annotations"]["kosmos.io/leaf-mode"] == "one-to-one"
        assert {"key": "dedicated", "value": "db", "effect": "NoSchedule"} in one["spec"]["taints"]
        # a one-to-one leaf mirrors its member node's capacity
        # (less what the pods there request: join's prober and kosmos-coredns may land on it)
        on_node = get(member, "pods", "-A", "--field-selector", f"spec.nodeName={first}")
        held = [  # what ClusterTree counts: live pods it did not create itself
            p
            for p in on_node["items"]
            if p["status"].get("phase") not in ("Succeeded", "Failed")
            and (p["metadata"].get("labels") or {}).get("kosmos-io/pod") != "true"
        ]
        used = sum((pod_requests(p).get("cpu", Fraction(0)) for p in held), Fraction(0))
        node_cpu = parse_quantity(nodes[0]["status"]["allocatable"]["cpu"])
        assert parse_quantity(one["status"]["allocatable"]["cpu"]) == node_cpu - used
        group = get(tree.host, "node", "cluster2-zone-b")
        assert group["metadata"]["annotations"]["kosmos.io/leaf-mode"] == "group"

        apply(
            tree.host,
            pinned_pod("solo", first),
            pinned_pod("grouped", "cluster2-zone-b"),
            namespace=namespace,
        )
        wait_for(
            lambda: running(pods(member, namespace, "app in (solo,grouped)"), 2),
            60,
            "both pods Running in cluster2",
        )
        solo = get(member, "pod", "solo", "-n", namespace)
        assert solo["spec"]["nodeName"] == first  # pinned to its member node
        grouped = get(member, "pod", "grouped", "-n", namespace)
        node = get(member, "node", grouped["spec"]["nodeName"])
        assert node["metadata"]["labels"]["topology.kubernetes.io/zone"] == zone
    finally:
        tree.host.run("delete", "pod", "--all", "-n", namespace, "--wait=true", timeout=60)
        set_models(tree, "cluster2", None)
        wait_for(
            lambda: names(tree, "cluster2") == {"kosmos-cluster2"},
            30,
            "whole-cluster leaf node back",
        )


def test_unjoin_removes_leaf_nodes_and_member_pods_then_rejoin(
    tree: TreeEnv, namespace: str
) -> None:
    apply(tree.host, pinned_pod("gone", "kosmos-cluster1"), namespace=namespace)
    member = tree.member("cluster1")
    wait_for(lambda: running(pods(member, namespace, "app=gone"), 1), 60, "member pod Running")
    tree.unjoin("cluster1")
    assert "kosmos-cluster1" not in {n["metadata"]["name"] for n in leaf_nodes(tree)}
    assert pods(member, namespace, "app=gone") == []
    assert not member.ok("get", "pods", "-A", "-l", "kosmos-io/pod=true", "-o", "name") or not (
        member.run("get", "pods", "-A", "-l", "kosmos-io/pod=true", "-o", "name").strip()
    )
    tree.join("cluster1")
    wait_for(lambda: names(tree, "cluster1") == {"kosmos-cluster1"}, 30, "leaf node back")


def test_metrics_report_sync_latency_and_queue_depth(tree: TreeEnv) -> None:
    url = f"http://127.0.0.1:{tree.ports.health}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    assert (
        'kosmos_clustertree_pod_sync_seconds_count{cluster="cluster1",stage="member_created"}'
        in text
    )
    assert 'stage="host_status"' in text
    assert 'kosmos_workqueue_depth{name="clustertree-pods"}' in text
    assert 'kosmos_clustertree_member_ready{cluster="cluster2"} 1.0' in text
