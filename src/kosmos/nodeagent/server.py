"""The node-agent's HTTPS server: the three operations of :mod:`kosmos.api.nodeagent`.

Whoever reaches the agent can re-point the node's kubelet, so every request passes two
checks: the TLS handshake requires a client certificate signed by the agents' CA
(:func:`kosmos.kube.tls.server_ssl_context` with ``client_ca``), and the request carries the
``kosmos-node-agent`` Secret's bearer token, compared in constant time. Either alone is not
enough: a leaked operator certificate without the token, or the token without a
certificate, gets nothing. Only ``GET /healthz`` (a liveness probe that reveals nothing) is
answered without the token; it still needs the certificate. ``GET /metrics`` (requests by
operation and code) takes both checks, like the operations.

The backend's calls block (they restart processes), so they run in a worker thread, one at
a time: two operators (or a retry racing the first try) must not interleave a join and a
leave on one node. Every failure becomes a JSON ``{"error": ...}`` answer; nothing a client
sends stops the server.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import signal
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest

from kosmos.api import nodeagent as api
from kosmos.kube import tls
from kosmos.kube.metrics import REGISTRY

log = logging.getLogger("kosmos.nodeagent")

#: a join body is a few certificates; anything much larger is not one
MAX_BODY = 64 * 1024
HEALTHZ = "/healthz"
METRICS = "/metrics"
#: the operation (metrics label) of each route
_OPS = {api.STATE_PATH: "state", api.JOIN_PATH: "join", api.LEAVE_PATH: "leave"}

requests_total = Counter(
    "kosmos_node_agent_requests_total",
    "Node-agent requests by operation (state, join, leave, other) and HTTP code.",
    ["op", "code"],
    registry=REGISTRY,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    """The agent's error answer: ``{"error": message}`` with ``status``."""
    return web.json_response({"error": message}, status=status, headers=headers)


def peer_name(request: web.Request) -> str:
    """The common name of the client's (verified) certificate, for the log."""
    transport = request.transport
    peer = transport.get_extra_info("peercert") if transport is not None else None
    for rdn in (peer or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return "?"


def bearer(request: web.Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def authorized(request: web.Request, token: str) -> bool:
    """Whether the request carries ``token``; constant-time, so a wrong guess says nothing
    about how close it was."""
    given = bearer(request)
    return bool(given) and hmac.compare_digest(given.encode(), token.encode())


class Agent:
    """The routes over one backend; ``token`` is the Secret's bearer token."""

    def __init__(self, backend: api.NodeBackend, token: str) -> None:
        if not token:
            raise ValueError("the node-agent needs a non-empty bearer token")
        self.backend = backend
        self._token = token
        self._lock = asyncio.Lock()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY, middlewares=[self._guard])
        app.router.add_get(HEALTHZ, self._healthz)
        app.router.add_get(api.STATE_PATH, self._state)
        app.router.add_post(api.JOIN_PATH, self._join)
        app.router.add_post(api.LEAVE_PATH, self._leave)
        app.router.add_get(METRICS, self._metrics)
        return app

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """The token check before any route (an unknown path without the token is a 401,
        not a 404: routes are not disclosed), HTTP errors as JSON, and the metrics."""
        op = _OPS.get(request.path, "other")
        if request.path == HEALTHZ:
            return await handler(request)
        if not authorized(request, self._token):
            why = "no bearer token" if not bearer(request) else "wrong bearer token"
            who = peer_name(request)
            log.warning("%s %s from %s: 401 (%s)", request.method, request.path, who, why)
            requests_total.labels(op, "401").inc()
            return error(401, f"unauthorized: {why}", {"WWW-Authenticate": "Bearer"})
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # 404, 405, 413: aiohttp's own, said in JSON
            allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
            response = error(exc.status, exc.reason, allow)
        requests_total.labels(op, str(response.status)).inc()
        return response

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _metrics(self, _: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def _state(self, request: web.Request) -> web.Response:
        return await self._run(request, "state", self.backend.state)

    async def _join(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read() or b"null")
            join = api.parse_join(body)
        except (
            ValueError,
            RecursionError,
        ) as exc:  # not UTF-8 or JSON, nested too deep; BadRequest
            log.warning("join from %s: 400 (%s)", peer_name(request), exc)
            return error(400, f"bad join request: {exc}")
        what = f"join {join.tenant} at {join.server}"
        return await self._run(request, what, lambda: self.backend.join(join))

    async def _leave(self, request: web.Request) -> web.Response:
        return await self._run(request, "leave", self.backend.leave)

    async def _run(
        self, request: web.Request, what: str, call: Callable[[], object]
    ) -> web.Response:
        """``call`` in a worker thread, one at a time; its result (a State) or its failure
        as the answer, logged with who asked."""
        who = peer_name(request)
        async with self._lock:
            try:
                state = await asyncio.to_thread(call)
            except Exception as exc:
                status = _status_of(exc)
                if status == 500 and not isinstance(exc, api.Failed):
                    log.exception("%s by %s: 500", what, who)
                else:
                    log.warning("%s by %s: %d (%s)", what, who, status, exc)
                return error(status, str(exc) or type(exc).__name__)
        if not isinstance(state, api.State):
            log.error("%s by %s: the backend returned %r, not a State", what, who, state)
            return error(500, f"the node's backend returned no state for {what}")
        level = logging.DEBUG if what == "state" else logging.INFO
        log.log(level, "%s by %s: 200 (%s)", what, who, _describe(state))
        return web.json_response(state.to_body())


def _status_of(exc: Exception) -> int:
    if isinstance(exc, api.BadRequest):
        return 400
    if isinstance(exc, api.Refused):
        return 409
    return 500


def _describe(state: api.State) -> str:
    where = state.cluster if state.cluster == api.OWN_CLUSTER else f"tenant {state.tenant}"
    return f"node {state.node} serves {where}, kubelet {state.kubelet}"


def ssl_context(
    cert: tls.PemOrPath, key: tls.PemOrPath, client_ca: tls.PemOrPath
) -> ssl.SSLContext:
    """The agent's TLS: its serving pair, client certificates required and verified against
    the agents' CA; a client that refuses ours is logged (asyncio would drop it silently)."""
    context = tls.server_ssl_context(cert, key, client_ca)

    def refused(alert: str) -> None:
        log.warning("a client refused the agent's certificate (%s)", alert)

    tls.observe_refusals(context, refused)
    return context


@dataclass
class Server:
    """A running agent; ``port`` is the one bound (useful with port 0)."""

    host: str
    port: int
    runner: web.AppRunner

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start(agent: Agent, host: str, port: int, context: ssl.SSLContext) -> Server:
    """Listen on ``host:port`` with ``context``; :meth:`Server.stop` ends it."""
    runner = web.AppRunner(agent.app(), access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, ssl_context=context)
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound = runner.addresses[0][1] if runner.addresses else port
    return Server(host, int(bound), runner)


async def serve(agent: Agent, host: str, port: int, context: ssl.SSLContext) -> None:
    """Serve until SIGTERM or SIGINT; an operation under way finishes first (the runner's
    shutdown timeout), so a node is not left half-joined by a restart of its agent."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    server = await start(agent, host, port, context)
    log.info("node-agent on %s:%d (TLS, client certificates required)", host, server.port)
    try:
        await stopping.wait()
    finally:
        log.info("node-agent stopping")
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await server.stop()
