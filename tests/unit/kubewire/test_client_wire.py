import pytest

from kosmos.api.resources import CONFIGMAPS
from kosmos.kube.client import Client
from kosmos.kube.config import ClusterConfig
from kosmos.kube.errors import AlreadyExists, ConnectError, Gone, Invalid, NotFound

from .fake_apiserver import PATH, FakeApiserver


@pytest.fixture
async def server():
    fake = FakeApiserver()
    url = await fake.start()
    fake.url = url
    yield fake
    await fake.stop()


@pytest.fixture
async def client(server):
    c = Client(ClusterConfig(name="member1", server=server.url, qps=1000, burst=1000))
    yield c
    await c.close()


async def test_list_follows_continue_tokens_and_returns_the_lists_version(server, client):
    for name in "abcde":
        server.put(name)
    result = await client.list(CONFIGMAPS, "default", limit=2)
    assert [o["metadata"]["name"] for o in result.items] == list("abcde")
    assert result.resource_version == str(server.rv)
    pages = [r for r in server.requests if r["path"] == PATH]
    assert [r.get("continue") for r in pages] == [None, "2", "4"]
    assert all(o["kind"] == "ConfigMap" and o["apiVersion"] == "v1" for o in result.items)


async def test_watch_reassembles_split_lines_and_raises_gone_on_410_error_event(server, client):
    obj = server.put("a")
    server.watch_scripts.append(
        [
            {"type": "ADDED", "object": obj},
            {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "99"}}},
            {
                "type": "ERROR",
                "object": {
                    "kind": "Status",
                    "code": 410,
                    "reason": "Expired",
                    "message": "too old resource version: 5 (50)",
                },
            },
        ]
    )
    seen = []
    with pytest.raises(Gone, match="cluster member1: watch configmaps default: too old"):
        async for event in client.watch(CONFIGMAPS, namespace="default", resource_version="5"):
            seen.append(event["type"])
    assert seen == ["ADDED", "BOOKMARK"]
    watch = next(r for r in server.requests if r.get("watch"))
    assert watch["allowWatchBookmarks"] == "true"
    assert watch["resourceVersion"] == "5"


@pytest.mark.parametrize(
    ("code", "status", "error", "text"),
    [
        (
            404,
            {"reason": "NotFound", "message": 'configmaps "x" not found'},
            NotFound,
            "get configmaps default/x",
        ),
        (409, {"reason": "AlreadyExists", "message": "exists"}, AlreadyExists, "exists"),
        (
            422,
            {
                "reason": "Invalid",
                "message": "bad",
                "details": {"causes": [{"field": "data.v", "message": "too long"}]},
            },
            Invalid,
            "bad",
        ),
    ],
)
async def test_http_failures_map_to_typed_errors_naming_the_cluster(
    server, client, code, status, error, text
):
    server.errors[PATH + "/x"] = (code, {"kind": "Status", "code": code, **status})
    with pytest.raises(error) as info:
        await client.get(CONFIGMAPS, "x", "default")
    assert "cluster member1" in str(info.value)
    assert text in str(info.value)
    if error is Invalid:
        assert info.value.causes == [{"field": "data.v", "message": "too long"}]


async def test_unreachable_apiserver_is_a_connect_error_naming_cluster_and_server():
    c = Client(ClusterConfig(name="gone", server="http://127.0.0.1:1"))
    try:
        with pytest.raises(
            ConnectError,
            match=r"cluster gone: get configmaps default/x: cannot reach http://127.0.0.1:1",
        ):
            await c.get(CONFIGMAPS, "x", "default")
    finally:
        await c.close()


async def test_stalled_watch_raises_connect_error(server, client):
    server.watch_scripts.append(["hang"])
    with pytest.raises(ConnectError, match="stream broken"):
        async for _ in client.watch(CONFIGMAPS, namespace="default", stall_timeout=0.3):
            pass


async def test_health_paths_come_back_as_text_through_the_shared_request_path(server, client):
    assert await client.get_raw("/readyz") == "ok"
    assert server.requests[-1]["path"] == "/readyz"
