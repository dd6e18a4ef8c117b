"""The GlobalNode controller against the real host apiserver: the pool follows the host's
Nodes, a label the node loses leaves the GlobalNode (server-side apply ownership), the state
another manager sets is never touched, and an occupied GlobalNode outlives its Node.

The controller runs in the test process on the shared manager, as the operator runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest

from kosmos.api import names
from kosmos.api.objects import labels_of
from kosmos.api.resources import GLOBAL_NODES, NODES
from kosmos.kube import component
from kosmos.kube.client import Client
from kosmos.kube.errors import NotFound
from kosmos.kube.events import EventRecorder
from kosmos.kube.manager import Manager
from kosmos.kubenest import globalnodes, pool
from tests.fixtures.clusters import LocalEnv
from tests.support import wait_for_async

TIMEOUT = 30


@pytest.fixture
async def host(local_env: LocalEnv, kosmos_crds: list[str]) -> AsyncIterator[Client]:
    """The host client, with the GlobalNode controller running for the test."""
    client = await local_env.client(local_env.host)
    before = {g["metadata"]["name"] for g in (await client.list(GLOBAL_NODES)).items}
    manager = Manager("kubenest-test")
    manager.add_cluster(component.HOST, client)
    recorder = EventRecorder(client, "kosmos-virtual-cluster-operator")
    runtime = component.Runtime(
        "kubenest-test", component.Common(), manager, client, "test", recorder
    )
    globalnodes.build(runtime)
    running = asyncio.create_task(manager.run())
    try:
        yield client
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        for obj in (await client.list(GLOBAL_NODES)).items:
            if obj["metadata"]["name"] not in before:
                with contextlib.suppress(NotFound):
                    await client.delete(GLOBAL_NODES, obj["metadata"]["name"])
        await manager.close()


async def globalnode(client: Client, name: str) -> Any:
    try:
        return await client.get(GLOBAL_NODES, name)
    except NotFound:
        return None


async def test_every_host_node_in_the_pool_gets_its_global_node(host: Client) -> None:
    nodes = (await host.list(NODES)).items
    assert nodes

    async def in_step() -> bool:
        for node in nodes:
            current = await globalnode(host, node["metadata"]["name"])
            if not pool.eligible(node):
                if current is not None and pool.state_of(current) != pool.OCCUPIED:
                    return False
                continue
            if current is None or pool.pool_labels(current) != labels_of(node):
                return False
            if current["spec"].get("nodeIP", "") != pool.node_ip(node):
                return False
        return True

    await wait_for_async(in_step, TIMEOUT, "a GlobalNode per pool node", interval=0.5)


async def test_a_node_through_its_life(host: Client) -> None:
    name = f"kn-pool-{secrets.token_hex(3)}"
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"pool": "a", "zone": "z1"}},
    }
    await host.create(NODES, node)
    try:
        await _lifecycle(host, name)
    finally:
        with contextlib.suppress(NotFound):
            await host.delete(NODES, name)


async def _lifecycle(host: Client, name: str) -> None:
    async def spec() -> Any:
        current = await globalnode(host, name)
        return current and current["spec"]

    async def spec_is(expected: dict[str, Any]) -> bool:
        return await spec() == expected

    await wait_for_async(
        lambda: spec_is({"state": "free", "labels": {"pool": "a", "zone": "z1"}}),
        TIMEOUT,
        f"GlobalNode {name} free with the node's labels",
    )
    # a label the node loses leaves the GlobalNode; one it gains arrives
    patch = {"metadata": {"labels": {"zone": None, "gpu": "yes"}}}
    await host.patch(NODES, name, patch)
    await wait_for_async(
        lambda: spec_is({"state": "free", "labels": {"pool": "a", "gpu": "yes"}}),
        TIMEOUT,
        "the node's new labels on its GlobalNode",
    )
    # the VirtualCluster controllers own state: a label change later keeps it
    occupied = {"spec": {"state": "occupied"}, "status": {"virtualCluster": "ns/vc"}}
    await host.patch(GLOBAL_NODES, name, {"spec": occupied["spec"]}, field_manager="test-vc")
    await host.patch(NODES, name, {"metadata": {"labels": {"pool": "b"}}})
    await wait_for_async(
        lambda: spec_is({"state": "occupied", "labels": {"pool": "b", "gpu": "yes"}}),
        TIMEOUT,
        "state kept while the labels follow",
    )
    # promoted away: the node leaves the host, the occupied GlobalNode stays
    await host.delete(NODES, name)
    await asyncio.sleep(2)
    assert (await spec())["state"] == "occupied"
    # given back as free while the node is still gone: the GlobalNode goes with it
    await host.patch(GLOBAL_NODES, name, {"spec": {"state": "free"}}, field_manager="test-vc")
    await wait_for_async(lambda: _gone(host, name), TIMEOUT, f"GlobalNode {name} deleted once free")


async def _gone(host: Client, name: str) -> bool:
    return await globalnode(host, name) is None


async def test_an_excluded_node_leaves_the_pool(host: Client) -> None:
    name = f"kn-pool-{secrets.token_hex(3)}"
    await host.create(NODES, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})
    try:
        await wait_for_async(lambda: globalnode(host, name), TIMEOUT, f"GlobalNode {name} created")
        await host.patch(NODES, name, {"metadata": {"labels": {names.LABEL_EXCLUDE: "true"}}})
        await wait_for_async(lambda: _gone(host, name), TIMEOUT, "GlobalNode gone on exclude")
    finally:
        with contextlib.suppress(NotFound):
            await host.delete(NODES, name)
