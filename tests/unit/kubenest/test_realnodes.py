"""Real nodes through the Node reconciler, with a fake node-agent standing in for the
kubelet's switch: drained first, joined with fresh tenant credentials, host copy deleted,
labelled in the tenant; back with the saved pod range; refusals and waits said in the
condition."""

from __future__ import annotations

import base64
from typing import Any

import yaml

from kosmos.api import nodeagent
from kosmos.api.objects import Obj, condition_of
from kosmos.api.resources import (
    ENDPOINTSLICES,
    GLOBAL_NODES,
    NODES,
    PODS,
    SECRETS,
    VIRTUAL_CLUSTERS,
)
from kosmos.kube.controller import Request
from kosmos.kubenest import moves, phases, pki, realnodes
from kosmos.kubenest.agent import AgentError
from kosmos.kubenest.nodes import NodeReconciler
from tests.unit.kubenest.fakes import FakeClient, FakeInformer, FakeRecorder

NS = "test-521-8"
KEY = f"{NS}/{NS}"
NODE_IP = "10.200.0.11"
SERVER = "https://10.200.0.1:20000"
TENANT_PKI = pki.TenantPKI.create(KEY, ["10.200.0.1"])


class FakeAgents:
    """The node-agent of every node: a join registers the node in ``tenant`` (what the
    re-pointed kubelet does), a leave puts the node's state back."""

    def __init__(self, tenant: FakeClient) -> None:
        self.tenant = tenant
        self.states: dict[str, nodeagent.State] = {}
        self.calls: list[tuple[str, str]] = []
        self.joins: list[nodeagent.Join] = []
        self.register = True
        self.down = False

    async def state(self, address: str) -> nodeagent.State:
        self.calls.append(("state", address))
        if self.down:
            raise AgentError(f"node-agent at {address}: connection refused")
        return self.states.get(address, nodeagent.State(node="worker-1"))

    async def join(self, address: str, join: nodeagent.Join) -> nodeagent.State:
        self.calls.append(("join", address))
        if self.down:
            raise AgentError(f"node-agent at {address}: connection refused")
        self.joins.append(join)
        if self.register and self.tenant.find(NODES, "worker-1") is None:
            self.tenant.add(NODES, {"metadata": {"name": "worker-1", "labels": {"own": "x"}}})
        state = nodeagent.State("worker-1", nodeagent.TENANT, join.tenant, join.server)
        self.states[address] = state
        return state

    async def leave(self, address: str) -> nodeagent.State:
        self.calls.append(("leave", address))
        self.states[address] = nodeagent.State("worker-1")
        return self.states[address]


def kubeconfig(server: str) -> str:
    config = {"clusters": [{"name": NS, "cluster": {"server": server}}]}
    return base64.b64encode(yaml.safe_dump(config).encode()).decode()


class Rig:
    def __init__(self, server: str = SERVER) -> None:
        self.host = FakeClient("host")
        self.tenant = FakeClient("tenant")
        self.agents = FakeAgents(self.tenant)

        async def tenant_client(vc: Obj) -> Any:
            return self.tenant

        self.reconcile = NodeReconciler(
            self.host,  # type: ignore[arg-type]
            FakeRecorder(),  # type: ignore[arg-type]
            FakeInformer(self.host, GLOBAL_NODES),  # type: ignore[arg-type]
            tenant_client,
            self.agents,  # type: ignore[arg-type]
        )
        labels = {"kubernetes.io/hostname": "worker-1", "pool": "yes"}
        self.host.add(
            NODES,
            {
                "metadata": {"name": "worker-1", "labels": labels},
                "spec": {
                    "podCIDR": "10.10.5.0/24",
                    "podCIDRs": ["10.10.5.0/24"],
                    "taints": [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}],
                },
            },
        )
        self.host.add(
            GLOBAL_NODES,
            {
                "metadata": {"name": "worker-1"},
                "spec": {"state": "free", "labels": labels, "nodeIP": NODE_IP},
            },
        )
        self.host.add(
            SECRETS,
            {
                "metadata": {"name": f"{NS}-cert", "namespace": NS},
                "data": {k: base64.b64encode(v).decode() for k, v in TENANT_PKI.files.items()},
            },
        )
        policy = {"labelSelector": {"matchLabels": {"pool": "yes"}}, "nodeCount": 1}
        self.host.add(
            VIRTUAL_CLUSTERS,
            {
                "metadata": {"name": NS, "namespace": NS},
                "spec": {"kubeconfig": kubeconfig(server), "promotePolicies": [policy]},
                "status": {"phase": phases.INITIALIZED, "portMap": {"coredns": 20006}},
            },
        )

    def pod(self, name: str, **meta: Any) -> None:
        body = {"metadata": {"name": name, "namespace": "default", **meta}, "spec": {}}
        self.host.add(PODS, body)

    def vc(self) -> Obj:
        found = self.host.find(VIRTUAL_CLUSTERS, NS, NS)
        assert found is not None
        return found

    def gn(self) -> Obj:
        found = self.host.find(GLOBAL_NODES, "worker-1")
        assert found is not None
        return found

    async def run(self) -> float | None:
        result = await self.reconcile(Request("kosmos-root", NS, NS))
        return None if result is None else result.requeue_after


def reason(obj: Obj, kind: str) -> tuple[str, str]:
    found = condition_of(obj, kind)
    assert found is not None
    return found["reason"], found.get("message", "")


async def test_a_real_node_is_drained_joined_and_leaves_the_host() -> None:
    rig = Rig()
    rig.pod("app")
    rig.pod("ds", ownerReferences=[{"kind": "DaemonSet", "name": "d", "uid": "1"}])
    assert await rig.run() == 5.0  # evicted; the next pass finds the node empty
    assert ("evict", "pods", "app") in rig.host.log
    assert rig.host.find(PODS, "ds", "default") is not None  # DaemonSet pods stay
    assert rig.host.find(NODES, "worker-1")["spec"]["unschedulable"] is True  # type: ignore[index]
    assert reason(rig.vc(), phases.NODES_READY)[0] == phases.MOVING
    rig.host.objects.pop(("pods", "default", "ds"))  # (the fake lists pods of every node)
    await rig.run()
    (join,) = rig.agents.joins
    assert (join.tenant, join.server) == (KEY, SERVER)
    assert join.clusterDNS == [pki.CLUSTER_DNS]
    dns_slice = rig.tenant.find(ENDPOINTSLICES, "kube-dns-kosmos", "kube-system")
    assert dns_slice is not None and dns_slice["endpoints"][0]["addresses"] == ["10.200.0.1"]
    assert dns_slice["ports"][0]["port"] == 20006
    assert "CN=system:node:worker-1" in _subject(join.kubelet.certData)
    assert "O=system:nodes" in _subject(join.kubelet.certData)
    assert "CN=system:kube-proxy" in _subject(join.proxy.certData)
    assert rig.host.find(NODES, "worker-1") is None
    node = rig.tenant.find(NODES, "worker-1")
    assert node is not None and node["metadata"]["labels"]["pool"] == "yes"
    gn = rig.gn()
    assert reason(gn, moves.PROMOTED)[0] == "InVirtualCluster"
    saved = gn["metadata"]["annotations"][realnodes.HOST_SPEC_ANNOTATION]
    assert "10.10.5.0/24" in saved and "not-ready" not in saved
    await rig.run()  # settled: the agent is not asked to join again
    assert len(rig.agents.joins) == 1


async def test_it_comes_back_with_its_pod_range_and_is_free() -> None:
    rig = Rig()
    await rig.run()
    vc = rig.vc()
    vc["metadata"]["deletionTimestamp"] = "2026-12-07T00:00:00Z"
    vc["status"]["phase"] = phases.DELETING
    rig.host.add(VIRTUAL_CLUSTERS, vc)
    await rig.run()
    assert rig.agents.calls[-1] == ("leave", NODE_IP)
    back = rig.host.find(NODES, "worker-1")
    assert back is not None
    assert back["spec"]["podCIDR"] == "10.10.5.0/24"
    assert back["metadata"]["labels"]["pool"] == "yes"
    assert rig.tenant.find(NODES, "worker-1") is None
    gn = rig.gn()
    assert gn["spec"]["state"] == "free"
    assert realnodes.HOST_SPEC_ANNOTATION not in (gn["metadata"].get("annotations") or {})


async def test_a_kubelet_not_registered_yet_is_waited_for() -> None:
    rig = Rig()
    rig.agents.register = False
    assert await rig.run() == 5.0
    kind, message = reason(rig.vc(), phases.NODES_READY)
    assert kind == phases.MOVING and "register" in message
    rig.agents.register = True
    rig.tenant.add(NODES, {"metadata": {"name": "worker-1"}})
    await rig.run()
    assert len(rig.agents.joins) == 1  # joined once; the retry only looked
    assert reason(rig.gn(), moves.PROMOTED)[0] == "InVirtualCluster"


async def test_a_loopback_tenant_takes_no_real_node() -> None:
    rig = Rig(server="https://127.0.0.1:20000")
    assert await rig.run() == 15.0
    kind, message = reason(rig.vc(), phases.NODES_READY)
    assert kind == phases.REAL_NODE and "--advertise-address" in message
    assert rig.agents.calls == []
    assert rig.gn()["spec"]["state"] == "free"


def _subject(pem: str) -> str:
    from cryptography import x509

    return x509.load_pem_x509_certificate(pem.encode()).subject.rfc4514_string()


async def test_a_node_whose_agent_never_answered_is_freed_where_it_is() -> None:
    """Deleted before the join could happen (agent down): the node never left the host, so
    it is uncordoned and freed there without its agent."""
    rig = Rig()
    rig.agents.down = True
    host_node = rig.host.find(NODES, "worker-1")
    assert host_node is not None
    host_node["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}
    assert await rig.run() == 5.0
    kind, message = reason(rig.vc(), phases.NODES_READY)
    assert kind == phases.MOVE_FAILED and "connection refused" in message
    assert rig.host.find(NODES, "worker-1")["spec"]["unschedulable"] is True  # type: ignore[index]
    vc = rig.vc()
    vc["metadata"]["deletionTimestamp"] = "2026-12-07T00:00:00Z"
    vc["status"]["phase"] = phases.DELETING
    rig.host.add(VIRTUAL_CLUSTERS, vc)
    await rig.run()
    node = rig.host.find(NODES, "worker-1")
    assert node is not None and not node["spec"].get("unschedulable")
    assert rig.gn()["spec"]["state"] == "free"
    assert not [c for c in rig.agents.calls if c[0] != "state"]
