"""kosmos.kube.execute.run against a small fake apiserver speaking the channel protocol."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from aiohttp import web

from kosmos.kube import execute
from kosmos.kube.client import Client
from kosmos.kube.config import ClusterConfig
from kosmos.kube.errors import NotFound

SUCCESS = {"metadata": {}, "status": "Success"}


def exit_failure(code: str) -> dict[str, Any]:
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: exit status {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code}]},
    }


NOT_STARTED = {
    "metadata": {},
    "status": "Failure",
    "message": 'exec: "curl": executable file not found in $PATH',
    "reason": "InternalError",
}


class FakeApiserver:
    """pods/exec: what each pod does is chosen by its name; every request is recorded."""

    def __init__(self, protocols: tuple[str, ...] = execute.PROTOCOLS) -> None:
        self.protocols = protocols
        self.queries: list[list[tuple[str, str]]] = []
        self.chosen: list[str | None] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/api/v1/namespaces/{ns}/pods/{name}/exec", self.exec)
        self.runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}"

    async def stop(self) -> None:
        assert self.runner is not None
        await self.runner.cleanup()

    async def exec(self, request: web.Request) -> web.StreamResponse:
        self.queries.append(list(request.query.items()))
        name = request.match_info["name"]
        if name == "ghost":
            status = {"kind": "Status", "code": 404, "message": 'pods "ghost" not found'}
            return web.json_response(status, status=404)
        if name == "slow-handshake":
            await asyncio.sleep(30)
        ws = web.WebSocketResponse(protocols=self.protocols)
        await ws.prepare(request)
        self.chosen.append(ws.ws_protocol)
        for channel in (1, 2, 3):  # the server announces its channels with empty frames
            await ws.send_bytes(bytes([channel]))
        await getattr(self, "pod_" + name.replace("-", "_"))(ws)
        await ws.close()
        return ws

    async def pod_ok(self, ws: web.WebSocketResponse) -> None:
        text = "héllo\n".encode()
        await ws.send_bytes(b"\x01" + text[:2])  # a frame boundary inside a UTF-8 character
        await ws.send_bytes(b"\x01" + text[2:])
        await ws.send_bytes(b"\x02warn\n")
        await ws.send_bytes(b"\x03" + json.dumps(SUCCESS).encode())

    async def pod_exit3(self, ws: web.WebSocketResponse) -> None:
        await ws.send_bytes(b"\x02curl: (7) Failed to connect\n")
        await ws.send_bytes(b"\x03" + json.dumps(exit_failure("3")).encode())

    async def pod_missing_binary(self, ws: web.WebSocketResponse) -> None:
        await ws.send_bytes(b"\x03" + json.dumps(NOT_STARTED).encode())

    async def pod_no_status(self, ws: web.WebSocketResponse) -> None:
        await ws.send_bytes(b"\x01partial")

    async def pod_hang(self, ws: web.WebSocketResponse) -> None:
        await ws.send_bytes(b"\x01started\n")
        await asyncio.sleep(30)


@pytest.fixture
async def apiserver():
    fake = FakeApiserver()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def client(apiserver):
    c = Client(ClusterConfig(name="member1", server=apiserver.url, qps=1000, burst=1000))
    yield c
    await c.close()


async def test_success_collects_both_streams_and_sends_argv_words(apiserver, client):
    result = await execute.run(
        client, "ns", "ok", ["curl", "-sS", "http://[fd00::1]:8889/"], container="floater"
    )
    assert result == execute.ExecResult("héllo\n", "warn\n", 0, None)
    assert result.ok
    assert apiserver.queries == [
        [
            ("stdout", "true"),
            ("stderr", "true"),
            ("stdin", "false"),
            ("tty", "false"),
            ("container", "floater"),
            ("command", "curl"),
            ("command", "-sS"),
            ("command", "http://[fd00::1]:8889/"),
        ]
    ]
    assert apiserver.chosen == ["v5.channel.k8s.io"]


async def test_no_container_param_when_not_given(apiserver, client):
    await execute.run(client, "ns", "ok", ["true"])
    assert "container" not in dict(apiserver.queries[0])


async def test_v4_only_server():
    fake = FakeApiserver(protocols=("v4.channel.k8s.io",))
    await fake.start()
    c = Client(ClusterConfig(name="member1", server=fake.url))
    try:
        result = await execute.run(c, "ns", "exit3", ["curl"])
    finally:
        await c.close()
        await fake.stop()
    assert fake.chosen == ["v4.channel.k8s.io"]
    assert result.exit_code == 3


async def test_non_zero_exit_code_and_message(client):
    result = await execute.run(client, "ns", "exit3", ["curl"])
    assert result.exit_code == 3
    assert not result.ok
    assert result.stderr == "curl: (7) Failed to connect\n"
    assert result.error == "command terminated with non-zero exit code: exit status 3"


async def test_failure_without_exit_code(client):
    result = await execute.run(client, "ns", "missing-binary", ["curl"])
    assert result.exit_code is None
    assert result.error == 'exec: "curl": executable file not found in $PATH'


async def test_stream_ending_without_status(client):
    result = await execute.run(client, "ns", "no-status", ["true"])
    assert (result.stdout, result.exit_code) == ("partial", None)
    assert result.error == "the stream ended without an exit status"


async def test_timeout_returns_output_so_far_promptly(client):
    started = time.monotonic()
    result = await execute.run(client, "ns", "hang", ["sleep", "60"], timeout=0.3)
    assert time.monotonic() - started < 2.0
    assert result == execute.ExecResult("started\n", "", None, "timed out after 0.3 s")


async def test_timeout_covers_the_handshake(client):
    started = time.monotonic()
    result = await execute.run(client, "ns", "slow-handshake", ["true"], timeout=0.3)
    assert time.monotonic() - started < 2.0
    assert (result.exit_code, result.error) == (None, "timed out after 0.3 s")


async def test_refused_handshake_raises_the_typed_error(client):
    with pytest.raises(NotFound, match='pods "ghost" not found'):
        await execute.run(client, "ns", "ghost", ["true"])


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (SUCCESS, (0, None)),
        (exit_failure("127"), (127, exit_failure("127")["message"])),
        (exit_failure("x"), (None, exit_failure("x")["message"])),
        ({"status": "Failure", "reason": "NonZeroExitCode"}, (None, "NonZeroExitCode")),
        ({"status": "Failure"}, (None, "exec failed")),
    ],
)
def test_exit_status(status, expected):
    assert execute.exit_status(status) == expected
