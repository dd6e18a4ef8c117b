"""The extender's HTTP surface: kube-scheduler's wire format, errors as answers, health."""

from aiohttp.test_utils import TestClient, TestServer

from kosmos.scheduler.decide import Owner
from kosmos.scheduler.inflight import InFlight
from kosmos.scheduler.ledger import Ledger
from kosmos.scheduler.server import Extender
from tests.unit.scheduler.test_decide import View, pod, policy


class Caches(View):
    in_flight = InFlight(lambda _: False)


async def client(caches, not_ready=list):
    extender = Extender(caches, Ledger(), not_ready)
    test = TestClient(TestServer(extender.app()))
    await test.start_server()
    return test, extender


async def test_filter_with_node_names():
    test, _ = await client(Caches(namespaced=[policy("leaf")]))
    try:
        response = await test.post(
            "/kosmos-scheduler-extender/filter",
            json={"Pod": pod(), "NodeNames": ["kosmos-c1", "h1"]},
        )
        body = await response.json()
        assert response.status == 200
        assert body["NodeNames"] == ["kosmos-c1"]
        assert list(body["FailedAndUnresolvableNodes"]) == ["h1"]
        assert body["FailedNodes"] == {} and body["Error"] == ""
    finally:
        await test.close()


async def test_filter_with_full_nodes_answers_full_nodes():
    test, _ = await client(Caches())
    try:
        nodes = {"items": [{"metadata": {"name": "h1"}, "extra": 1}]}
        response = await test.post(
            "/kosmos-scheduler-extender/filter", json={"Pod": pod(), "Nodes": nodes}
        )
        assert (await response.json())["Nodes"] == nodes
    finally:
        await test.close()


async def test_not_ready_is_an_error_answer_not_a_500():
    test, _ = await client(Caches(), lambda: ["host caches not synced yet: pods"])
    try:
        response = await test.post(
            "/kosmos-scheduler-extender/filter", json={"Pod": pod(), "NodeNames": ["h1"]}
        )
        assert response.status == 200
        assert (await response.json())["Error"] == (
            "kosmos-scheduler-extender is not ready: host caches not synced yet: pods"
        )
        ready = await test.get("/readyz")
        assert ready.status == 503
    finally:
        await test.close()


async def test_prioritize_and_health():
    test, _ = await client(Caches())
    try:
        response = await test.post(
            "/kosmos-scheduler-extender/prioritize", json={"Pod": pod(), "NodeNames": ["h1"]}
        )
        assert await response.json() == [{"Host": "h1", "Score": 0}]
        assert (await test.get("/healthz")).status == 200
        metrics = await (await test.get("/metrics")).text()
        assert "kosmos_scheduler_extender_request_duration_seconds_bucket" in metrics
    finally:
        await test.close()


async def test_placement_reserves_in_the_ledger():
    weights = [{"name": "c1", "weight": 1}]
    caches = Caches(namespaced=[policy("leaf", weights)])
    me = pod("me")
    caches.owners = {"me": Owner("ReplicaSet", "rs", "ns/web", 2)}
    caches.pods = {"rs": [me]}
    test, extender = await client(caches)
    try:
        await test.post(
            "/kosmos-scheduler-extender/filter", json={"Pod": me, "NodeNames": ["kosmos-c1"]}
        )
        assert [r.cluster for r in extender.ledger.of_owner("rs")] == ["c1"]
    finally:
        await test.close()


async def test_a_bad_body_is_an_error_answer():
    test, _ = await client(Caches())
    try:
        response = await test.post("/kosmos-scheduler-extender/filter", data=b"{not json")
        assert response.status == 200
        assert (await response.json())["Error"].startswith(
            "kosmos-scheduler-extender: not an ExtenderArgs JSON body"
        )
    finally:
        await test.close()


async def test_prioritize_answers_with_the_scores_its_filter_computed():
    from tests.unit.scheduler.test_decide import room

    caches = Caches(free={"kosmos-c1": [room(2)], "kosmos-c2": [room(12)]})
    test, _ = await client(caches)
    try:
        args = {"Pod": pod(), "NodeNames": ["kosmos-c1", "kosmos-c2"]}
        await test.post("/kosmos-scheduler-extender/filter", json=args)
        caches.free = {}  # the state moved on: prioritize still answers for the filter's view
        response = await test.post("/kosmos-scheduler-extender/prioritize", json=args)
        assert await response.json() == [
            {"Host": "kosmos-c1", "Score": 1},
            {"Host": "kosmos-c2", "Score": 7},
        ]
    finally:
        await test.close()
