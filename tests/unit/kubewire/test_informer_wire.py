import asyncio

import pytest

from kosmos.api.resources import CONFIGMAPS
from kosmos.kube import metrics
from kosmos.kube.client import Client
from kosmos.kube.config import ClusterConfig
from kosmos.kube.informer import Informer

from .fake_apiserver import FakeApiserver


class Recorder:
    def __init__(self):
        self.events = []

    def on_add(self, obj):
        self.events.append(("add", obj["metadata"]["name"]))

    def on_update(self, old, new):
        self.events.append(("update", new["metadata"]["name"]))

    def on_delete(self, obj):
        self.events.append(("delete", obj["metadata"]["name"]))


@pytest.fixture
async def env():
    fake = FakeApiserver()
    url = await fake.start()
    client = Client(ClusterConfig(name="wire", server=url, qps=1000, burst=1000))
    yield fake, client
    await client.close()
    await fake.stop()


async def run_until(informer, predicate, timeout=5.0):
    task = asyncio.create_task(informer.run())
    try:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def counter(metric, *labels):
    return metric.labels(*labels)._value.get()


async def test_relist_after_410_emits_deletes_for_what_vanished_and_adds_for_new(env):
    fake, client = env
    fake.put("a")
    fake.put("b")
    gone = {"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old"}}
    fake.watch_scripts.append([0.05, gone])
    informer = Informer(client, CONFIGMAPS, namespace="default", page_size=1)
    recorder = Recorder()
    informer.add_handler(recorder)
    relists = counter(metrics.watch_relists, "wire", "configmaps")

    async def mutate_then_410():
        await informer.wait_for_sync()
        fake.remove("b")
        fake.put("c")
        fake.put("a")

    mutation = asyncio.create_task(mutate_then_410())
    await run_until(informer, lambda: ("add", "c") in recorder.events)
    await mutation
    assert recorder.events[:2] == [("add", "a"), ("add", "b")]
    assert set(recorder.events[2:]) == {("delete", "b"), ("add", "c"), ("update", "a")}
    assert sorted(informer.store.keys()) == ["default/a", "default/c"]
    assert counter(metrics.watch_relists, "wire", "configmaps") == relists + 1
    # The transform dropped managedFields before caching.
    assert "managedFields" not in informer.store.get("default/a")["metadata"]


async def test_bookmark_moves_the_resume_version_and_events_update_the_cache(env):
    fake, client = env
    fake.put("a")
    added = {"type": "ADDED", "object": fake.put("z")}
    bookmark = {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "500"}}}
    fake.watch_scripts += [[added, bookmark], ["hang"]]
    informer = Informer(client, CONFIGMAPS, namespace="default")
    await run_until(informer, lambda: sum(1 for r in fake.requests if r.get("watch")) >= 2)
    watches = [r for r in fake.requests if r.get("watch")]
    assert watches[1]["resourceVersion"] == "500"
    assert "default/z" in informer.store
    assert len(informer.store.by_index("namespace", "default")) == 2


async def test_stalled_stream_is_reopened_from_the_last_version(env):
    fake, client = env
    fake.put("a")
    fake.watch_scripts += [["hang"], ["hang"]]
    restarts = counter(metrics.watch_restarts, "wire", "configmaps")
    informer = Informer(
        client, CONFIGMAPS, namespace="default", stall_timeout=0.2, backoff_cap=0.05
    )
    await run_until(informer, lambda: sum(1 for r in fake.requests if r.get("watch")) >= 2)
    watches = [r for r in fake.requests if r.get("watch")]
    assert watches[0]["resourceVersion"] == watches[1]["resourceVersion"]
    assert sum(1 for r in fake.requests if not r.get("watch")) == 1  # no relist
    assert counter(metrics.watch_restarts, "wire", "configmaps") >= restarts + 1
