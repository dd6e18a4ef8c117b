"""Client.stream / Client.websocket against the fake apiserver: bytes, frames, errors."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import web

from kosmos.api.resources import PODS
from kosmos.kube.client import Client
from kosmos.kube.config import ClusterConfig
from kosmos.kube.errors import BadRequest, NotFound

from .fake_apiserver import FakeApiserver

POD = "/api/v1/namespaces/default/pods/web"


class StreamingApiserver(FakeApiserver):
    """Adds a chunked ``pods/log`` and an echoing ``pods/exec`` WebSocket."""

    def __init__(self) -> None:
        super().__init__()
        self.queries: list[list[tuple[str, str]]] = []
        self.headers: list[dict[str, str]] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.path in self.errors:
            return await super().handle(request)
        self.queries.append(list(request.query.items()))
        self.headers.append(dict(request.headers))
        if request.path == POD + "/log":
            return await self.log(request)
        if request.path == POD + "/exec":
            return await self.exec(request)
        return await super().handle(request)

    async def log(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for line in (b"one\n", b"two\n"):
            await response.write(line)
            await asyncio.sleep(0.01)
        return response

    async def exec(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(protocols=("v5.channel.k8s.io",))
        await ws.prepare(request)
        async for msg in ws:
            await ws.send_bytes(b"\x01" + msg.data[1:])
        return ws


@pytest.fixture
async def server():
    fake = StreamingApiserver()
    fake.url = await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def client(server):
    async def auth() -> dict[str, str]:
        return {"Authorization": "Bearer t0ken"}

    c = Client(ClusterConfig(name="member1", server=server.url, auth_headers=auth))
    yield c
    await c.close()


async def test_stream_returns_the_open_response_and_forwards_params(server, client):
    response = await client.stream(PODS, "web", "default", "log", {"follow": True, "x": None})
    try:
        chunks = [chunk async for chunk in response.content.iter_any()]
    finally:
        response.release()
    assert b"".join(chunks) == b"one\ntwo\n"
    assert server.queries[-1] == [("follow", "true")]
    assert server.headers[-1]["Authorization"] == "Bearer t0ken"


async def test_stream_failure_is_the_typed_error_with_the_servers_message(server, client):
    server.errors[POD + "/log"] = (400, {"kind": "Status", "message": "container c is not valid"})
    with pytest.raises(BadRequest, match="cluster member1: log pods default/web: container c"):
        await client.stream(PODS, "web", "default", "log", {"container": "c"})


async def test_websocket_keeps_repeated_params_and_negotiates_the_protocol(server, client):
    params = [("command", "sh"), ("command", "-c"), ("command", "echo hi"), ("stdout", "true")]
    ws = await client.websocket(
        PODS, "web", "default", "exec", params, ["v5.channel.k8s.io", "v4.channel.k8s.io"]
    )
    try:
        assert ws.protocol == "v5.channel.k8s.io"
        await ws.send_bytes(b"\x00hello")
        msg = await ws.receive()
        assert msg.type == aiohttp.WSMsgType.BINARY
        assert msg.data == b"\x01hello"
    finally:
        await ws.close()
    assert server.queries[-1] == params
    assert server.headers[-1]["Authorization"] == "Bearer t0ken"


async def test_refused_websocket_handshake_carries_the_servers_status(server, client):
    server.errors[POD + "/exec"] = (
        404,
        {"kind": "Status", "reason": "NotFound", "message": 'pods "web" not found'},
    )
    with pytest.raises(NotFound, match='exec pods default/web: pods "web" not found'):
        await client.websocket(PODS, "web", "default", "exec", [("command", "ls")], [])
