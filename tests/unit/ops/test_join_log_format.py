"""``join --log-format``: the member's Kosmos pods get it, a re-join converges them to it
(through one client for the member, opened and closed once).

The join runs its one code path (``join_member``) against in-memory clusters; only what
has nothing to do with the pods' args is stubbed (the MCS CRDs' Established wait, wiring
the member's cluster DNS).
"""

from __future__ import annotations

import base64
import copy
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from kosmos.api import names
from kosmos.api.objects import Obj
from kosmos.api.resources import (
    CLUSTERS,
    DAEMONSETS,
    DEPLOYMENTS,
    NAMESPACES,
    SELF_SUBJECT_ACCESS_REVIEWS,
    Resource,
)
from kosmos.kube import config as kube_config
from kosmos.ops import join, linkside, mcsdns, probeside
from kosmos.ops.manifests import PROBE
from kosmos.ops.membership import JoinOptions
from tests.unit.netdoctor.fakes import FakeCluster

MEMBER = "member1"
IMAGE = linkside.image_of("reg.example/k", "v9")
KUBECONFIG = yaml.safe_dump(
    {
        "clusters": [{"name": MEMBER, "cluster": {"server": "https://member1:6443"}}],
        "users": [{"name": "admin", "user": {"token": "secret"}}],
    }
)


class FakeApi(FakeCluster):
    """What a join asks of an apiserver: every right granted, the dry run and discovery
    answered, a ServiceAccount token issued as soon as its Secret exists."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.config = SimpleNamespace(server=f"https://{name}:6443")

    async def get_raw(self, path: str, **_: Any) -> Any:
        return {"gitVersion": "v1.36.3"}

    async def resource_for(self, api_version: str, kind: str) -> Resource:
        return CLUSTERS

    async def close(self) -> None:
        pass

    async def create(
        self, resource: Resource, body: Obj, namespace: str | None = None, *, dry_run: bool = False
    ) -> Obj:
        if resource == SELF_SUBJECT_ACCESS_REVIEWS:
            return {"status": {"allowed": True}}
        if dry_run:
            return copy.deepcopy(body)
        created = await super().create(resource, body, namespace)
        created["metadata"]["uid"] = f"uid-{created['metadata']['name']}"
        return created

    async def apply(self, resource: Resource, body: Obj, **kwargs: Any) -> Obj:
        out = await super().apply(resource, body, **kwargs)
        if body.get("type") == "kubernetes.io/service-account-token":
            issued = {"token": b"token", "ca.crt": b"ca"}
            out["data"] = {k: base64.b64encode(v).decode() for k, v in issued.items()}
        return out

    async def patch(
        self, resource: Resource, name: str, body: Obj, namespace: str | None = None, **_: Any
    ) -> Obj:
        found = self.find(resource, name, namespace)
        assert found is not None, (resource, name)
        found["metadata"].update(body.get("metadata", {}))
        return found


@pytest.fixture
def clusters(monkeypatch: pytest.MonkeyPatch) -> dict[str, FakeApi]:
    """The host (Kosmos installed) and the member; every kubeconfig opens the member."""
    out = {"host": FakeApi("host"), MEMBER: FakeApi(MEMBER)}
    out["host"].put(NAMESPACES, {"metadata": {"name": names.SYSTEM_NAMESPACE}})

    async def from_text(name: str, *_: Any, **__: Any) -> str:
        return name

    async def nothing(*_: Any, **__: Any) -> bool:
        return True

    monkeypatch.setattr(kube_config, "from_kubeconfig_text", from_text)
    for module in (join, linkside):
        monkeypatch.setattr(module, "Client", lambda config: out[config])
    monkeypatch.setattr(probeside, "prepare_member", nothing)
    monkeypatch.setattr(mcsdns, "wire", nothing)
    return out


class Hosts:
    def __init__(self, host: FakeApi) -> None:
        self.host = host

    async def client(self) -> FakeApi:
        return self.host


async def _join(clusters: dict[str, FakeApi], log_format: Any) -> str:
    options = JoinOptions(
        name=MEMBER,
        image_repository="reg.example/k",
        version="v9",
        log_format=log_format,
    )
    return await join.join_member(
        Hosts(clusters["host"]),  # type: ignore[arg-type]
        options,
        KUBECONFIG,
        0,
        lambda _: None,
    )


def _containers(member: FakeApi) -> dict[str, list[Obj]]:
    """The member's Kosmos workloads -> their containers."""
    ns = names.SYSTEM_NAMESPACE
    workloads = {
        linkside.AGENT: member.find(DAEMONSETS, linkside.AGENT, ns),
        PROBE: member.find(DEPLOYMENTS, PROBE, ns),
        mcsdns.NAME: member.find(DEPLOYMENTS, mcsdns.NAME, ns),
    }
    out = {}
    for name, body in workloads.items():
        assert body is not None, f"join did not apply {name}"
        out[name] = body["spec"]["template"]["spec"]["containers"]
    return out


def _flags(member: FakeApi) -> dict[str, list[str]]:
    """Each Kosmos-image container (``workload/container``) -> its ``--log-format`` args."""
    return {
        f"{workload}/{c['name']}": [a for a in c["args"] if a.startswith("--log-format")]
        for workload, containers in _containers(member).items()
        for c in containers
        if c["image"] == IMAGE
    }


def _agent_args(member: FakeApi) -> list[str]:
    agents = member.find(DAEMONSETS, linkside.AGENT, names.SYSTEM_NAMESPACE)
    assert agents is not None
    return list(agents["spec"]["template"]["spec"]["containers"][0]["args"])


async def test_json_reaches_the_agents_the_prober_and_the_zone_writer_not_coredns(clusters):
    assert await _join(clusters, "json") == f"cluster {MEMBER} joined"
    member = clusters[MEMBER]
    assert _flags(member) == {
        f"{linkside.AGENT}/agent": ["--log-format=json"],
        f"{PROBE}/eps-probe": ["--log-format=json"],
        f"{mcsdns.NAME}/zone-writer": ["--log-format=json"],
    }
    for workload, containers in _containers(member).items():
        for c in containers:
            if c["image"] != IMAGE:  # CoreDNS keeps its own logs
                assert not any("--log-format" in a for a in c.get("args", [])), (workload, c)


async def test_text_adds_nothing_and_a_rejoin_converges_the_members_pods(clusters):
    assert await _join(clusters, "text") == f"cluster {MEMBER} joined"
    member = clusters[MEMBER]
    plain = linkside.daemonset(MEMBER, names.SYSTEM_NAMESPACE, IMAGE)
    assert _agent_args(member) == plain["spec"]["template"]["spec"]["containers"][0]["args"]
    assert all(not f for f in _flags(member).values()), _flags(member)
    first = len(member.log)

    assert await _join(clusters, "json") == f"cluster {MEMBER} is already joined"
    assert all(f == ["--log-format=json"] for f in _flags(member).values()), _flags(member)
    assert _agent_args(member)[-1] == "--log-format=json"
    # only the agents' DaemonSet: their kubeconfig Secret stays as the first join wrote it
    assert f"apply DaemonSet {linkside.AGENT}" in member.log[first:]
    assert f"apply Secret {linkside.AGENT_KUBECONFIG}" not in member.log[first:]

    assert await _join(clusters, "text") == f"cluster {MEMBER} is already joined"
    assert all(not f for f in _flags(member).values()), _flags(member)
    assert _agent_args(member) == plain["spec"]["template"]["spec"]["containers"][0]["args"]


async def test_a_rejoin_opens_and_closes_one_member_client(clusters, monkeypatch):
    assert await _join(clusters, "text") == f"cluster {MEMBER} joined"
    opened: list[str] = []
    closed: list[str] = []

    def client(config: str) -> FakeApi:
        opened.append(config)
        return clusters[config]

    async def close() -> None:
        closed.append(MEMBER)

    for module in (join, linkside):
        monkeypatch.setattr(module, "Client", client)
    monkeypatch.setattr(clusters[MEMBER], "close", close)
    assert await _join(clusters, "json") == f"cluster {MEMBER} is already joined"
    assert _agent_args(clusters[MEMBER])[-1] == "--log-format=json"  # it did converge
    assert opened == [MEMBER]
    assert closed == [MEMBER]
