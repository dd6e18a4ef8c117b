"""A controller converging objects in two clusters at once; clusters join and leave at runtime.

The test controller mirrors labelled ConfigMaps of the host into every member, and repairs
member copies that drift or vanish (it watches both sides) — the shape of ClusterTree's sync.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import aiohttp

from kosmos.api.resources import CONFIGMAPS
from kosmos.kube.controller import Controller, Request, Result
from kosmos.kube.errors import NotFound
from kosmos.kube.informer import EnqueueHandler
from kosmos.kube.manager import ClusterNotFound, Manager
from kosmos.kube.metrics import PrometheusQueueMetrics, PrometheusReconcileObserver
from tests.fixtures.clusters import LocalEnv
from tests.support import wait_for_async

LABEL = "kosmos-test/mirror"
MANAGER = "kosmos-test-mirror"


def build(manager: Manager, host: str) -> Controller:
    async def reconcile(request: Request) -> Result:
        source = manager.informer(host, CONFIGMAPS, label_selector=f"{LABEL}=true").store
        obj = source.get_by_name(request.name, request.namespace)
        for member in manager.cluster_names:
            if member == host:
                continue
            try:
                client = manager.client(member)
            except ClusterNotFound:
                continue
            if obj is None:
                with contextlib.suppress(NotFound):
                    await client.delete(CONFIGMAPS, request.name, request.namespace)
                continue
            copy = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": request.name,
                    "namespace": request.namespace,
                    "labels": {LABEL: "copy"},
                },
                "data": obj.get("data", {}),
            }
            await client.apply(CONFIGMAPS, copy, field_manager=MANAGER, force=True)
        return Result()

    controller = Controller(
        "mirror",
        reconcile,
        workers=2,
        queue_metrics=PrometheusQueueMetrics(),
        observer=PrometheusReconcileObserver(),
    )

    def enqueue(obj: dict) -> None:
        meta = obj["metadata"]
        controller.enqueue(Request(host, meta["namespace"], meta["name"]))

    def wire(mgr: Manager, cluster: str) -> None:
        selector = f"{LABEL}=true" if cluster == host else f"{LABEL}=copy"
        mgr.informer(cluster, CONFIGMAPS, label_selector=selector).add_handler(
            EnqueueHandler(enqueue)
        )
        if cluster != host:  # a new member gets every mirrored object
            for obj in mgr.informer(host, CONFIGMAPS, label_selector=f"{LABEL}=true").store.list():
                enqueue(obj)

    manager.on_cluster_added(wire)
    manager.add_controller(controller)
    return controller


async def mirrored(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """The mirror converges within 30 s (a copy not made yet is NotFound)."""
    await wait_for_async(check, 30, what, interval=0.2, ignoring=(NotFound,))


async def test_mirror_across_clusters_with_runtime_join_and_leave(
    local_env: LocalEnv, namespace: str
):
    host, (m1, m2) = local_env.host, local_env.members[:2]
    clients = {name: await local_env.client(name) for name in (host, m1, m2)}
    manager = Manager("test", health_address=("127.0.0.1", 0))
    manager.add_cluster(host, await local_env.client(host))
    manager.add_cluster(m1, await local_env.client(m1))
    build(manager, host)
    run = asyncio.create_task(manager.run())

    async def value_in(cluster: str) -> str | None:
        got = await clients[cluster].get(CONFIGMAPS, "shared", namespace)
        return got["data"]["v"]

    try:
        source = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "shared", "namespace": namespace, "labels": {LABEL: "true"}},
            "data": {"v": "1"},
        }
        await clients[host].create(CONFIGMAPS, source)
        await mirrored(lambda: _eq(value_in(m1), "1"), f"the copy in {m1}")

        # A member joins while running: it gets the copy without a restart.
        manager.add_cluster(m2, await local_env.client(m2))
        await mirrored(lambda: _eq(value_in(m2), "1"), f"the copy in {m2}, joined at runtime")

        # A member copy deleted behind our back is repaired (watching the member side).
        await clients[m2].delete(CONFIGMAPS, "shared", namespace)
        await mirrored(lambda: _eq(value_in(m2), "1"), f"the deleted copy in {m2} repaired")

        # A member leaves: it is no longer written, the others still are.
        await manager.remove_cluster(m1)
        assert m1 not in manager.cluster_names
        patch = {"data": {"v": "2"}}
        await clients[host].patch(CONFIGMAPS, "shared", patch, namespace=namespace)
        await mirrored(lambda: _eq(value_in(m2), "2"), f"v=2 in {m2}")
        assert await value_in(m1) == "1"

        # Deleting the source removes the remaining copy.
        await clients[host].delete(CONFIGMAPS, "shared", namespace)

        async def gone() -> bool:
            try:
                await clients[m2].get(CONFIGMAPS, "shared", namespace)
            except NotFound:
                return True
            return False

        await mirrored(gone, f"the copy in {m2} deleted")

        assert manager.health is not None
        base = f"http://127.0.0.1:{manager.health.port}"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/readyz") as r:
                assert r.status == 200
            async with http.get(f"{base}/metrics") as r:
                text = await r.text()
        assert 'kosmos_reconcile_total{controller="mirror",outcome="success"}' in text
        assert f'kosmos_cache_objects{{cluster="{m2}",resource="configmaps"}}' in text
        assert "kosmos_client_request_duration_seconds_bucket" in text
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        await manager.close()
        for client in clients.values():
            await client.close()


async def _eq(awaitable, expected) -> bool:
    return await awaitable == expected
