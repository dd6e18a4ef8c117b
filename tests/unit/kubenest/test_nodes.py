"""The Node reconciler on an in-memory host and tenant: kwok nodes move into the tenant and
back, GlobalNodes are occupied before moving, refusals say why, a failed move is findable."""

from __future__ import annotations

from typing import Any

import pytest

from kosmos.api import names
from kosmos.api.objects import Obj, condition_of
from kosmos.api.resources import GLOBAL_NODES, NODES, VIRTUAL_CLUSTERS
from kosmos.kube.controller import Request
from kosmos.kube.errors import Conflict, ConnectError, ServerError
from kosmos.kubenest import moves, phases
from kosmos.kubenest.nodes import NodeReconciler
from tests.unit.kubenest.fakes import FakeClient, FakeInformer, FakeRecorder

NS = "test-521-8"
KEY = f"{NS}/{NS}"
CAPACITY = {"cpu": "32", "memory": "256Gi", "pods": "110"}


class Rig:
    def __init__(self) -> None:
        self.host = FakeClient("host")
        self.tenant = FakeClient("tenant")
        self.recorder = FakeRecorder()

        async def tenant_client(vc: Obj) -> Any:
            return self.tenant

        self.reconcile = NodeReconciler(
            self.host,  # type: ignore[arg-type]
            self.recorder,  # type: ignore[arg-type]
            FakeInformer(self.host, GLOBAL_NODES),  # type: ignore[arg-type]
            tenant_client,
        )

    def add_node(self, name: str, kwok: bool = True, **labels: str) -> None:
        labels = {"kubernetes.io/hostname": name, **labels}
        if kwok:
            labels[moves.KWOK_LABEL] = "fake"
        node = {
            "metadata": {
                "name": name,
                "labels": labels,
                "annotations": {"node.alpha.kubernetes.io/ttl": "0", "kwok.x-k8s.io/node": "fake"},
            },
            "spec": {
                "podCIDR": "10.244.3.0/24",
                "taints": [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}],
            },
            "status": {
                "capacity": CAPACITY,
                "allocatable": CAPACITY,
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        }
        self.host.add(NODES, node)
        self.host.add(
            GLOBAL_NODES, {"metadata": {"name": name}, "spec": {"state": "free", "labels": labels}}
        )

    def add_vc(self, count: int, phase: str = phases.INITIALIZED, **match: str) -> None:
        policy = {"labelSelector": {"matchLabels": match}, "nodeCount": count}
        self.host.add(
            VIRTUAL_CLUSTERS,
            {
                "metadata": {"name": NS, "namespace": NS},
                "spec": {"kubeconfig": "eA==", "promotePolicies": [policy]},
                "status": {"phase": phase},
            },
        )

    def vc(self) -> Obj:
        found = self.host.find(VIRTUAL_CLUSTERS, NS, NS)
        assert found is not None
        return found

    def gn(self, name: str) -> Obj:
        found = self.host.find(GLOBAL_NODES, name)
        assert found is not None
        return found

    def set_count(self, count: int) -> None:
        vc = self.vc()
        vc["spec"]["promotePolicies"][0]["nodeCount"] = count
        self.host.add(VIRTUAL_CLUSTERS, vc)

    def ready_in_tenant(self, *nodes: str) -> None:
        for name in nodes:
            node = self.tenant.find(NODES, name)
            assert node is not None
            node["status"]["conditions"] = [{"type": "Ready", "status": "True"}]

    async def run(self) -> float | None:
        result = await self.reconcile(Request("kosmos-root", NS, NS))
        return None if result is None else result.requeue_after


def infos(vc: Obj) -> list[str]:
    return phases.node_infos(vc)


def cond(obj: Obj, kind: str) -> tuple[str, str, str]:
    found = condition_of(obj, kind)
    assert found is not None, kind
    return found["status"], found["reason"], found.get("message", "")


async def test_a_kwok_node_moves_into_the_tenant_and_the_cluster_completes() -> None:
    rig = Rig()
    rig.add_node("n1", zone="a")
    rig.add_vc(1, zone="a")
    assert await rig.run() == 2.0  # moved; waiting for the tenant's kwok to make it Ready
    gn = rig.gn("n1")
    assert gn["spec"]["state"] == "occupied"
    assert gn["status"]["virtualCluster"] == KEY
    assert cond(gn, moves.PROMOTED)[:2] == ("True", "InVirtualCluster")
    assert rig.host.find(NODES, "n1") is None
    node = rig.tenant.find(NODES, "n1")
    assert node is not None
    assert node["metadata"]["labels"]["zone"] == "a"
    assert node["metadata"]["labels"][names.LABEL_NODE_STATE] == "occupied"
    assert node["status"]["capacity"] == CAPACITY  # written through the status subresource
    assert "conditions" not in node["status"]  # the tenant's kwok reports readiness
    assert "podCIDR" not in node["spec"] and "taints" not in node["spec"]
    assert "node.alpha.kubernetes.io/ttl" not in node["metadata"]["annotations"]
    assert infos(rig.vc()) == ["n1"]
    assert cond(rig.vc(), phases.NODES_READY)[:2] == ("False", phases.NODES_NOT_READY)
    assert rig.vc()["status"]["phase"] == phases.INITIALIZED
    rig.ready_in_tenant("n1")
    assert await rig.run() == 30.0  # Completed: readiness looked at again later
    assert rig.vc()["status"]["phase"] == phases.COMPLETED
    assert cond(rig.vc(), phases.NODES_READY)[:2] == ("True", phases.ALL_NODES_READY)


async def test_the_globalnode_is_occupied_before_the_node_moves() -> None:
    rig = Rig()
    rig.add_node("n1")
    rig.add_vc(1)
    await rig.run()
    writes = [(verb, plural) for verb, plural, _ in rig.host.log]
    first_move = writes.index(("delete", "nodes"))
    assert ("patch", "globalnodes") in writes[:first_move]
    tenant_create = rig.tenant.log.index(("create", "nodes", "n1"))
    assert tenant_create == 0  # created in the tenant (before the host delete, by design)


async def test_not_enough_nodes_is_pending_and_moves_nothing() -> None:
    rig = Rig()
    rig.add_node("n1", zone="a")
    rig.add_vc(2, zone="a")
    assert await rig.run() == 15.0
    vc = rig.vc()
    assert vc["status"]["phase"] == phases.PENDING
    _, reason, message = cond(vc, phases.NODES_READY)
    assert (condition_of(vc, phases.NODES_READY) or {}).get("status") == "False"
    assert reason == phases.NOT_ENOUGH_NODES
    assert "policy 0" in message
    assert rig.gn("n1")["spec"]["state"] == "free"
    assert rig.tenant.objects == {}


async def test_a_selector_matching_none_is_pending_and_says_so() -> None:
    rig = Rig()
    rig.add_node("n1", zone="a")
    rig.add_vc(1, zone="nowhere")
    await rig.run()
    _, reason, message = cond(rig.vc(), phases.NODES_READY)
    assert reason == phases.NOT_ENOUGH_NODES
    assert "nowhere" in message


async def test_a_real_node_is_refused_while_the_tenant_is_unreachable_and_stays_free() -> None:
    rig = Rig()
    rig.add_node("worker-1", kwok=False)
    rig.add_vc(1)
    await rig.run()
    vc = rig.vc()
    assert vc["status"]["phase"] == phases.PENDING
    _, reason, message = cond(vc, phases.NODES_READY)
    assert reason == phases.REAL_NODE and "worker-1" in message
    assert rig.gn("worker-1")["spec"]["state"] == "free"
    assert rig.host.find(NODES, "worker-1") is not None


async def test_shrinking_gives_the_tail_back_to_the_host_as_free() -> None:
    rig = Rig()
    rig.add_node("n1")
    rig.add_node("n2")
    rig.add_vc(2)
    await rig.run()
    rig.ready_in_tenant("n1", "n2")
    await rig.run()
    assert rig.vc()["status"]["phase"] == phases.COMPLETED
    rig.set_count(1)
    assert await rig.run() == 30.0
    assert infos(rig.vc()) == ["n1"]
    back = rig.host.find(NODES, "n2")
    assert back is not None
    assert back["metadata"]["labels"][names.LABEL_NODE_STATE] == "free"
    assert back["status"]["capacity"] == CAPACITY
    assert rig.tenant.find(NODES, "n2") is None
    assert rig.gn("n2")["spec"]["state"] == "free"
    assert "virtualCluster" not in rig.gn("n2").get("status", {})
    assert rig.vc()["status"]["phase"] == phases.COMPLETED


async def test_growing_a_completed_cluster_is_updating_until_ready() -> None:
    rig = Rig()
    rig.add_node("n1")
    rig.add_node("n2")
    rig.add_vc(1)
    await rig.run()
    rig.ready_in_tenant("n1")
    await rig.run()
    rig.set_count(2)
    await rig.run()
    assert rig.vc()["status"]["phase"] == phases.UPDATING
    assert infos(rig.vc()) == ["n1", "n2"]
    rig.ready_in_tenant("n2")
    await rig.run()
    assert rig.vc()["status"]["phase"] == phases.COMPLETED


async def test_a_failed_move_leaves_the_node_in_the_host_and_says_where() -> None:
    rig = Rig()
    rig.add_node("n1")
    rig.add_vc(1)
    rig.tenant.fail[("create", "nodes")] = ServerError("tenant", "etcd leader changed")
    assert await rig.run() == 5.0
    assert rig.host.find(NODES, "n1") is not None
    gn = rig.gn("n1")
    assert gn["spec"]["state"] == "occupied" and gn["status"]["virtualCluster"] == KEY
    assert cond(gn, moves.PROMOTED)[:2] == ("False", "Moving")
    assert infos(rig.vc()) == ["n1"]
    _, reason, message = cond(rig.vc(), phases.NODES_READY)
    assert reason == phases.MOVE_FAILED and "n1" in message
    del rig.tenant.fail[("create", "nodes")]
    await rig.run()  # the next reconcile finishes the move
    assert rig.host.find(NODES, "n1") is None
    assert rig.tenant.find(NODES, "n1") is not None
    assert cond(rig.gn("n1"), moves.PROMOTED)[0] == "True"


async def test_a_move_cut_after_the_tenant_create_is_finished_not_duplicated() -> None:
    rig = Rig()
    rig.add_node("n1")
    rig.add_vc(1)
    rig.host.fail[("delete", "nodes")] = ServerError("host", "timeout")
    await rig.run()
    assert rig.host.find(NODES, "n1") and rig.tenant.find(NODES, "n1")  # in both, for now
    del rig.host.fail[("delete", "nodes")]
    await rig.run()
    assert rig.host.find(NODES, "n1") is None
    assert cond(rig.gn("n1"), moves.PROMOTED)[0] == "True"


async def test_deleting_returns_every_node() -> None:
    rig = Rig()
    rig.add_node("n1")
    rig.add_node("n2")
    rig.add_vc(2)
    await rig.run()
    vc = rig.vc()
    vc["metadata"]["deletionTimestamp"] = "2026-01-02T00:00:00Z"
    vc["metadata"]["finalizers"] = [names.FINALIZER_VIRTUAL_CLUSTER]
    rig.host.add(VIRTUAL_CLUSTERS, vc)
    assert await rig.run() is None  # not Deleting yet: the control-plane reconciler marks it
    assert infos(rig.vc()) == ["n1", "n2"]
    vc = rig.vc()
    vc["status"]["phase"] = phases.DELETING
    rig.host.add(VIRTUAL_CLUSTERS, vc)
    assert await rig.run() is None
    assert infos(rig.vc()) == []
    for name in ("n1", "n2"):
        assert rig.host.find(NODES, name) is not None
        assert rig.tenant.find(NODES, name) is None
        assert rig.gn(name)["spec"]["state"] == "free"


async def test_nothing_happens_before_the_control_plane_is_published() -> None:
    rig = Rig()
    rig.add_node("n1")
    rig.add_vc(1, phase=phases.PREPARING)
    vc = rig.vc()
    del vc["spec"]["kubeconfig"]
    rig.host.add(VIRTUAL_CLUSTERS, vc)
    assert await rig.run() is None
    assert rig.gn("n1")["spec"]["state"] == "free"


async def test_a_node_taken_since_the_cache_saw_it_is_not_taken_twice() -> None:
    rig = Rig()
    rig.add_node("n1")
    rig.add_vc(1)
    stale = rig.gn("n1")
    other = moves.Mover(rig.host, rig.tenant, "other/vc")  # type: ignore[arg-type]
    await other.occupy(rig.gn("n1"))
    mine = moves.Mover(rig.host, rig.tenant, KEY)  # type: ignore[arg-type]
    with pytest.raises(Conflict):
        await mine.occupy(stale)
    assert rig.gn("n1")["status"]["virtualCluster"] == "other/vc"
    await rig.run()  # the pool now sees it held: not enough nodes, nothing moved
    assert rig.vc()["status"]["phase"] == phases.PENDING
    assert rig.host.find(NODES, "n1") is not None


async def test_a_dead_tenant_does_not_keep_its_nodes_when_deleted() -> None:
    rig = Rig()
    rig.add_node("n1")
    rig.add_vc(1)
    await rig.run()
    for verb in ("get", "delete", "list"):
        rig.tenant.fail[(verb, "nodes")] = ConnectError("tenant", "connection refused")
    vc = rig.vc()
    vc["metadata"]["deletionTimestamp"] = "2026-01-02T00:00:00Z"
    vc["metadata"]["finalizers"] = [names.FINALIZER_VIRTUAL_CLUSTER]
    vc["status"]["phase"] = phases.DELETING
    rig.host.add(VIRTUAL_CLUSTERS, vc)
    assert await rig.run() is None
    node = rig.host.find(NODES, "n1")
    assert node is not None
    assert node["metadata"]["labels"][names.LABEL_NODE_STATE] == "free"
    assert rig.gn("n1")["spec"]["state"] == "free"
    assert infos(rig.vc()) == []


async def test_a_dead_tenant_keeps_a_shrinking_clusters_node_where_it_is() -> None:
    rig = Rig()
    rig.add_node("n1")
    rig.add_vc(1)
    await rig.run()
    rig.tenant.fail[("get", "nodes")] = ConnectError("tenant", "connection refused")
    rig.set_count(0)
    assert await rig.run() == 5.0
    assert rig.host.find(NODES, "n1") is None  # still (only) in the tenant
    assert rig.gn("n1")["status"]["virtualCluster"] == KEY
    assert infos(rig.vc()) == ["n1"]
