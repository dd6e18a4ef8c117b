"""The leaf node's "kubelet" endpoint: ``kubectl logs/exec/attach/port-forward`` into members.

The host kube-apiserver calls ``https://<InternalIP>:<kubeletEndpoint>`` with the kubelet's
URL forms (``pkg/registry/core/pod/strategy.go``, v1.36): ``GET /containerLogs/{ns}/{pod}/
{container}?follow=true&tailLines=..``; ``/exec/{ns}/{pod}/{container}?command=..&command=..
&input=1&output=1&error=1&tty=1``; ``/attach/..`` (same flags); ``/portForward/{ns}/{pod}
?port=80,8080``. The kubelet also serves a ``{uid}`` segment before the container (or after
the pod for portForward); the apiserver never sends it and we ignore it (the host pod's UID
is not the member pod's).

Leaf nodes declare the ``ExtendWebSocketsToKubelet`` node feature, so the apiserver forwards
the client's WebSocket upgrade as is instead of translating it to SPDY. We open a WebSocket
on the member's ``pods/exec|attach|portforward`` offering the same subprotocols
(``v5.channel.k8s.io``, ``v4.channel.k8s.io``, ``SPDY/3.1+portforward.k8s.io`` tunnelling,
...) and pipe frames both ways untouched: the member apiserver speaks them all. An SPDY
port-forward (kubectl's fallback, or an apiserver that does not extend WebSockets) is
relayed as raw bytes into the member's tunnelling WebSocket (``spdytunnel``); SPDY
exec/attach are refused with a 400 that says why.

Logs are validated like the kubelet (undecodable query: 400, invalid options: 422) and
streamed from the member's ``pods/log`` with backpressure, closed when the client leaves.

The read API (``/pods``, ``/stats/summary``, ``/metrics/resource``) is per leaf node: every
leaf has a port of its own (``leafports``), so the port a request came in on names the leaf;
the answers come from a ``ReadApi`` (``leafread``, over the member nodes' kubelets).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial

import aiohttp
from aiohttp import web
from prometheus_client import Counter

from kosmos.api.resources import PODS
from kosmos.clustertree import spdytunnel
from kosmos.clustertree.kubeletparams import Refusal, log_params, port_params, stream_params
from kosmos.clustertree.kubeletread import ReadApi, add_read_routes
from kosmos.kube.client import Client
from kosmos.kube.errors import ApiError, ConnectError, KubeError
from kosmos.kube.metrics import REGISTRY

log = logging.getLogger("kosmos.clustertree.kubelet")


@dataclass(frozen=True)
class Target:
    """Where a host pod really runs: the member's client and the member pod's coordinates."""

    client: Client
    namespace: str
    name: str


Resolve = Callable[[str, str], Awaitable[Target | None]]


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

requests_total = Counter(
    "kosmos_kubelet_requests_total",
    "Requests to the leaf nodes' kubelet endpoint, by route and HTTP code (101: WebSocket).",
    ["route", "code"],
    registry=REGISTRY,
)

_ROUTES = frozenset(
    {"containerLogs", "exec", "attach", "portForward", "healthz", "pods", "stats", "metrics"}
)
_COMMITTED = web.RequestKey("kosmos_committed_status", int)
_CLIENT_GONE = 499  # nginx's "client closed request": counted when nothing was answered
_SPDY_REFUSAL = (
    "SPDY exec/attach is not supported by kosmos leaf nodes: use WebSocket. Leaf nodes "
    "declare the ExtendWebSocketsToKubelet node feature, so a kube-apiserver with the "
    "ExtendWebSocketsToKubelet and NodeDeclaredFeatures gates on (default since v1.36) "
    "forwards kubectl's WebSocket exec/attach here as is; an SPDY request comes from an "
    "older client or an apiserver with those gates off."
)


def _text(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message, content_type="text/plain")


def _route_of(request: web.Request) -> str:
    if request.match_info.route.name == "unknown":
        return "other"
    first = request.path.split("/")[1]
    return first if first in _ROUTES else "other"


@web.middleware
async def _count_and_map(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count every request by route and code; turn refusals and member errors into answers.

    Member API errors keep their status and message (``cluster <name>: ...``), so the host
    apiserver shows the member's reason; an unreachable member is a 502.
    """
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except Refusal as exc:
        status = exc.status
        return _text(status, exc.message)
    except web.HTTPException as exc:
        status = exc.status
        raise
    except ApiError as exc:
        status = exc.code if 400 <= exc.code < 600 else 500
        return _text(status, str(exc))
    except ConnectError as exc:
        status = 502
        return _text(status, str(exc))
    except KubeError as exc:
        return _text(status, str(exc))
    except asyncio.CancelledError:
        status = request.get(_COMMITTED, _CLIENT_GONE)
        raise
    finally:
        requests_total.labels(_route_of(request), str(status)).inc()


# -- containerLogs ------------------------------------------------------------------------


async def _relay(request: web.Request, upstream: aiohttp.ClientResponse) -> web.StreamResponse:
    """Pass the member's log bytes through as they come; awaiting each write is the
    backpressure (a slow reader slows the member read, nothing piles up here)."""
    content_type = upstream.headers.get("Content-Type", "text/plain")
    response = web.StreamResponse(headers={"Content-Type": content_type})
    try:
        await response.prepare(request)
        request[_COMMITTED] = response.status
        async for chunk in upstream.content.iter_any():
            await response.write(chunk)
        await response.write_eof()
    except (TimeoutError, aiohttp.ClientError, ConnectionError):
        pass  # member stream broke or client left: nothing more can be said on this response
    finally:
        if upstream.content.at_eof():
            upstream.release()
        else:
            upstream.close()
    return response


# -- exec / attach / portForward ----------------------------------------------------------


def _require_websocket(request: web.Request) -> None:
    upgrade = request.headers.get("Upgrade", "")
    if upgrade.lower().startswith("spdy"):
        raise Refusal(400, _SPDY_REFUSAL)
    if upgrade.lower() != "websocket":
        raise Refusal(400, "Upgrade request required")
    if not web.WebSocketResponse(protocols=_offered(request)).can_prepare(request).ok:
        raise Refusal(400, "invalid WebSocket upgrade request (GET with Sec-WebSocket-Key)")


def _offered(request: web.Request) -> list[str]:
    header = request.headers.get("Sec-WebSocket-Protocol", "")
    return [p.strip() for p in header.split(",") if p.strip()]


def _close_code(code: int | None) -> int:
    """A code that may be sent on the other leg: 1005 (none given) and 1006 become 1000,
    1015 (TLS) and other reserved codes 1011.

    A member apiserver ends a finished exec by dropping the connection right after the
    status frame on channel 3 (the client sees 1006); that status, not the close code, says
    how the command ended, so the client must get a normal close to read it."""
    if code is None or code in (1005, 1006):
        return 1000
    sendable = 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999
    return code if sendable else 1011


Socket = web.WebSocketResponse | aiohttp.ClientWebSocketResponse


async def _copy(src: Socket, dst: Socket) -> tuple[int, str]:
    """Forward data frames until ``src`` closes; its close code and reason."""
    reason = ""
    while True:
        msg = await src.receive()
        try:
            if msg.type is aiohttp.WSMsgType.BINARY:
                await dst.send_bytes(msg.data)
                continue
            if msg.type is aiohttp.WSMsgType.TEXT:
                await dst.send_str(msg.data)
                continue
        except (ConnectionError, aiohttp.ClientError, RuntimeError):
            break
        if msg.type is aiohttp.WSMsgType.CLOSE:
            reason = msg.extra or ""
        break
    return _close_code(src.close_code), reason


async def _splice(client: web.WebSocketResponse, member: aiohttp.ClientWebSocketResponse) -> None:
    """Pipe both ways; when one side closes, close the other with the same code."""
    down = asyncio.create_task(_copy(member, client))
    up = asyncio.create_task(_copy(client, member))
    try:
        done, _ = await asyncio.wait({down, up}, return_when=asyncio.FIRST_COMPLETED)
        code, reason = done.pop().result()
        for ws in (client, member):
            with contextlib.suppress(ConnectionError, aiohttp.ClientError, RuntimeError):
                await ws.close(code=code, message=reason.encode()[:123])
        await asyncio.wait({down, up}, timeout=5)
    finally:
        down.cancel()
        up.cancel()


# -- server -------------------------------------------------------------------------------


class KubeletServer:
    """HTTPS server answering the host apiserver's kubelet calls for pods of leaf nodes.

    ``resolve(namespace, name)`` maps a host pod to its member pod (``None``: not ours, 404).
    ``ssl_context`` comes from ``kosmos.kube.tls.server_ssl_context`` (``None`` serves plain
    HTTP, for tests only: the apiserver calls kubelets over HTTPS).
    """

    def __init__(
        self,
        resolve: Resolve,
        *,
        host: str = "0.0.0.0",
        port: int = 10250,
        ssl_context: ssl.SSLContext | None,
        reader: ReadApi | None = None,
        middlewares: tuple[Callable[..., Awaitable[web.StreamResponse]], ...] = (),
    ) -> None:
        self._resolve = resolve
        self.host = host
        self._port = port
        self._ssl = ssl_context
        self._reader = reader
        self._middlewares = middlewares
        self._runner: web.AppRunner | None = None
        self._ports: set[int] = set()

    def use_tls(self, context: ssl.SSLContext) -> None:
        """The TLS context to serve with, when it is known only at start-up (before ``start``)."""
        self._ssl = context

    @property
    def port(self) -> int:
        """The bound port (the ephemeral one once started with port 0)."""
        return self._port

    def app(self) -> web.Application:
        app = web.Application(middlewares=[_count_and_map, *self._middlewares])
        router = app.router
        router.add_get("/healthz", self._healthz)
        add_read_routes(router, self._reader)
        router.add_get("/containerLogs/{namespace}/{pod}/{container}", self._logs)
        streams: list[tuple[str, Handler]] = []
        for uid in ("", "/{uid}"):  # the kubelet's optional pod UID segment
            streams.append((f"/portForward/{{namespace}}/{{pod}}{uid}", self._port_forward))
            for verb in ("exec", "attach"):
                command = partial(self._remotecommand, verb)
                streams.append((f"/{verb}/{{namespace}}/{{pod}}{uid}/{{container}}", command))
        for (path, handler), method in itertools.product(streams, ("GET", "POST")):
            router.add_route(method, path, handler)
        router.add_route("*", "/{tail:.*}", self._unknown, name="unknown")
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(
            self.app(), access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self._port, ssl_context=self._ssl)
        await site.start()
        if self._port == 0:
            self._port = int(self._runner.addresses[0][1])
        self._ports.add(self._port)

    async def listen(self, port: int) -> None:
        """Serve on one more port too (a leaf node's own); idempotent."""
        if self._runner is None or port in self._ports:
            return
        site = web.TCPSite(self._runner, self.host, port, ssl_context=self._ssl)
        try:
            await site.start()
        except OSError as exc:  # the leaf's read API stays unreachable; retried next sync
            log.error("kubelet endpoint cannot listen on %s:%d: %s", self.host, port, exc)
            return
        self._ports.add(port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self._ports.clear()

    async def _target(self, namespace: str, pod: str, missing: str) -> Target:
        target = await self._resolve(namespace, pod)
        if target is None:
            raise Refusal(404, missing)
        return target

    async def _healthz(self, _: web.Request) -> web.Response:
        return _text(200, "ok")

    async def _unknown(self, _: web.Request) -> web.Response:
        return _text(404, "404 page not found")

    async def _logs(self, request: web.Request) -> web.StreamResponse:
        info = request.match_info
        params = log_params(request.query, info["container"])
        missing = f'pod "{info["pod"]}" does not exist'  # the kubelet's words
        target = await self._target(info["namespace"], info["pod"], missing)
        upstream = await target.client.stream(PODS, target.name, target.namespace, "log", params)
        return await _relay(request, upstream)

    async def _remotecommand(self, verb: str, request: web.Request) -> web.StreamResponse:
        _require_websocket(request)
        info = request.match_info
        params = [("container", info["container"]), *stream_params(request.query)]
        if verb == "exec":
            params += [("command", c) for c in request.query.getall("command", [])]
        target = await self._target(info["namespace"], info["pod"], "pod does not exist")
        return await self._pipe(request, target, verb, params)

    async def _port_forward(self, request: web.Request) -> web.StreamResponse:
        info = request.match_info
        if spdytunnel.is_spdy_upgrade(request):
            protocol = spdytunnel.negotiate(request)
            target = await self._target(info["namespace"], info["pod"], "pod does not exist")
            member = await target.client.websocket(
                PODS, target.name, target.namespace, "portforward", [], [spdytunnel.TUNNEL]
            )
            request[_COMMITTED] = 101
            return await spdytunnel.relay(request, protocol, member)
        _require_websocket(request)
        tunnel = spdytunnel.TUNNEL in _offered(request)
        params = [] if tunnel else port_params(request.query)
        target = await self._target(info["namespace"], info["pod"], "pod does not exist")
        return await self._pipe(request, target, "portforward", params)

    async def _pipe(
        self, request: web.Request, target: Target, subresource: str, params: list[tuple[str, str]]
    ) -> web.StreamResponse:
        """Open the member's WebSocket first (its refusal becomes our answer), then accept
        the client's upgrade with the subprotocol the member chose."""
        member = await target.client.websocket(
            PODS, target.name, target.namespace, subresource, params, _offered(request)
        )
        try:
            chosen = member.protocol
            client = web.WebSocketResponse(protocols=(chosen,) if chosen else (), max_msg_size=0)
            await client.prepare(request)
            request[_COMMITTED] = client.status
            await _splice(client, member)
        finally:
            await member.close()
        return client
