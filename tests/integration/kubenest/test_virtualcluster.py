"""A VirtualCluster through its life on the real host, with the real local provider: the
control plane comes up and its kubeconfig works, a kwok node leaves the host for the
tenant and turns Ready there, the cluster grows and shrinks, a second VirtualCluster in
the namespace is refused, and deletion gives every node back and leaves nothing.

The controllers run in the test process on the shared manager, as the operator runs them;
tenants run from ~/.cache/kosmos/bin on ports ``KOSMOS_KUBENEST_CTL_PORTS`` (default
21100-21199, apart from the provider test's).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kosmos.api import names
from kosmos.api.objects import Obj, labels_of, node_ready
from kosmos.api.resources import GLOBAL_NODES, NAMESPACES, NODES, VIRTUAL_CLUSTERS
from kosmos.kube import component
from kosmos.kube import config as kube_config
from kosmos.kube.client import Client
from kosmos.kube.errors import NotFound
from kosmos.kube.events import EventRecorder
from kosmos.kube.manager import Manager
from kosmos.kubenest import components, controllers, globalnodes, phases, pool
from kosmos.kubenest.local import LocalProvider
from kosmos.kubenest.ports import LOCK_FILE
from kosmos.kubenest.settings import Settings
from tests.fixtures.clusters import LocalEnv
from tests.support import require, wait_for_async

BIN = Path(os.environ.get("KOSMOS_KUBENEST_BIN", "~/.cache/kosmos/bin")).expanduser()
LOW, HIGH = (int(p) for p in os.environ.get("KOSMOS_KUBENEST_CTL_PORTS", "21100-21199").split("-"))
TIMEOUT = 120


@dataclass
class Rig:
    host: Client
    namespace: str
    label: str  # a label only this test's nodes carry
    nodes: list[str]
    state_dir: Path


@pytest.fixture
async def rig(local_env: LocalEnv, kosmos_crds: list[str], tmp_path: Path) -> AsyncIterator[Rig]:
    missing = [b for b in components.BINARIES.values() if not (BIN / b).is_file()]
    require(not missing, f"{BIN} lacks {missing} (kosmosctl local toolchain builds them)")
    client = await local_env.client(local_env.host)
    token = secrets.token_hex(3)
    rig = Rig(
        client,
        f"kn-ctl-{token}",
        f"kn-ctl-{token}",
        [f"kn-ctl-{token}-{i}" for i in (0, 1)],
        tmp_path / "state",
    )
    settings = Settings("local", rig.state_dir, BIN, (LOW, HIGH), "127.0.0.1")
    manager = Manager("kubenest-ctl-test")
    manager.add_cluster(component.HOST, client)
    recorder = EventRecorder(client, "kosmos-virtual-cluster-operator")
    runtime = component.Runtime(
        "kubenest-ctl-test", component.Common(), manager, client, "t", recorder
    )
    globalnodes.build(runtime)
    controllers.build(runtime, settings, LocalProvider(settings))
    for name in rig.nodes:
        await client.create(NODES, _kwok_node(name, rig.label))
    await client.create(NAMESPACES, {"metadata": {"name": rig.namespace}})
    running = asyncio.create_task(manager.run())
    try:
        yield rig
    finally:
        await _clean(rig)
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        for stop in reversed(runtime._stops):  # the tenants' clients
            await stop()
        await manager.close()


def _kwok_node(name: str, label: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                names.LABEL_KWOK_NODE: "fake",
                "kn-ctl": label,
                "kubernetes.io/hostname": name,
            },
            "annotations": {names.LABEL_KWOK_NODE: "fake"},
        },
    }


async def _clean(rig: Rig) -> None:
    """Delete the VirtualClusters (their controllers still run), then the test's nodes."""
    for vc in (await rig.host.list(VIRTUAL_CLUSTERS, rig.namespace)).items:
        with contextlib.suppress(NotFound):
            await rig.host.delete(VIRTUAL_CLUSTERS, vc["metadata"]["name"], rig.namespace)
    with contextlib.suppress(AssertionError):
        await wait_for_async(lambda: _no_vcs(rig), TIMEOUT, "VirtualClusters gone")
    for name in rig.nodes:
        with contextlib.suppress(NotFound):
            await rig.host.delete(NODES, name)
    with contextlib.suppress(NotFound):
        await rig.host.delete(NAMESPACES, rig.namespace)


async def _no_vcs(rig: Rig) -> bool:
    return not (await rig.host.list(VIRTUAL_CLUSTERS, rig.namespace)).items


def _vc(rig: Rig, name: str, count: int) -> Obj:
    return {
        "apiVersion": "kosmos.io/v1alpha1",
        "kind": "VirtualCluster",
        "metadata": {"name": name, "namespace": rig.namespace},
        "spec": {
            "externalIP": "192.168.0.1",
            "promotePolicies": [
                {"labelSelector": {"matchLabels": {"kn-ctl": rig.label}}, "nodeCount": count}
            ],
        },
    }


async def _get(rig: Rig, name: str) -> Any:
    try:
        return await rig.host.get(VIRTUAL_CLUSTERS, name, rig.namespace)
    except NotFound:
        return None


async def _phase_is(rig: Rig, name: str, phase: str) -> bool:
    vc = await _get(rig, name)
    return bool(vc) and phases.phase_of(vc) == phase


async def _tenant(vc: Obj) -> Client:
    text = base64.b64decode(vc["spec"]["kubeconfig"])
    return Client(await kube_config.from_kubeconfig_text("tenant", text))


async def _globalnode(rig: Rig, name: str) -> Any:
    try:
        return await rig.host.get(GLOBAL_NODES, name)
    except NotFound:
        return None


async def _free_in_host(rig: Rig, name: str) -> bool:
    gn = await _globalnode(rig, name)
    try:
        node = await rig.host.get(NODES, name)
    except NotFound:
        return False
    return (
        gn is not None
        and pool.state_of(gn) == "free"
        and labels_of(node).get(names.LABEL_NODE_STATE) == "free"
    )


async def test_a_virtual_cluster_through_its_life(rig: Rig) -> None:
    for name in rig.nodes:  # the pool has them before a VirtualCluster asks
        await wait_for_async(lambda n=name: _globalnode(rig, n), 30, f"GlobalNode {name}")
    started = time.monotonic()
    await rig.host.create(VIRTUAL_CLUSTERS, _vc(rig, "vc", 1))
    await wait_for_async(lambda: _phase_is(rig, "vc", phases.COMPLETED), TIMEOUT, "vc Completed")
    print(
        f"\nVirtualCluster with 1 kwok node: created -> Completed in "
        f"{time.monotonic() - started:.1f}s"
    )
    vc = await _get(rig, "vc")
    assert vc["metadata"]["finalizers"] == [names.FINALIZER_VIRTUAL_CLUSTER]
    assert {c["type"]: c["status"] for c in vc["status"]["conditions"]} == {
        phases.CONTROL_PLANE_READY: "True",
        phases.NODES_READY: "True",
        phases.READY: "True",
    }
    assert vc["status"]["portMap"]
    first = phases.node_infos(vc)
    assert len(first) == 1 and first[0] in rig.nodes
    tenant = await _tenant(vc)
    try:
        await _life(rig, tenant, first[0])
    finally:
        await tenant.close()


async def _life(rig: Rig, tenant: Client, first: str) -> None:
    node = await tenant.get(NODES, first)
    assert node_ready(node)
    assert labels_of(node)[names.LABEL_NODE_STATE] == "occupied"
    assert labels_of(node)["kn-ctl"] == rig.label
    with pytest.raises(NotFound):
        await rig.host.get(NODES, first)
    gn = await _globalnode(rig, first)
    assert pool.state_of(gn) == "occupied" and pool.holder_of(gn) == f"{rig.namespace}/vc"

    # one VirtualCluster per namespace
    await rig.host.create(VIRTUAL_CLUSTERS, _vc(rig, "second", 1))
    await wait_for_async(lambda: _phase_is(rig, "second", phases.FAILED), 30, "second Failed")
    await rig.host.delete(VIRTUAL_CLUSTERS, "second", rig.namespace)

    # grow, then shrink
    patch = {
        "spec": {
            "promotePolicies": [
                {"labelSelector": {"matchLabels": {"kn-ctl": rig.label}}, "nodeCount": 2}
            ]
        }
    }
    await rig.host.patch(VIRTUAL_CLUSTERS, "vc", patch, namespace=rig.namespace)
    await wait_for_async(lambda: _holds(rig, 2), TIMEOUT, "vc Completed with 2 nodes")
    patch["spec"]["promotePolicies"][0]["nodeCount"] = 1
    await rig.host.patch(VIRTUAL_CLUSTERS, "vc", patch, namespace=rig.namespace)
    await wait_for_async(lambda: _holds(rig, 1), TIMEOUT, "vc Completed with 1 node")
    second = next(n for n in rig.nodes if n != first)
    await wait_for_async(lambda: _free_in_host(rig, second), TIMEOUT, f"{second} back")
    with pytest.raises(NotFound):
        await tenant.get(NODES, second)

    # deletion gives the node back and leaves nothing
    await rig.host.delete(VIRTUAL_CLUSTERS, "vc", rig.namespace)
    await wait_for_async(lambda: _no_vcs(rig), TIMEOUT, "vc deleted")
    assert await _free_in_host(rig, first)
    # the provider's allocation lock stays (it is shared by every tenant); no tenant's files do
    left = [p for p in rig.state_dir.iterdir() if p.name != LOCK_FILE]
    assert not left, left


async def _holds(rig: Rig, count: int) -> bool:
    vc = await _get(rig, "vc")
    return (
        bool(vc) and phases.phase_of(vc) == phases.COMPLETED and len(phases.node_infos(vc)) == count
    )
