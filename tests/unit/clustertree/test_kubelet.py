"""KubeletServer over TLS against a small fake member apiserver (logs, exec, port-forward)."""

from __future__ import annotations

import asyncio
import datetime
import socket
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from multidict import MultiDict

from kosmos.clustertree.kubelet import KubeletServer, Target
from kosmos.clustertree.kubeletparams import Refusal, log_params, port_params, stream_params
from kosmos.kube.client import Client
from kosmos.kube.config import ClusterConfig
from kosmos.kube.metrics import REGISTRY
from kosmos.kube.tls import server_ssl_context, serving_certificate

V5 = "v5.channel.k8s.io"
SUCCESS = b'\x03{"metadata":{},"status":"Success"}'


class FakeMember:
    """The member apiserver's pods/log (chunked) and pods/exec|attach|portforward (WebSocket)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[tuple[str, str]]]] = []
        self.follow_ended = asyncio.Event()
        self.close_codes: list[int | None] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        base = "/api/v1/namespaces/{ns}/pods/{name}"
        app.router.add_get(base + "/log", self.log)
        app.router.add_get(base + "/{sub:exec|attach|portforward}", self.stream)
        self.runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}"

    async def stop(self) -> None:
        assert self.runner is not None
        await self.runner.cleanup()

    def record(self, request: web.Request) -> web.Response | None:
        self.calls.append((request.path, list(request.query.items())))
        if request.match_info["name"] == "ghost":
            status = {"kind": "Status", "code": 404, "message": 'pods "ghost" not found'}
            return web.json_response(status, status=404)
        return None

    async def log(self, request: web.Request) -> web.StreamResponse:
        if refused := self.record(request):
            return refused
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        await response.write(b"line 1\nline 2\n")
        if request.query.get("follow") != "true":
            return response
        for _ in range(2):
            await asyncio.sleep(0.02)
            await response.write(b"tick\n")
        # Then a quiet log: only closing the upstream connection can tell us the client left.
        while request.transport is not None and not request.transport.is_closing():
            await asyncio.sleep(0.01)
        self.follow_ended.set()
        return response

    async def stream(self, request: web.Request) -> web.StreamResponse:
        if refused := self.record(request):
            return refused
        ws = web.WebSocketResponse(protocols=(V5, "SPDY/3.1+portforward.k8s.io"))
        await ws.prepare(request)
        if request.match_info["sub"] == "portforward":
            await ws.send_bytes(b"tunnel-ok")
        else:
            await ws.send_bytes(b"\x01" + " ".join(request.query.getall("command", [])).encode())
        async for msg in ws:
            await ws.send_bytes(b"\x01" + msg.data[1:])
            await ws.send_bytes(SUCCESS)
            await ws.close(code=1000, message=b"done")
        self.close_codes.append(ws.close_code)
        return ws


@pytest.fixture
async def member():
    fake = FakeMember()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture(scope="module")
def cert() -> tuple[bytes, bytes]:
    return serving_certificate(["127.0.0.1", "localhost"])


@pytest.fixture
async def clients(member):
    """member1 (the fake member) and member2 (nothing listens there)."""
    client = Client(ClusterConfig(name="member1", server=member.url))
    unreachable = Client(ClusterConfig(name="member2", server="http://127.0.0.1:1"))
    yield client, unreachable
    await client.close()
    await unreachable.close()


def make_server(clients: tuple[Client, Client], context: ssl.SSLContext) -> KubeletServer:
    client, unreachable = clients

    async def resolve(namespace: str, name: str) -> Target | None:
        if (namespace, name) == ("default", "web"):
            return Target(client, "member-ns", "web-x1")
        if (namespace, name) == ("default", "ghost"):
            return Target(client, "member-ns", "ghost")
        if (namespace, name) == ("default", "down"):
            return Target(unreachable, "member-ns", "down")
        return None

    return KubeletServer(resolve, host="127.0.0.1", port=0, ssl_context=context)


@pytest.fixture
async def kubelet(clients, cert):
    server = make_server(clients, server_ssl_context(*cert))
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def http(cert):
    trust = ssl.create_default_context(cadata=cert[0].decode())
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trust)) as session:
        yield session


def url(server: KubeletServer, path: str) -> str:
    return f"https://127.0.0.1:{server.port}{path}"


def counted(route: str, code: str) -> float:
    labels = {"route": route, "code": code}
    return REGISTRY.get_sample_value("kosmos_kubelet_requests_total", labels) or 0.0


async def test_healthz_unknown_routes_and_request_counter(kubelet, http):
    before = counted("other", "404")
    async with http.get(url(kubelet, "/healthz")) as response:
        assert (response.status, await response.text()) == (200, "ok")
    for path in ("/configz", "/containerLogs/default/web", "/stats"):
        async with http.get(url(kubelet, path)) as response:
            assert (response.status, await response.text()) == (404, "404 page not found")
    assert counted("other", "404") == before + 3
    assert kubelet.port > 0
    async with http.get(url(kubelet, "/pods")) as response:  # no read API: no leaf here
        assert (response.status, await response.text()) == (
            404,
            "no leaf node is served on this port",
        )


class FakeReader:
    """Leaf ``leaf-a`` on the server's first port, ``leaf-b`` on the port opened later."""

    def __init__(self) -> None:
        self.ports: dict[int, str] = {}

    def leaf_of(self, port: int) -> str | None:
        return self.ports.get(port)

    def pods(self, leaf: str) -> dict:
        return {"kind": "PodList", "items": [{"metadata": {"name": f"on-{leaf}"}}]}

    async def summary(self, leaf: str) -> dict | None:
        return None if leaf == "leaf-b" else {"node": {"nodeName": leaf}, "pods": []}

    async def resource_metrics(self, leaf: str) -> str | None:
        return f"scrape_error 0\n# {leaf}\n"


async def test_the_read_api_answers_for_the_leaf_of_the_port(clients, cert, http):
    reader = FakeReader()
    server = KubeletServer(
        make_server(clients, server_ssl_context(*cert))._resolve,
        host="127.0.0.1",
        port=0,
        ssl_context=server_ssl_context(*cert),
        reader=reader,
    )
    await server.start()
    try:
        reader.ports[server.port] = "leaf-a"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            second = probe.getsockname()[1]
        await server.listen(second)
        reader.ports[second] = "leaf-b"
        async with http.get(url(server, "/pods")) as response:
            assert (await response.json())["items"][0]["metadata"]["name"] == "on-leaf-a"
        async with http.get(f"https://127.0.0.1:{second}/pods") as response:
            assert (await response.json())["items"][0]["metadata"]["name"] == "on-leaf-b"
        async with http.get(url(server, "/stats/summary")) as response:
            assert (await response.json())["node"]["nodeName"] == "leaf-a"
        async with http.get(f"https://127.0.0.1:{second}/stats/summary") as response:
            assert response.status == 503
        async with http.get(url(server, "/metrics/resource")) as response:
            assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            assert await response.text() == "scrape_error 0\n# leaf-a\n"
    finally:
        await server.stop()


async def test_logs_translate_kubelet_params_and_map_the_pod(kubelet, member, http):
    query = "tailLines=5&limitBytes=100&sinceSeconds=10&timestamps=true&previous=false"
    async with http.get(url(kubelet, f"/containerLogs/default/web/app?{query}")) as response:
        assert response.status == 200
        assert await response.read() == b"line 1\nline 2\n"
    path, params = member.calls[-1]
    assert path == "/api/v1/namespaces/member-ns/pods/web-x1/log"
    assert dict(params) == {
        "container": "app",
        "tailLines": "5",
        "limitBytes": "100",
        "sinceSeconds": "10",
        "timestamps": "true",
    }


async def test_follow_streams_and_stops_the_member_stream_when_the_client_leaves(
    kubelet, member, http
):
    response = await http.get(url(kubelet, "/containerLogs/default/web/app?follow=true"))
    received = b""
    while received.count(b"tick") < 2:
        received += await response.content.readany()
    assert received.startswith(b"line 1\nline 2\n")
    assert dict(member.calls[-1][1])["follow"] == "true"
    response.close()
    await asyncio.wait_for(member.follow_ended.wait(), 5)


@pytest.mark.parametrize(
    ("query", "status", "text"),
    [
        ("tailLines=abc", 400, "tailLines"),
        ("sinceTime=yesterday", 400, "sinceTime"),
        ("sinceSeconds=5&sinceTime=2024-01-02T03:04:05Z", 422, "at most one of"),
        ("tailLines=-1", 422, "tailLines"),
        ("limitBytes=0", 422, "limitBytes"),
    ],
)
async def test_log_query_is_validated_like_the_kubelet(kubelet, member, http, query, status, text):
    async with http.get(url(kubelet, f"/containerLogs/default/web/app?{query}")) as response:
        assert response.status == status
        assert text in await response.text()
    assert member.calls == []


def test_log_params_decode_like_apimachinery():
    query = MultiDict(
        [("tail", "7"), ("follow", "1"), ("timestamps", "FALSE"), ("follow", "false")]
    )
    assert log_params(query, "c") == {"container": "c", "tailLines": 7, "follow": True}
    assert "tailLines" not in log_params(MultiDict(tail="all", tailLines="3"), "c")
    since = log_params(MultiDict(sinceTime="2024-01-02T03:04:05.5+02:00", stream="All"), "c")
    assert since == {"container": "c", "sinceTime": "2024-01-02T03:04:05.5+02:00"}
    assert log_params(MultiDict(stream="Stderr"), "c")["stream"] == "Stderr"


async def test_unknown_pod_is_404_and_member_errors_keep_status_and_message(kubelet, http):
    async with http.get(url(kubelet, "/containerLogs/default/nope/app")) as response:
        assert (response.status, await response.text()) == (404, 'pod "nope" does not exist')
    async with http.get(url(kubelet, "/containerLogs/default/ghost/app")) as response:
        assert response.status == 404
        assert (await response.text()).startswith("cluster member1: log pods member-ns/ghost")
    async with http.ws_connect(url(kubelet, "/exec/default/web/app?command=ls&output=1")) as ws:
        await ws.close()
    for pod in ("nope", "ghost"):
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await http.ws_connect(url(kubelet, f"/exec/default/{pod}/app?command=ls&output=1"))
        assert info.value.status == 404


@pytest.mark.parametrize("path", ["/exec/default/web/app", "/exec/default/web/uid-1/app"])
async def test_exec_websocket_round_trip(kubelet, member, http, path):
    before = counted("exec", "101")
    query = "command=sh&command=-c&command=echo+a%2Bb&input=1&output=1&error=1"
    async with http.ws_connect(
        url(kubelet, f"{path}?{query}"), protocols=[V5, "v4.channel.k8s.io"]
    ) as ws:
        assert ws.protocol == V5
        assert (await ws.receive()).data == b"\x01sh -c echo a+b"
        await ws.send_bytes(b"\x00hello")
        assert (await ws.receive()).data == b"\x01hello"
        assert (await ws.receive()).data == SUCCESS
        closing = await ws.receive()
        assert closing.type is aiohttp.WSMsgType.CLOSE
        assert (closing.data, closing.extra) == (1000, "done")
    path, params = member.calls[-1]
    assert path == "/api/v1/namespaces/member-ns/pods/web-x1/exec"
    assert params == [
        ("container", "app"),
        ("stdin", "true"),
        ("stdout", "true"),
        ("stderr", "true"),
        ("command", "sh"),
        ("command", "-c"),
        ("command", "echo a+b"),
    ]
    for _ in range(100):  # counted when the server's handler returns, just after the close
        if counted("exec", "101") == before + 1:
            break
        await asyncio.sleep(0.01)
    assert counted("exec", "101") == before + 1


async def test_attach_and_port_forward_translate_their_params(kubelet, member, http):
    async with http.ws_connect(
        url(kubelet, "/attach/default/web/app?output=1&tty=1&error=1")
    ) as ws:
        await ws.receive()
    assert member.calls[-1] == (
        "/api/v1/namespaces/member-ns/pods/web-x1/attach",
        [("container", "app"), ("stdout", "true"), ("tty", "true")],
    )
    async with http.ws_connect(url(kubelet, "/portForward/default/web?port=80,8080")) as ws:
        assert (await ws.receive()).data == b"tunnel-ok"
    assert member.calls[-1][1] == [("ports", "80"), ("ports", "8080")]
    tunnel = ["SPDY/3.1+portforward.k8s.io"]
    async with http.ws_connect(url(kubelet, "/portForward/default/web/u1"), protocols=tunnel) as ws:
        assert ws.protocol == tunnel[0]
    assert member.calls[-1] == ("/api/v1/namespaces/member-ns/pods/web-x1/portforward", [])


def test_stream_and_port_params_follow_the_kubelet():
    assert stream_params(MultiDict(input="1", tty="1", error="1")) == [
        ("stdin", "true"),
        ("tty", "true"),
    ]
    for bad in (MultiDict(), MultiDict(output="true")):
        with pytest.raises(Refusal, match="at least 1 of stdin, stdout, stderr"):
            stream_params(bad)
    assert port_params(MultiDict([("port", "1"), ("port", "2,3")])) == [
        ("ports", "1"),
        ("ports", "2"),
        ("ports", "3"),
    ]
    for bad, message in (("", "cannot be empty"), ("x", "unable to parse"), ("0", "> 0")):
        with pytest.raises(Refusal, match=message):
            port_params(MultiDict(port=bad))
    with pytest.raises(Refusal, match="is required"):
        port_params(MultiDict())


async def _spdy_upgrade(kubelet, cert, path: str, version: str) -> tuple[bytes, Any, Any]:
    """A raw SPDY upgrade as the apiserver's proxy sends it: the answer head and the stream."""
    trust = ssl.create_default_context(cadata=cert[0].decode())
    reader, writer = await asyncio.open_connection("127.0.0.1", kubelet.port, ssl=trust)
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: leaf\r\nConnection: Upgrade\r\n"
        f"Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: {version}\r\n"
        "Content-Length: 0\r\n\r\n".encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    return head, reader, writer


async def test_spdy_port_forward_is_relayed_as_bytes_into_the_members_tunnel(kubelet, member, cert):
    path = "/portForward/default/web?port=8080"
    head, reader, writer = await _spdy_upgrade(kubelet, cert, path, "portforward.k8s.io")
    assert head.startswith(b"HTTP/1.1 101 ")
    lines = {line.lower() for line in head.decode().split("\r\n")}
    assert {"upgrade: spdy/3.1", "x-stream-protocol-version: portforward.k8s.io"} <= lines
    assert await reader.readexactly(len(b"tunnel-ok")) == b"tunnel-ok"
    writer.write(b"Xspdy-bytes")
    assert await reader.readexactly(len(b"\x01spdy-bytes")) == b"\x01spdy-bytes"
    assert await reader.readexactly(len(SUCCESS)) == SUCCESS
    assert await reader.read() == b""  # the member closed: so does the client's connection
    writer.close()
    assert member.calls[-1] == ("/api/v1/namespaces/member-ns/pods/web-x1/portforward", [])


async def test_spdy_port_forward_needs_the_port_forward_stream_protocol(kubelet, member, cert):
    head, _, writer = await _spdy_upgrade(kubelet, cert, "/portForward/default/web", V5)
    writer.close()
    assert head.startswith(b"HTTP/1.1 403 ")
    assert member.calls == []


async def test_spdy_and_plain_requests_are_refused_with_a_reason(kubelet, member, http):
    spdy = {"Connection": "Upgrade", "Upgrade": "SPDY/3.1", "X-Stream-Protocol-Version": V5}
    path = "/exec/default/web/app?command=ls&output=1"
    async with http.post(url(kubelet, path), headers=spdy) as response:
        assert response.status == 400
        assert "SPDY exec/attach is not supported" in await response.text()
    async with http.get(url(kubelet, "/portForward/default/web?port=80")) as response:
        assert (response.status, await response.text()) == (400, "Upgrade request required")
    assert member.calls == []


def certificate_authority(tmp: Path) -> tuple[Path, Path, Path]:
    """A CA file and a client cert/key pair signed by it (like --kubelet-client-certificate)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-ca")])
    client_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")])

    def build(subject, public, ca: bool) -> x509.Certificate:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256())
        )

    pem = serialization.Encoding.PEM
    paths = tmp / "ca.pem", tmp / "client.pem", tmp / "client-key.pem"
    paths[0].write_bytes(build(ca_name, ca_key.public_key(), True).public_bytes(pem))
    paths[1].write_bytes(build(client_name, key.public_key(), False).public_bytes(pem))
    paths[2].write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


@pytest.mark.parametrize("ca_as", ["path", "pem"])
async def test_client_certificate_required_when_a_ca_is_configured(clients, cert, tmp_path, ca_as):
    ca, client_cert, client_key = certificate_authority(tmp_path)
    client_ca = str(ca) if ca_as == "path" else ca.read_bytes()
    server = make_server(clients, server_ssl_context(*cert, client_ca=client_ca))
    await server.start()
    try:
        anonymous = ssl.create_default_context(cadata=cert[0].decode())
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.ClientError):
                async with session.get(url(server, "/healthz"), ssl=anonymous) as response:
                    await response.read()
            authenticated = ssl.create_default_context(cadata=cert[0].decode())
            authenticated.load_cert_chain(client_cert, client_key)
            async with session.get(url(server, "/healthz"), ssl=authenticated) as response:
                assert (response.status, await response.text()) == (200, "ok")
    finally:
        await server.stop()


async def test_client_close_reaches_the_member_and_unreachable_members_are_502(
    kubelet, member, http
):
    async with http.ws_connect(url(kubelet, "/exec/default/web/app?command=sh&input=1")) as ws:
        await ws.receive()
        await ws.close(code=4000, message=b"bye")
    for _ in range(100):
        if member.close_codes:
            break
        await asyncio.sleep(0.01)
    assert member.close_codes == [4000]
    async with http.get(url(kubelet, "/containerLogs/default/down/app")) as response:
        assert response.status == 502
        assert "cluster member2: log pods member-ns/down: cannot reach" in await response.text()
