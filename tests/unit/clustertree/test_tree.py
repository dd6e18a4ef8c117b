"""Per-pod lookups of the cluster-manager do not grow with the number of leaf nodes."""

from __future__ import annotations

import builtins
from typing import Any

import pytest

from kosmos.api import names
from kosmos.api.resources import NODES
from kosmos.clustertree import tree as tree_module
from kosmos.clustertree.pods import PodReconciler
from kosmos.clustertree.tree import Options, Tree, by_node, pod_dependency_keys
from kosmos.kube.client import Client
from kosmos.kube.component import HOST
from kosmos.kube.config import ClusterConfig
from kosmos.kube.events import EventRecorder
from kosmos.kube.manager import Manager
from kosmos.kube.store import Store

MEMBER = "m1"


class CountingStore(Store):
    """A store that counts the objects it hands out by list or index (what a scan costs)."""

    def __init__(self, indexers: Any = None) -> None:
        super().__init__(indexers)
        self.handed = 0

    def list(self) -> builtins.list[Any]:
        out = super().list()
        self.handed += len(out)
        return out

    def by_index(self, index: str, value: str) -> builtins.list[Any]:
        out = super().by_index(index, value)
        self.handed += len(out)
        return out


def one_to_one_tree(leaves: int) -> tuple[Tree, list[CountingStore]]:
    """A member with ``leaves`` one-to-one leaf nodes and one pod using a ConfigMap on each."""
    client = Client(ClusterConfig(HOST, "https://127.0.0.1:1"))
    manager = Manager("test")
    manager.add_cluster(HOST, client)
    manager.add_cluster(MEMBER, Client(ClusterConfig(MEMBER, "https://127.0.0.1:2")))
    tree = Tree(manager, Options(), EventRecorder(client, "test"))
    tree.leaf_nodes.store = CountingStore({"cluster": tree_module._by_cluster})
    tree.pods.store = CountingStore({"node": by_node, "deps": pod_dependency_keys})
    member_nodes = tree.member(MEMBER, NODES)
    member_nodes.store = CountingStore()
    models = [{"nodeSelector": {"nodeName": f"w{i}"}} for i in range(leaves)]
    tree.clusters.store.upsert(
        {
            "metadata": {"name": MEMBER, "resourceVersion": "1"},
            "spec": {"clusterTreeOptions": {"enable": True, "leafModels": models}},
        }
    )
    for i in range(leaves):
        tree.leaf_nodes.store.upsert(
            {
                "metadata": {
                    "name": f"w{i}",
                    "uid": f"n{i}",
                    "labels": {names.LABEL_NODE: "true", names.LABEL_OWNER_CLUSTER: MEMBER},
                }
            }
        )
        member_nodes.store.upsert({"metadata": {"name": f"w{i}"}})
        tree.pods.store.upsert(
            {
                "metadata": {"name": f"p{i}", "namespace": "ns", "uid": f"u{i}"},
                "spec": {
                    "nodeName": f"w{i}",
                    "containers": [{"name": "c", "envFrom": [{"configMapRef": {"name": "cfg"}}]}],
                },
                "status": {"phase": "Running"},
            }
        )
    return tree, [tree.leaf_nodes.store, tree.pods.store, member_nodes.store]


def per_pod_work(leaves: int, monkeypatch: pytest.MonkeyPatch) -> int:
    """Objects listed plus leaf models parsed for one pod's placement, one dependency's
    users and one leaf's member nodes, once the Cluster was parsed."""
    tree, stores = one_to_one_tree(leaves)
    parsed = [0]
    parse = tree_module.leaf_nodes

    def counting_parse(cluster: Any) -> Any:
        out = parse(cluster)
        parsed[0] += len(out)
        return out

    monkeypatch.setattr(tree_module, "leaf_nodes", counting_parse)
    pods = PodReconciler(tree)
    host = tree.pods.store.get("ns/p0")
    assert host is not None
    assert pods._placement(MEMBER, host).member_node == "w0"  # parses the Cluster once
    for store in stores:
        store.handed = 0
    parsed[0] = 0
    placement = pods._placement(MEMBER, host)
    assert placement.member_node == "w0"
    users = tree.users(MEMBER, "ns", "configmaps/cfg")
    assert len(users) == leaves  # every pod uses it: the answer grows, the lookups per pod not
    leaf = tree.leaf(MEMBER, "w1")
    assert leaf is not None
    assert [n["metadata"]["name"] for n in tree.member_nodes(MEMBER, leaf)] == ["w1"]
    listed = sum(store.handed for store in stores) - len(users)  # the users themselves
    return listed + parsed[0]


def test_per_pod_lookups_are_flat_in_the_number_of_leaf_nodes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    small = per_pod_work(10, monkeypatch)
    large = per_pod_work(1000, monkeypatch)
    assert large == small, f"{small} objects touched with 10 leaf nodes, {large} with 1000"


def test_a_changed_cluster_is_parsed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    tree, _ = one_to_one_tree(3)
    assert tree.leaf(MEMBER, "w2") is not None
    cluster = tree.clusters.store.get(MEMBER)
    assert cluster is not None
    fewer = {**cluster, "metadata": {"name": MEMBER, "resourceVersion": "2"}}
    fewer["spec"] = {"clusterTreeOptions": {"leafModels": [{"nodeSelector": {"nodeName": "w0"}}]}}
    tree.clusters.store.upsert(fewer)
    assert tree.leaf(MEMBER, "w2") is None
    assert tree.leaf(MEMBER, "w0") is not None
