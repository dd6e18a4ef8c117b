"""The GlobalNode controller on fake stores and a fake client: what it writes and never writes."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import pytest

from kosmos.api import names
from kosmos.kube.controller import Request, TerminalError
from kosmos.kube.errors import AlreadyExists, Conflict, Invalid, NotFound
from kosmos.kube.store import Store
from kosmos.kubenest.globalnodes import GlobalNodeSync

CP = "node-role.kubernetes.io/control-plane"


class FakeClient:
    """GlobalNodes by name; every write in ``calls``; ``fail`` raises on the next such verb."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.fail: dict[str, Exception] = {}

    def _maybe_fail(self, verb: str) -> None:
        if verb in self.fail:
            raise self.fail.pop(verb)

    async def get(self, resource: Any, name: str, namespace: str | None = None) -> Any:
        if name not in self.objects:
            raise NotFound("host", f"{name} not found")
        return copy.deepcopy(self.objects[name])

    async def create(self, resource: Any, body: Any, namespace: str | None = None) -> Any:
        self.calls.append(("create", body["metadata"]["name"], copy.deepcopy(body)))
        self._maybe_fail("create")
        obj = copy.deepcopy(body)
        obj["metadata"].update(resourceVersion="1", uid="u-" + obj["metadata"]["name"])
        self.objects[obj["metadata"]["name"]] = obj
        return obj

    async def apply(self, resource: Any, body: Any, *, field_manager: str, force: bool) -> Any:
        assert field_manager == names.FIELD_MANAGER_KUBENEST
        assert force
        self.calls.append(("apply", body["metadata"]["name"], copy.deepcopy(body)))
        self._maybe_fail("apply")
        return body

    async def delete(self, resource: Any, name: str, **preconditions: Any) -> None:
        self.calls.append(("delete", name, preconditions))
        self._maybe_fail("delete")
        self.objects.pop(name, None)


class FakeRecorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str, str]] = []

    async def record(self, obj: Any, type_: str, reason: str, message: str) -> None:
        self.events.append((obj["metadata"]["name"], type_, reason, message))


def node(name: str, ip: str = "10.0.0.1", **labels: str) -> dict[str, Any]:
    addresses = [{"type": "InternalIP", "address": ip}]
    return {"metadata": {"name": name, "labels": labels}, "status": {"addresses": addresses}}


def gnode(name: str, state: str = "free", ip: str = "10.0.0.1", **labels: str) -> dict[str, Any]:
    spec = {"state": state, "nodeIP": ip, "labels": labels}
    meta = {"name": name, "resourceVersion": "7", "uid": f"u-{name}"}
    return {
        "apiVersion": "kosmos.io/v1alpha1",
        "kind": "GlobalNode",
        "metadata": meta,
        "spec": spec,
    }


class Env:
    def __init__(self) -> None:
        self.client = FakeClient()
        self.nodes, self.globalnodes = Store(), Store()
        self.recorder = FakeRecorder()
        self.sync = GlobalNodeSync(
            self.client,  # type: ignore[arg-type]
            self.nodes,
            self.globalnodes,
            self.recorder,  # type: ignore[arg-type]
        )

    def add(self, *, nodes: Sequence[Any] = (), globalnodes: Sequence[Any] = ()) -> None:
        for obj in nodes:
            self.nodes.upsert(obj)
        for obj in globalnodes:
            self.globalnodes.upsert(obj)
            self.client.objects[obj["metadata"]["name"]] = copy.deepcopy(obj)

    async def run(self, name: str) -> list[tuple[str, str, dict[str, Any]]]:
        await self.sync(Request("kosmos-control-cluster", "", name))
        return self.client.calls


@pytest.fixture
def env() -> Env:
    return Env()


async def test_a_new_worker_gets_a_free_global_node_then_owns_ip_and_labels(env: Env) -> None:
    env.add(nodes=[node("n1", zone="a")])
    calls = await env.run("n1")
    assert [c[:2] for c in calls] == [("create", "n1"), ("apply", "n1")]
    assert calls[0][2]["spec"] == {"state": "free"}  # the apply alone owns IP and labels
    assert calls[1][2] == {
        "apiVersion": "kosmos.io/v1alpha1",
        "kind": "GlobalNode",
        "metadata": {"name": "n1"},
        "spec": {"nodeIP": "10.0.0.1", "labels": {"zone": "a"}},
    }


async def test_a_control_plane_node_is_created_reserved(env: Env) -> None:
    env.add(nodes=[node("cp", **{CP: ""})])
    calls = await env.run("cp")
    assert calls[0][2]["spec"]["state"] == "reserved"


async def test_a_create_racing_the_cache_still_applies(env: Env) -> None:
    env.add(nodes=[node("n1")])
    env.client.fail["create"] = AlreadyExists("host", "exists")
    assert [c[0] for c in await env.run("n1")] == ["create", "apply"]


async def test_nothing_is_written_when_in_step(env: Env) -> None:
    env.add(nodes=[node("n1", zone="a")], globalnodes=[gnode("n1", "occupied", zone="a")])
    assert await env.run("n1") == []


async def test_changed_labels_are_applied_without_state(env: Env) -> None:
    env.add(
        nodes=[node("n1", "10.0.0.9", zone="b")], globalnodes=[gnode("n1", "occupied", zone="a")]
    )
    calls = await env.run("n1")
    assert [c[0] for c in calls] == ["apply"]
    assert calls[0][2]["spec"] == {"nodeIP": "10.0.0.9", "labels": {"zone": "b"}}


async def test_a_node_gone_while_occupied_keeps_its_global_node(env: Env) -> None:
    env.add(globalnodes=[gnode("n1", "occupied")])
    assert await env.run("n1") == []
    assert "n1" in env.client.objects


async def test_the_live_state_decides_not_the_cache(env: Env) -> None:
    env.add(globalnodes=[gnode("n1", "free")])
    env.client.objects["n1"]["spec"]["state"] = "occupied"  # promoted; the cache is behind
    assert await env.run("n1") == []


async def test_a_node_gone_while_free_takes_its_global_node(env: Env) -> None:
    env.add(globalnodes=[gnode("n1", "free")])
    calls = await env.run("n1")
    assert calls == [("delete", "n1", {"uid": "u-n1", "resource_version": "7"})]
    assert "n1" not in env.client.objects


@pytest.mark.parametrize("label", [names.LABEL_NODE, names.LABEL_EXCLUDE])
async def test_a_node_leaving_the_pool_takes_its_global_node(env: Env, label: str) -> None:
    env.add(nodes=[node("n1", **{label: "true"})], globalnodes=[gnode("n1", "reserved")])
    assert [c[0] for c in await env.run("n1")] == ["delete"]


async def test_a_leaf_node_without_global_node_is_left_alone(env: Env) -> None:
    env.add(nodes=[node("leaf", **{names.LABEL_NODE: "true"})])
    assert await env.run("leaf") == []


async def test_a_delete_that_lost_a_race_is_retried(env: Env) -> None:
    env.add(globalnodes=[gnode("n1", "free")])
    env.client.fail["delete"] = Conflict("host", "resourceVersion changed")
    with pytest.raises(Conflict):
        await env.run("n1")


async def test_a_global_node_already_gone_is_fine(env: Env) -> None:
    env.add(globalnodes=[gnode("n1", "free")])
    del env.client.objects["n1"]
    assert await env.run("n1") == []


async def test_an_invalid_global_node_is_reported_not_retried(env: Env) -> None:
    env.add(nodes=[node("n1")])
    env.client.fail["create"] = Invalid("host", "spec.labels: Too many: 300")
    with pytest.raises(TerminalError) as caught:
        await env.run("n1")
    assert caught.value.reason == "InvalidGlobalNode"
    assert env.recorder.events == [
        ("n1", "Warning", "InvalidGlobalNode", "cluster host: spec.labels: Too many: 300")
    ]


async def test_a_node_without_addresses_or_labels(env: Env) -> None:
    env.add(nodes=[{"metadata": {"name": "bare"}}])
    calls = await env.run("bare")
    assert calls[0][2]["spec"] == {"state": "free"}
    assert calls[1][2]["spec"] == {}
