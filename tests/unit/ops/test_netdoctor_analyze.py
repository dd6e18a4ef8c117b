"""netdoctor analyze on fakes: which nodes are read where, and every way a node can't be."""

import json
from dataclasses import replace

import pytest
from click.testing import CliRunner

from kosmos.api.resources import CLUSTERNODES, CLUSTERS, NODECONFIGS, NODES, PODS
from kosmos.cli.invocation import CliContext
from kosmos.cli.netdoctor import analyze as cli_analyze
from kosmos.cli.netdoctor import netdoctor
from kosmos.clusterlink.agent import desired
from kosmos.kube.errors import Forbidden
from kosmos.kube.execute import ExecResult
from kosmos.net.netlink import LinkInfo
from kosmos.net.snapshot import Snapshot
from kosmos.ops import linkside
from kosmos.ops.errors import OperationError
from kosmos.ops.netdoctor import analyze
from tests.unit.clusterlink.linkcases import cluster, compute, node
from tests.unit.migration.fakes import FakeClient

ROOT = "kosmos-control-cluster"
CLUSTER_OBJS = [
    cluster(ROOT, pods=["10.0.0.0/16"], family="ipv4", enable=True),
    cluster("a", pods=["10.1.0.0/16"], family="ipv4", enable=True),
    cluster("b", pods=["10.2.0.0/16"], family="ipv4", enable=True),
]
CLUSTER_OBJS[0]["metadata"]["annotations"] = {"kosmos.io/cluster-role": "root"}
UNLINKED = {"metadata": {"name": "c"}, "spec": {}}
NODE_OBJS = [
    node(ROOT, "h1", "192.168.0.1", pods=["10.0.1.0/24"]),
    node("a", "n1", "192.168.1.1", pods=["10.1.1.0/24"]),
    node("a", "kwok1", "192.168.1.9", pods=["10.1.9.0/24"]),
    node("b", "n1", "192.168.2.1", pods=["10.2.1.0/24"]),
    node("b", "n2", "192.168.2.2", pods=["10.2.2.0/24"]),
]
IPS = {n["metadata"]["name"]: n["spec"]["ip"] for n in NODE_OBJS}
PLAN = compute(CLUSTER_OBJS, NODE_OBJS)


def agent_pod(node_name, *, phase="Running", args=("agent",)):
    return {
        "metadata": {
            "name": f"kosmos-agent-{node_name}",
            "namespace": "kosmos-system",
            "labels": {"app.kubernetes.io/name": "kosmos-agent"},
        },
        "spec": {"nodeName": node_name, "containers": [{"name": "agent", "args": list(args)}]},
        "status": {"phase": phase},
    }


def in_sync(clusternode):
    binds = {"eth0": LinkInfo("eth0", 2, 1500, True, (IPS[clusternode],), ())}
    return Snapshot(desired.build(PLAN.configs[clusternode], binds).state, binds=dict(binds))


class Env:
    def __init__(self):
        self.host = FakeClient()
        for obj in [*CLUSTER_OBJS, UNLINKED]:
            self.host.add(CLUSTERS, obj)
        for obj in NODE_OBJS:
            self.host.add(CLUSTERNODES, obj)
        for name, spec in PLAN.configs.items():
            self.host.add(NODECONFIGS, {"metadata": {"name": name}, "spec": spec})
        self.members = {"a": FakeClient(), "b": FakeClient()}
        self.host.add(PODS, agent_pod("h1"))
        self.host.add(NODES, {"metadata": {"name": "h1"}})
        for name in ("n1", "kwok1"):
            self.members["a"].add(PODS, agent_pod(name))
        self.members["a"].add(NODES, {"metadata": {"name": "n1"}})
        self.members["a"].add(
            NODES, {"metadata": {"name": "kwok1", "labels": {"kwok.x-k8s.io/node": "fake"}}}
        )
        for name in ("n1", "n2"):
            self.members["b"].add(PODS, agent_pod(name))
        self.snaps = {name: in_sync(name) for name in PLAN.configs}
        self.calls = []
        self.failures = {}  # ClusterNode -> ExecResult or exception

    async def member_client(self, host, obj, *, linked_only=True):
        return self.members.get(obj["metadata"]["name"])

    async def run(self, client, namespace, pod, command, *, container=None, timeout=10.0):
        self.calls.append((client, namespace, pod, tuple(command), container))
        members = {id(m): c for c, m in self.members.items()}
        cluster_name = members.get(id(client), ROOT)
        clusternode = f"{cluster_name}-{pod.removeprefix('kosmos-agent-')}"
        failure = self.failures.get(clusternode)
        if isinstance(failure, Exception):
            raise failure
        if failure is not None:
            return failure
        return ExecResult(json.dumps(self.snaps[clusternode].to_json()), "", 0)

    async def analyze(self, only=()):
        return await analyze.analyze(self.host, only, run=self.run)


@pytest.fixture
def env(monkeypatch):
    env = Env()
    monkeypatch.setattr(linkside, "member_client", env.member_client)
    for member in env.members.values():
        member.close = _noop
    return env


async def _noop():
    return None


def statuses(result):
    return {(n.cluster, n.node): n.status for n in result.nodes}


async def test_every_linked_node_is_read_in_its_own_cluster(env):
    result = await env.analyze()
    assert statuses(result) == {
        (ROOT, "h1"): "in sync",
        ("a", "kwok1"): "skipped",
        ("a", "n1"): "in sync",
        ("b", "n1"): "in sync",
        ("b", "n2"): "in sync",
    }
    assert result.in_sync
    by_pod = {pod: (client, ns, cmd, container) for client, ns, pod, cmd, container in env.calls}
    assert by_pod["kosmos-agent-h1"][0] is env.host
    client, ns, cmd, container = by_pod["kosmos-agent-n2"]
    assert client is env.members["b"] and ns == "kosmos-system" and container == "agent"
    assert cmd == ("kosmos", "agent-state", "--bind-dev", "eth0")
    assert "kosmos-agent-kwok1" not in by_pod  # kwok nodes run no container


async def test_a_lost_fdb_entry_is_a_finding_naming_the_pair(env):
    snap = env.snaps["b-n2"]
    lost = next(f for f in snap.state.fdbs if f.dst == "192.168.1.1")
    snap.state = replace(snap.state, fdbs=snap.state.fdbs - {lost})
    result = await env.analyze()
    (bad,) = [n for n in result.nodes if n.findings]
    assert (bad.cluster, bad.node, bad.status) == ("b", "n2", "findings")
    (finding,) = bad.findings
    assert (finding.kind, finding.state, finding.breaks) == ("fdb", "missing", ("a/n1",))
    assert not result.in_sync


async def test_only_the_clusters_asked_for(env):
    result = await env.analyze(["b"])
    assert {n.cluster for n in result.nodes} == {"b"}


async def test_unknown_or_unlinked_cluster_names_are_errors(env):
    with pytest.raises(OperationError, match=r"named c, nope \(linked: a, b, kosmos-control"):
        await env.analyze(["c", "nope"])


async def test_no_linked_cluster_is_an_error():
    host = FakeClient()
    host.add(CLUSTERS, UNLINKED)
    with pytest.raises(OperationError, match="no Cluster has ClusterLink enabled"):
        await analyze.analyze(host)


async def test_nodes_that_cannot_be_read_are_unreachable_with_the_reason(env):
    env.failures["b-n1"] = Forbidden("b", "pods/exec is forbidden")
    env.members["b"].objects.pop(
        next(k for k in env.members["b"].objects if k[2] == "kosmos-agent-n2")
    )
    env.members["b"].add(PODS, agent_pod("n2", phase="Pending"))
    env.failures[f"{ROOT}-h1"] = ExecResult(
        "", "Error: No such command 'agent-state'.\n", 2, "exit code 2"
    )
    result = await env.analyze()
    notes = {
        (n.cluster, n.node): (n.status, n.note) for n in result.nodes if n.status == "unreachable"
    }
    assert "pods/exec is forbidden" in notes[("b", "n1")][1]
    assert notes[("b", "n2")][1] == "no running agent pod on the node"
    assert "No such command 'agent-state'" in notes[(ROOT, "h1")][1]
    assert statuses(result)[("a", "n1")] == "in sync"  # one bad node does not stop the others
    assert not result.in_sync


async def test_a_document_that_is_not_a_state_is_reported(env):
    env.failures["a-n1"] = ExecResult("Traceback ...", "", 0)
    result = await env.analyze(["a"])
    (node_result,) = [n for n in result.nodes if n.node == "n1"]
    assert node_result.status == "unreachable" and "printed no state document" in node_result.note


async def test_a_member_without_a_readable_kubeconfig(env):
    del env.members["b"]
    result = await env.analyze(["b"])
    assert {n.status for n in result.nodes} == {"unreachable"}
    assert "kubeconfig" in result.nodes[0].note


def test_command_follows_the_agents_netns_and_bind_devices():
    spec = {"devices": [{"bindDev": "eth1"}, {"bindDev": "eth0"}, {"bindDev": "eth0"}]}
    pod = agent_pod("n1", args=("agent", "--netns", "kosmos-n1"))
    assert analyze.command(spec, analyze._agent_netns(pod)) == [
        "kosmos", "agent-state", "--netns", "kosmos-n1", "--bind-dev", "eth0", "--bind-dev", "eth1",
    ]  # fmt: skip
    assert analyze._agent_netns(agent_pod("n1", args=("agent", "--netns=x"))) == "x"
    assert analyze.command({}, None) == ["kosmos", "agent-state"]


# --- the command ---------------------------------------------------------------------------


def invoke(monkeypatch, result, *args):
    async def fake(host, only, *, progress):
        fake.only = only
        return result

    async def no_client(self):
        return None

    monkeypatch.setattr(cli_analyze, "run_analysis", fake)
    monkeypatch.setattr(CliContext, "client", no_client)
    out = CliRunner().invoke(netdoctor, ["analyze", *args], obj=CliContext())
    return out, fake


def test_cli_table_in_sync_exits_0(monkeypatch):
    result = analyze.Analysis(
        [
            analyze.NodeResult("a", "n1", "in sync"),
            analyze.NodeResult("a", "k", "skipped", note="a kwok node"),
        ]
    )
    out, fake = invoke(monkeypatch, result, "--cluster", "a")
    assert out.exit_code == 0, out.output
    assert fake.only == ("a",)
    lines = out.output.splitlines()
    assert lines[0].split() == ["CLUSTER", "NODE", "KIND", "STATE", "ENTRY", "BREAKS"]
    assert lines[1].split()[:4] == ["a", "n1", "-", "in"]
    assert "a kwok node" in lines[2]


def test_cli_findings_exit_3_and_json(monkeypatch):
    finding = analyze.Finding(
        "b-n2", "fdb", "missing", "aa:bb dst 192.168.1.1 dev vx-bridge", ("a/n1",), ("pod",)
    )
    result = analyze.Analysis([analyze.NodeResult("b", "n2", "findings", (finding,))])
    out, _ = invoke(monkeypatch, result)
    assert out.exit_code == 3
    assert "a/n1 (pod)" in out.output and "fdb" in out.output
    out, _ = invoke(monkeypatch, result, "-o", "json")
    assert out.exit_code == 3
    doc = json.loads(out.output)
    assert doc["inSync"] is False
    assert doc["nodes"][0]["findings"][0]["breaks"] == ["a/n1"]


def test_cli_errors_exit_1(monkeypatch):
    async def fake(host, only, *, progress):
        raise OperationError("no Cluster has ClusterLink enabled: there is nothing to analyze")

    async def no_client(self):
        return None

    monkeypatch.setattr(cli_analyze, "run_analysis", fake)
    monkeypatch.setattr(CliContext, "client", no_client)
    out = CliRunner().invoke(netdoctor, ["analyze"], obj=CliContext())
    assert out.exit_code == 1
    assert "nothing to analyze" in out.output
