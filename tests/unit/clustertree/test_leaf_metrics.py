"""Leaf node series: free room, bound pods and member nodes per leaf, gone with the leaf."""

from __future__ import annotations

from typing import Any

import pytest

from kosmos.api.resources import NODES, PODS
from kosmos.clustertree.leafnodes import LeafNodeReconciler
from kosmos.clustertree.tree import by_node
from kosmos.kube.controller import Request
from kosmos.kube.metrics import REGISTRY
from tests.unit.clustertree.test_tree import MEMBER, one_to_one_tree

READY = {"type": "Ready", "status": "True"}


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


async def test_a_pass_records_each_leaf_and_a_removed_leaf_loses_its_series(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tree, _ = one_to_one_tree(2)
    tree.manager.informer(MEMBER, PODS, indexers={"node": by_node})._synced.set()
    allocatable = {"cpu": "4", "memory": "8Gi", "ephemeral-storage": "10Gi", "pods": "110"}
    tree.member(MEMBER, NODES).store.upsert(
        {"metadata": {"name": "w0"}, "status": {"allocatable": allocatable, "conditions": [READY]}}
    )
    done = {"metadata": {"name": "old", "namespace": "ns", "uid": "u-old"}}
    tree.pods.store.upsert({**done, "spec": {"nodeName": "w0"}, "status": {"phase": "Succeeded"}})

    async def ok(*args: Any, **kwargs: Any) -> Any:
        return {"gitVersion": "v1.36.3"}

    monkeypatch.setattr(tree.node_client(), "patch", ok)  # leaf Nodes and Leases
    monkeypatch.setattr(tree.node_client(), "delete", ok)
    monkeypatch.setattr(tree.manager.client(MEMBER), "get_raw", ok)
    await LeafNodeReconciler(tree)(Request(MEMBER, "", ""))

    leaf = {"cluster": MEMBER, "node": "w0"}
    assert sample("kosmos_clustertree_leaf_allocatable", **leaf, resource="cpu") == 4
    assert sample("kosmos_clustertree_leaf_allocatable", **leaf, resource="memory") == 8 * 2**30
    assert sample("kosmos_clustertree_leaf_pods", **leaf) == 1  # the finished pod is not counted
    # a pod bound after the pass counts at the next scrape: passes skip unchanged leaves
    new = {"metadata": {"name": "new", "namespace": "ns", "uid": "u-new"}}
    tree.pods.store.upsert({**new, "spec": {"nodeName": "w0"}, "status": {"phase": "Pending"}})
    assert sample("kosmos_clustertree_leaf_pods", **leaf) == 2
    assert sample("kosmos_clustertree_leaf_member_nodes", **leaf) == 1
    empty = {"cluster": MEMBER, "node": "w1"}  # its member node is not Ready: no room
    assert sample("kosmos_clustertree_leaf_allocatable", **empty, resource="pods") == 0
    assert sample("kosmos_clustertree_leaf_member_nodes", **empty) == 0

    w0 = tree.leaf_nodes.store.get("w0")
    assert w0 is not None
    tree.leaf_nodes.store.upsert({"metadata": {**w0["metadata"], "uid": "leaf-uid"}})
    cluster = tree.clusters.store.get(MEMBER)
    assert cluster is not None
    models = [{"nodeSelector": {"nodeName": "w1"}}]
    tree.clusters.store.upsert(
        {**cluster, "spec": {"clusterTreeOptions": {"enable": True, "leafModels": models}}}
    )
    await LeafNodeReconciler(tree)(Request(MEMBER, "", ""))
    assert sample("kosmos_clustertree_leaf_pods", **leaf) is None
    assert sample("kosmos_clustertree_leaf_pods", **empty) == 1

    tree.clusters.store.delete(MEMBER)
    await LeafNodeReconciler(tree)(Request(MEMBER, "", ""))
    assert sample("kosmos_clustertree_leaf_pods", **empty) is None
