"""Events ClusterTree adds for transitions: a leaf node turning NotReady and Ready again
(like a kubelet's NodeNotReady/NodeReady), a member Cluster becoming Ready again."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from kosmos.api.resources import PODS
from kosmos.clustertree.clusters import TreeMembers
from kosmos.clustertree.leafnodes import PROBE_TIMEOUT, LeafNodeReconciler
from kosmos.clustertree.tree import Tree, by_node
from kosmos.kube.component import HOST
from kosmos.kube.controller import Request
from kosmos.kube.errors import KubeError
from tests.unit.clustertree.test_tree import MEMBER, one_to_one_tree

Recorded = list[tuple[str, str, str, str]]


def recording(tree: Tree, monkeypatch: pytest.MonkeyPatch) -> Recorded:
    events: Recorded = []

    async def record(obj: Any, type_: str, reason: str, message: str) -> None:
        events.append((obj["metadata"]["name"], type_, reason, message))

    monkeypatch.setattr(tree.recorder, "record", record)
    return events


def with_ready(tree: Tree, node: str, status: str) -> None:
    current = tree.leaf_nodes.store.get(node)
    assert current is not None
    ready = {"type": "Ready", "status": status}
    tree.leaf_nodes.store.upsert({**current, "status": {"conditions": [ready]}})


async def test_a_leaf_node_gets_node_not_ready_then_node_ready(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tree, _ = one_to_one_tree(1)
    tree.manager.informer(MEMBER, PODS, indexers={"node": by_node})._synced.set()
    events = recording(tree, monkeypatch)
    answers: list[bool] = [False]

    async def ok(*args: Any, **kwargs: Any) -> Any:
        return {}

    async def get_raw(path: str, **kwargs: Any) -> Any:
        if not answers[0]:
            raise KubeError(MEMBER, "connection refused")
        return {"gitVersion": "v1.36.3"}

    monkeypatch.setattr(tree.node_client(), "patch", ok)  # leaf Nodes and Leases
    monkeypatch.setattr(tree.manager.client(MEMBER), "get_raw", get_raw)
    reconciler = LeafNodeReconciler(tree)
    with_ready(tree, "w0", "True")
    await reconciler(Request(MEMBER, "", ""))
    assert [(n, t, r) for n, t, r, _ in events] == [("w0", "Warning", "NodeNotReady")]
    assert f"member cluster {MEMBER} has not answered" in events[0][3]

    with_ready(tree, "w0", "False")
    await reconciler(Request(MEMBER, "", ""))  # still away: no second event
    answers[0] = True
    await reconciler(Request(MEMBER, "", ""))
    assert [(n, t, r) for n, t, r, _ in events[1:]] == [("w0", "Normal", "NodeReady")]


async def test_a_cluster_back_to_ready_gets_a_normal_event(monkeypatch: pytest.MonkeyPatch) -> None:
    tree, _ = one_to_one_tree(1)
    events = recording(tree, monkeypatch)

    async def ok(*args: Any, **kwargs: Any) -> Any:
        return {}

    monkeypatch.setattr(tree.manager.client(HOST), "patch", ok)
    members = TreeMembers(tree)
    down = {"type": "Ready", "status": "False", "reason": "MemberUnreachable", "message": "x"}
    cluster = {"metadata": {"name": MEMBER}, "status": {"conditions": [down]}}
    await members._ready(cluster, True, "MemberReachable", "member apiserver is ready")
    assert events == [(MEMBER, "Normal", "MemberReachable", "member apiserver is ready")]
    up = {**down, "status": "True", "reason": "MemberReachable"}
    await members._ready({**cluster, "status": {"conditions": [up]}}, True, "MemberReachable", "ok")
    assert len(events) == 1  # Ready all along: nothing to tell


async def test_the_cluster_probe_gives_up_as_soon_as_the_leaf_probe(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A partitioned member's requests hang: the Cluster's probe must time out like the leaf's
    (not after the client's 60 s), so the Cluster is not Ready longer than its leaves."""
    tree, _ = one_to_one_tree(1)
    events = recording(tree, monkeypatch)
    timeouts: list[float] = []

    async def ok(*args: Any, **kwargs: Any) -> Any:
        return {}

    async def hanging(path: str, *, timeout: float = 60.0) -> Any:
        timeouts.append(timeout)
        raise KubeError(MEMBER, f"get {path}: timed out")

    monkeypatch.setattr(tree.manager.client(HOST), "patch", ok)
    monkeypatch.setattr(tree.manager.client(MEMBER), "get_raw", hanging)
    monkeypatch.setitem(tree.controllers, "leafnodes", SimpleNamespace(enqueue=lambda key: None))
    cluster = {"metadata": {"name": MEMBER}, "spec": {}, "status": {}}
    await TreeMembers(tree).joined(cluster)
    assert timeouts == [PROBE_TIMEOUT]
    assert [(n, t, r) for n, t, r, _ in events] == [(MEMBER, "Warning", "MemberUnreachable")]
