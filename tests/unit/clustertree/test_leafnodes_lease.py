"""Leaf-node passes: leases renewed once per (spread) interval, and only changed leaves
recomputed — the work of a pass is flat in the number of unchanged leaves."""

from __future__ import annotations

from typing import Any

import pytest

from kosmos.api.resources import LEASES, PODS
from kosmos.clustertree import leafnodes
from kosmos.clustertree.leafnodes import LeafNodeReconciler
from kosmos.clustertree.tree import Tree, by_node
from kosmos.kube.controller import Request
from tests.unit.clustertree.test_tree import MEMBER, one_to_one_tree


def fake_tree(
    leaves: int, monkeypatch: pytest.MonkeyPatch
) -> tuple[Tree, list[Any], list[str], list[float]]:
    """A synced one-to-one member whose host writes are recorded (leases by name)."""
    tree, stores = one_to_one_tree(leaves)
    tree.manager.informer(MEMBER, PODS, indexers={"node": by_node})._synced.set()
    clock = [1000.0]
    monkeypatch.setattr(leafnodes.time, "monotonic", lambda: clock[0])
    leases: list[str] = []

    async def patch(resource: Any, name: str, body: Any, **kwargs: Any) -> Any:
        if resource is LEASES:
            leases.append(name)
        return {}

    async def get_raw(path: str, **kwargs: Any) -> Any:
        return {"gitVersion": "v1.36.3"}

    async def delete(resource: Any, name: str, **kwargs: Any) -> Any:
        tree.leaf_nodes.store.delete(name)

    monkeypatch.setattr(tree.node_client(), "patch", patch)
    monkeypatch.setattr(tree.node_client(), "delete", delete)
    monkeypatch.setattr(tree.manager.client(MEMBER), "get_raw", get_raw)
    return tree, stores, leases, clock


async def test_capacity_passes_do_not_rewrite_every_lease(monkeypatch: pytest.MonkeyPatch) -> None:
    tree, _, leases, clock = fake_tree(5, monkeypatch)
    reconciler = LeafNodeReconciler(tree)
    request = Request(MEMBER, "", "")

    result = await reconciler(request)
    assert sorted(leases) == [f"w{i}" for i in range(5)]  # the first pass renews them all
    assert result is not None and result.requeue_after is not None
    assert result.requeue_after <= tree.options.heartbeat_seconds
    for _ in range(5):  # capacity passes, a second apart
        clock[0] += 1.0
        await reconciler(request)
    assert len(leases) == 5
    clock[0] += tree.options.lease_renew_seconds  # past every leaf's spread interval
    await reconciler(request)
    assert len(leases) == 10


async def pass_work(leaves: int, monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    """(leaves recomputed, objects handed out by the caches) by one pass after one member
    node changed, the first (full) pass done."""
    tree, stores, _, clock = fake_tree(leaves, monkeypatch)
    reconciler = LeafNodeReconciler(tree)
    request = Request(MEMBER, "", "")
    await reconciler(request)
    assert reconciler.converged == leaves  # the first pass sees them all
    clock[0] += 1.0
    tree.mark_dirty(MEMBER, member_node="w3")
    before = reconciler.converged
    for store in stores:
        store.handed = 0
    await reconciler(request)
    return reconciler.converged - before, sum(store.handed for store in stores)


async def test_a_pass_recomputes_only_the_changed_leaves(monkeypatch: pytest.MonkeyPatch) -> None:
    small = await pass_work(10, monkeypatch)
    large = await pass_work(1000, monkeypatch)
    assert small == large, f"10 leaves: {small}, 1000 leaves: {large} (recomputed, handed)"
    assert small[0] == 1


async def test_changed_leaf_models_recompute_every_leaf(monkeypatch: pytest.MonkeyPatch) -> None:
    tree, _, _, clock = fake_tree(5, monkeypatch)
    reconciler = LeafNodeReconciler(tree)
    request = Request(MEMBER, "", "")
    await reconciler(request)
    cluster = tree.clusters.store.get(MEMBER)
    assert cluster is not None
    tree.clusters.store.upsert({**cluster, "status": {"phase": "Ready"}})
    clock[0] += 1.0
    await reconciler(request)
    assert reconciler.converged == 5  # a status update: the same models, nothing changed
    spec = cluster["spec"]
    options = {
        **spec["clusterTreeOptions"],
        "leafModels": spec["clusterTreeOptions"]["leafModels"][:4],
    }
    tree.clusters.store.upsert({**cluster, "spec": {"clusterTreeOptions": options}})
    clock[0] += 1.0
    await reconciler(request)
    assert reconciler.converged == 9  # new models: every leaf again


async def test_status_reports_come_due_spread_over_the_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tree, _, _, clock = fake_tree(200, monkeypatch)
    reconciler = LeafNodeReconciler(tree)
    request = Request(MEMBER, "", "")
    await reconciler(request)
    first = reconciler.converged
    clock[0] += tree.options.node_status_report_seconds * 0.95
    await reconciler(request)
    reported = reconciler.converged - first  # created together, reported apart: about half
    assert 60 < reported < 140, reported
