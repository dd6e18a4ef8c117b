"""Leaf node leases: renewed once a heartbeat, not on every capacity pass."""

from __future__ import annotations

from typing import Any

import pytest

from kosmos.api.resources import LEASES, PODS
from kosmos.clustertree import leafnodes
from kosmos.clustertree.leafnodes import LeafNodeReconciler
from kosmos.clustertree.tree import by_node
from kosmos.kube.component import HOST
from kosmos.kube.controller import Request
from tests.unit.clustertree.test_tree import MEMBER, one_to_one_tree


async def test_capacity_passes_do_not_rewrite_every_lease(monkeypatch: pytest.MonkeyPatch) -> None:
    tree, _ = one_to_one_tree(5)
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

    monkeypatch.setattr(tree.manager.client(HOST), "patch", patch)
    monkeypatch.setattr(tree.manager.client(MEMBER), "get_raw", get_raw)
    reconciler = LeafNodeReconciler(tree)
    request = Request(MEMBER, "", "")
    heartbeat = tree.options.heartbeat_seconds

    await reconciler(request)
    assert sorted(leases) == [f"w{i}" for i in range(5)]  # the first pass renews them all
    for _ in range(5):  # capacity passes, a second apart
        clock[0] += 1.0
        await reconciler(request)
    assert len(leases) == 5
    clock[0] += heartbeat  # the periodic pass
    await reconciler(request)
    assert len(leases) == 10
