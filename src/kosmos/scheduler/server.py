"""The extender's HTTPS endpoint: kube-scheduler's filter and prioritize verbs, plus health.

Wire format (``k8s.io/kube-scheduler/extender/v1``, Go field names as keys): kube-scheduler
POSTs ``{"Pod", "Nodes" | "NodeNames"}`` to ``<urlPrefix>/<verb>``; the filter answers
``{"NodeNames" | "Nodes", "FailedNodes", "FailedAndUnresolvableNodes", "Error"}``, prioritize
answers ``[{"Host", "Score"}]``. The shipped configuration sets ``nodeCacheCapable`` (node
names only: the extender has its own node cache); full ``Nodes`` lists are accepted too.

Failures never turn into an HTTP 500 (kube-scheduler would only say "code 500"): the filter
answers ``Error`` with the cause, which kube-scheduler puts in the pod's FailedScheduling
event and PodScheduled condition, and it retries the pod with backoff. Until the host caches
are synced the filter answers such an error instead of deciding on a partial view.

``/healthz``, ``/readyz`` and ``/metrics`` are served on the same port.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from kosmos.api.objects import Obj
from kosmos.kube.gate import Gate
from kosmos.kube.serving import add_health_routes
from kosmos.scheduler import decide, metrics
from kosmos.scheduler.cache import Caches
from kosmos.scheduler.ledger import Ledger

log = logging.getLogger("kosmos.scheduler.server")

#: The path kube-scheduler calls (``urlPrefix``): it names us in the scheduler's errors.
URL_PATH = "/kosmos-scheduler-extender"
COMPONENT = "kosmos-scheduler-extender"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(body: Any) -> web.Response:
    return web.Response(body=orjson.dumps(body), content_type="application/json")


def _node_names(args: Obj) -> tuple[list[str], dict[str, Obj] | None]:
    """Candidate node names, and the full nodes when kube-scheduler sent them."""
    if args.get("NodeNames") is not None:
        return [str(n) for n in args["NodeNames"]], None
    items = (args.get("Nodes") or {}).get("items") or []
    full = {str(n.get("metadata", {}).get("name", "")): n for n in items}
    return list(full), full


#: Filter answers kept for the prioritize call that follows (one per pod in the cycle).
SCORES_KEPT = 64


class Extender:
    def __init__(
        self,
        caches: Caches,
        ledger: Ledger,
        not_ready: Callable[[], list[str]],
        gate: Gate | None = None,
    ) -> None:
        self.caches = caches
        #: held while a verb is answered: the informers sharing the loop wait meanwhile
        self.gate = gate or Gate()
        self.ledger = ledger
        self.not_ready = not_ready
        #: (pod UID, resourceVersion) -> scores the filter computed for its passing nodes:
        #: kube-scheduler calls prioritize right after filter with those very nodes
        self._scores: OrderedDict[tuple[str, str], dict[str, int]] = OrderedDict()

    def _keep_scores(self, pod: Obj, scores: dict[str, int]) -> None:
        self._scores[_version_key(pod)] = scores
        while len(self._scores) > SCORES_KEPT:
            self._scores.popitem(last=False)

    def _kept_scores(self, pod: Obj, names: list[str]) -> list[Obj] | None:
        scores = self._scores.pop(_version_key(pod), None)
        if scores is None or not all(n in scores for n in names):
            return None
        return [{"Host": n, "Score": scores[n]} for n in names]

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 2**20)
        app.router.add_post(f"{URL_PATH}/filter", self._timed("filter", self.filter))
        app.router.add_post(f"{URL_PATH}/prioritize", self._timed("prioritize", self.prioritize))
        add_health_routes(app, self.not_ready)
        return app

    def _timed(self, verb: str, handler: Handler) -> Handler:
        async def timed(request: web.Request) -> web.StreamResponse:
            started = time.perf_counter()
            try:
                with self.gate.urgent():
                    return await handler(request)
            finally:
                metrics.request_seconds.labels(verb).observe(time.perf_counter() - started)

        return timed

    async def filter(self, request: web.Request) -> web.Response:
        try:
            args: Obj = orjson.loads(await request.read())
            pod: Obj = args.get("Pod") or {}
            names, full = _node_names(args)
        except (orjson.JSONDecodeError, AttributeError, TypeError) as exc:
            metrics.requests_total.labels("filter", "error").inc()
            return _json({"Error": f"{COMPONENT}: not an ExtenderArgs JSON body: {exc}"})
        problems = self.not_ready()
        if problems:
            metrics.requests_total.labels("filter", "not_ready").inc()
            return _json({"Error": f"{COMPONENT} is not ready: {'; '.join(problems)}"})
        try:
            result = decide.filter_nodes(self.caches, self.ledger, pod, names)
        except Exception as exc:  # answer with the cause; kube-scheduler retries the pod
            log.exception("filter for pod %s failed", _pod_id(pod))
            metrics.requests_total.labels("filter", "error").inc()
            return _json({"Error": f"{COMPONENT}: filter failed: {exc}"})
        if result.reserve is not None:
            meta = pod.get("metadata", {})
            owner, cluster = result.reserve
            self.ledger.reserve(
                str(meta.get("uid", "")), owner, cluster, str(meta.get("resourceVersion", ""))
            )
            metrics.reservations.set(len(self.ledger))
        self._keep_scores(pod, result.scores)
        for cause, count in result.causes.items():
            metrics.filtered_nodes.labels(cause).inc(count)
        metrics.requests_total.labels("filter", "ok").inc()
        answer: Obj = {
            "FailedNodes": result.failed,
            "FailedAndUnresolvableNodes": result.unresolvable,
            "Error": "",
        }
        if full is None:
            answer["NodeNames"] = result.nodes
        else:
            answer["Nodes"] = {"items": [full[n] for n in result.nodes]}
        return _json(answer)

    async def prioritize(self, request: web.Request) -> web.Response:
        try:
            args: Obj = orjson.loads(await request.read())
            names, _ = _node_names(args)
        except (orjson.JSONDecodeError, AttributeError, TypeError):
            return web.Response(status=400, text="not an ExtenderArgs JSON body\n")
        if self.not_ready():
            metrics.requests_total.labels("prioritize", "not_ready").inc()
            return _json([{"Host": n, "Score": 0} for n in names])
        try:
            pod = args.get("Pod") or {}
            scores = self._kept_scores(pod, names) or decide.priorities(self.caches, pod, names)
        except Exception:  # a prioritize error only loses our score; never fail the pod
            log.exception("prioritize for pod %s failed", _pod_id(args.get("Pod") or {}))
            metrics.requests_total.labels("prioritize", "error").inc()
            scores = [{"Host": n, "Score": 0} for n in names]
        else:
            metrics.requests_total.labels("prioritize", "ok").inc()
        metrics.in_flight.set(len(self.caches.in_flight))
        return _json(scores)


def _version_key(pod: Obj) -> tuple[str, str]:
    meta = pod.get("metadata", {})
    return str(meta.get("uid", "")), str(meta.get("resourceVersion", ""))


def _pod_id(pod: Obj) -> str:
    meta = pod.get("metadata", {})
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


class Server:
    """Serves an ``Extender`` over HTTPS until stopped."""

    def __init__(self, extender: Extender, host: str, port: int, context: ssl.SSLContext) -> None:
        self.extender = extender
        self.host, self.port = host, port
        self.context = context
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        self._runner = web.AppRunner(self.extender.app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.context)
        await site.start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
