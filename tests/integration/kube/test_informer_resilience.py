"""Informers lose no update across an apiserver restart and a forced 410 (etcd compaction)."""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.request

from kosmos.api.resources import CONFIGMAPS
from kosmos.kube import metrics
from kosmos.kube.client import Client
from kosmos.kube.informer import Informer
from tests.fixtures.clusters import LocalEnv
from tests.support import wait_for_async


class LastState:
    """What a controller would see: the last state of every object, deletions included."""

    def __init__(self) -> None:
        self.state: dict[str, dict | None] = {}

    def on_add(self, obj):
        self.state[obj["metadata"]["name"]] = obj.get("data")

    def on_update(self, old, new):
        self.state[new["metadata"]["name"]] = new.get("data")

    def on_delete(self, obj):
        self.state[obj["metadata"]["name"]] = None


def cm(name, namespace, value):
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"v": value},
    }


async def seed(client: Client, namespace: str) -> None:
    for name in ("keep", "change", "drop"):
        await client.create(CONFIGMAPS, cm(name, namespace, "1"))


async def mutate(client: Client, namespace: str) -> None:
    changed = await client.get(CONFIGMAPS, "change", namespace)
    changed["data"]["v"] = "2"
    await client.replace(CONFIGMAPS, changed)
    await client.delete(CONFIGMAPS, "drop", namespace)
    await client.create(CONFIGMAPS, cm("new", namespace, "1"))


EXPECTED = {"keep": {"v": "1"}, "change": {"v": "2"}, "drop": None, "new": {"v": "1"}}


def etcd_compact(port: int) -> int:
    """Compact etcd at its current revision through its HTTP gateway; return the revision."""

    def post(path, body):
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    revision = int(
        post("/v3/kv/range", {"key": base64.b64encode(b"/").decode()})["header"]["revision"]
    )
    post("/v3/kv/compaction", {"revision": str(revision), "physical": True})
    return revision


async def start(local_env, cluster, namespace):
    client = await local_env.client(cluster, qps=200, burst=200)
    informer = Informer(client, CONFIGMAPS, namespace=namespace, backoff_cap=1.0)
    seen = LastState()
    informer.add_handler(seen)
    return client, informer, seen


async def test_watch_survives_an_apiserver_restart(local_env: LocalEnv, namespace: str):
    cluster = local_env.members[1]
    client, informer, seen = await start(local_env, cluster, namespace)
    await seed(client, namespace)
    task = asyncio.create_task(informer.run())
    try:
        assert await informer.wait_for_sync(30)
        await wait_for_async(lambda: seen.state.get("drop") == {"v": "1"}, 60, "the seeded objects")
        await asyncio.to_thread(local_env.restart, cluster)
        await mutate(client, namespace)
        await wait_for_async(
            lambda: {k: seen.state.get(k) for k in EXPECTED} == EXPECTED,
            60,
            lambda: f"every update seen (seen: {seen.state})",
        )
        cached = {k.split("/")[1] for k in informer.store.keys()}
        assert {"change", "keep", "new"} <= cached
        assert "drop" not in cached
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.close()


async def test_forced_410_relists_and_no_update_is_lost(local_env: LocalEnv, namespace: str):
    """The informer is cut off, the world changes, etcd compacts and the apiserver restarts:
    its old resourceVersion is gone (410), so it must relist and diff, deletions included."""
    cluster = local_env.members[0]
    client, informer, seen = await start(local_env, cluster, namespace)
    await seed(client, namespace)
    task = asyncio.create_task(informer.run())
    assert await informer.wait_for_sync(30)
    await wait_for_async(lambda: seen.state.get("drop") == {"v": "1"}, 60, "the seeded objects")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    stale_version = informer.resource_version

    await mutate(client, namespace)
    etcd_compact(local_env.plan(cluster).ports["etcd"])
    await asyncio.to_thread(local_env.restart, cluster)

    relists = metrics.watch_relists.labels(cluster, "configmaps")._value.get()
    task = asyncio.create_task(informer.run())
    try:
        await wait_for_async(
            lambda: {k: seen.state.get(k) for k in EXPECTED} == EXPECTED,
            60,
            lambda: f"every update seen (seen: {seen.state})",
        )
        assert metrics.watch_relists.labels(cluster, "configmaps")._value.get() == relists + 1
        assert informer.resource_version != stale_version
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.close()
