"""``kosmosctl netdoctor analyze``: every linked node's kernel against its NodeConfig.

From the host it reads the Clusters with ClusterLink, their ClusterNodes and NodeConfigs;
then, per cluster (the host's own Cluster through the host's client, a member through the
kubeconfig it joined with), it runs ``kosmos agent-state`` in the node's agent pod -- a
privileged hostNetwork pod, so it reads the node's own kernel -- and hands the document to
``kosmos.clusterlink.diagnose``. What the floater checks find broken between two nodes,
this says why: which FDB entry, route or foreign DROP rule cuts which pair off.

A node that cannot be read is a result, never a crash: kwok's simulated nodes run no
containers (``skipped``), a node without a running agent pod or whose exec fails is
``unreachable`` with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kosmos.api import names
from kosmos.api.leafmodel import is_root_cluster
from kosmos.api.objects import Obj, labels_of, name_of, pod_phase
from kosmos.api.resources import CLUSTERNODES, CLUSTERS, NODECONFIGS, NODES, PODS
from kosmos.clusterlink import diagnose, peers
from kosmos.clusterlink.diagnose import Finding
from kosmos.kube import execute
from kosmos.kube.client import Client
from kosmos.kube.errors import KubeError
from kosmos.net.codec import DecodeError
from kosmos.net.snapshot import Snapshot
from kosmos.ops import linkside
from kosmos.ops.errors import OperationError

#: kwok's simulated nodes (their pods run no process: nothing to exec)

AGENT_CONTAINER = "agent"
EXEC_TIMEOUT = 30.0
#: execs in flight at once over all clusters (each reads netlink and runs iptables-save)
CONCURRENCY = 8

IN_SYNC, FINDINGS, UNREACHABLE, SKIPPED = "in sync", "findings", "unreachable", "skipped"


@dataclass(frozen=True)
class NodeResult:
    cluster: str
    node: str  # the node's name in its cluster
    status: str  # in sync | findings | unreachable | skipped
    findings: tuple[Finding, ...] = ()
    note: str = ""  # why unreachable or skipped; what else is worth knowing

    def to_json(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "node": self.node,
            "status": self.status,
            "note": self.note,
            "findings": [
                {
                    "kind": f.kind,
                    "state": f.state,
                    "entry": f.entry,
                    "breaks": list(f.breaks),
                    "traffic": list(f.traffic),
                }
                for f in self.findings
            ],
        }


@dataclass
class Analysis:
    nodes: list[NodeResult] = field(default_factory=list)

    @property
    def in_sync(self) -> bool:
        """Every node that could be read is in sync, and none could not be."""
        return all(n.status in {IN_SYNC, SKIPPED} for n in self.nodes)


@dataclass(frozen=True)
class _Side:
    """One linked cluster as the analysis reaches it."""

    cluster: Obj
    client: Client | None
    namespace: str
    why_not: str = ""  # when client is None

    @property
    def name(self) -> str:
        return name_of(self.cluster)


def _linked(cluster: Obj) -> bool:
    options = (cluster.get("spec") or {}).get("clusterLinkOptions") or {}
    return bool(options.get("enable", False))


def select(clusters: Iterable[Obj], only: Sequence[str]) -> list[Obj]:
    """The linked Clusters to analyze; a name asked for that is not one is an error."""
    linked = sorted((c for c in clusters if _linked(c)), key=name_of)
    if not linked:
        raise OperationError("no Cluster has ClusterLink enabled: there is nothing to analyze")
    known = {name_of(c) for c in linked}
    unknown = [n for n in only if n not in known]
    if unknown:
        raise OperationError(
            f"no Cluster with ClusterLink named {', '.join(unknown)} "
            f"(linked: {', '.join(sorted(known))})"
        )
    return [c for c in linked if not only or name_of(c) in only]


def command(spec: Obj, netns: str | None) -> list[str]:
    """``kosmos agent-state`` for a node of this NodeConfig ``spec``, in the agent's netns."""
    argv = ["kosmos", "agent-state"]
    if netns:
        argv += ["--netns", netns]
    for dev in sorted({d.get("bindDev", "") for d in spec.get("devices") or []} - {""}):
        argv += ["--bind-dev", dev]
    return argv


def _agent_netns(pod: Obj) -> str | None:
    """The ``--netns`` the agent itself was started with (a test or local setup), if any."""
    for container in (pod.get("spec") or {}).get("containers") or []:
        args = [str(a) for a in container.get("args") or []]
        for i, arg in enumerate(args):
            if arg.startswith("--netns="):
                return arg.partition("=")[2]
            if arg == "--netns" and i + 1 < len(args):
                return args[i + 1]
    return None


@dataclass
class _Analyzer:
    """What every cluster's part of one analysis shares."""

    clusternodes: list[Obj]
    nodeconfigs: dict[str, Obj]
    link: peers.Link
    run: execute.Exec
    progress: Callable[[str], None]
    timeout: float
    limit: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(CONCURRENCY))

    def members(self, side: _Side) -> list[tuple[str, str]]:
        """(ClusterNode name, node name) of the cluster's nodes."""
        found = []
        for obj in self.clusternodes:
            spec = obj.get("spec") or {}
            if spec.get("clusterName") == side.name:
                found.append((name_of(obj), spec.get("nodeName") or name_of(obj)))
        return sorted(found, key=lambda pair: pair[1])

    async def cluster(self, side: _Side) -> list[NodeResult]:
        members = self.members(side)
        if side.client is None:
            return [NodeResult(side.name, n, UNREACHABLE, note=side.why_not) for _, n in members]
        selector = f"app.kubernetes.io/name={linkside.AGENT}"
        try:
            pods = (await side.client.list(PODS, side.namespace, label_selector=selector)).items
        except KubeError as exc:
            why = f"listing the agent pods failed: {exc}"
            return [NodeResult(side.name, n, UNREACHABLE, note=why) for _, n in members]
        kwok: set[str] = set()
        with contextlib.suppress(KubeError):  # without Nodes every node is tried: still an answer
            nodes = (await side.client.list(NODES)).items
            kwok = {name_of(n) for n in nodes if names.LABEL_KWOK_NODE in labels_of(n)}
        agents = {
            (p.get("spec") or {}).get("nodeName", ""): p for p in pods if pod_phase(p) == "Running"
        }
        return list(
            await asyncio.gather(*(self.node(side, c, n, kwok, agents) for c, n in members))
        )

    async def node(
        self, side: _Side, clusternode: str, node: str, kwok: set[str], agents: dict[str, Obj]
    ) -> NodeResult:
        if node in kwok:
            return NodeResult(side.name, node, SKIPPED, note="a kwok node: it runs no containers")
        pod = agents.get(node)
        if pod is None:
            return NodeResult(side.name, node, UNREACHABLE, note="no running agent pod on the node")
        config = self.nodeconfigs.get(clusternode)
        spec = (config or {}).get("spec") or {}
        async with self.limit:
            result = await self.read(side, pod, spec)
        if isinstance(result, str):
            return NodeResult(side.name, node, UNREACHABLE, note=result)
        found = tuple(diagnose.analyze(clusternode, spec, result, self.link))
        note = "" if config else "no NodeConfig: the agent should own nothing"
        self.progress(f"{side.name}/{node}: " + (f"{len(found)} finding(s)" if found else IN_SYNC))
        return NodeResult(side.name, node, FINDINGS if found else IN_SYNC, found, note)

    async def read(self, side: _Side, pod: Obj, spec: Obj) -> Snapshot | str:
        """The node's dump, or why there is none."""
        assert side.client is not None
        argv = command(spec, _agent_netns(pod))
        where = f"pod {side.namespace}/{name_of(pod)}"
        try:
            result = await self.run(
                side.client,
                side.namespace,
                name_of(pod),
                argv,
                container=AGENT_CONTAINER,
                timeout=self.timeout,
            )
        except KubeError as exc:
            return f"exec in {where} failed: {exc}"
        if not result.ok:
            detail = (result.stderr.strip().splitlines() or [""])[-1]
            why = result.error or f"exit code {result.exit_code}"
            return f"`{' '.join(argv)}` in {where}: {why}" + (f" ({detail})" if detail else "")
        try:
            return Snapshot.from_json(json.loads(result.stdout))
        except (ValueError, DecodeError) as exc:
            return f"`{' '.join(argv[:2])}` in {where} printed no state document: {exc}"


async def analyze(
    host: Client,
    only: Sequence[str] = (),
    *,
    run: execute.Exec = execute.run,
    progress: Callable[[str], None] = lambda _: None,
    timeout: float = EXEC_TIMEOUT,
) -> Analysis:
    """Each node of the linked Clusters (those named in ``only``, else all), in sync or not."""
    all_clusters = (await host.list(CLUSTERS)).items
    clusters = select(all_clusters, only)
    clusternodes = (await host.list(CLUSTERNODES)).items
    nodeconfigs = {name_of(c): c for c in (await host.list(NODECONFIGS)).items}
    link = peers.build(all_clusters, clusternodes, nodeconfigs.values())
    work = _Analyzer(clusternodes, nodeconfigs, link, run, progress, timeout)
    sides = [await _side(host, c) for c in clusters]
    try:
        per_cluster = await asyncio.gather(*(work.cluster(side) for side in sides))
    finally:
        for side in sides:
            if side.client is not None and side.client is not host:
                await side.client.close()
    return Analysis([r for results in per_cluster for r in results])


async def _side(host: Client, cluster: Obj) -> _Side:
    if is_root_cluster(cluster):
        return _Side(cluster, host, names.SYSTEM_NAMESPACE)
    namespace = (cluster.get("spec") or {}).get("namespace") or names.SYSTEM_NAMESPACE
    client = await linkside.member_client(host, cluster)
    why = "" if client else "the member's kubeconfig (its Cluster's Secret) could not be read"
    return _Side(cluster, client, namespace, why)
