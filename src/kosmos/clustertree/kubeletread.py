"""The kubelet read API's routes (``/pods``, ``/stats/summary``, ``/metrics/resource``).

Every leaf node has a port of its own (``leafports``); the port a request came in on names
the leaf, and a ``ReadApi`` (``leafread``) answers for it.
"""

from __future__ import annotations

from typing import Protocol

from aiohttp import web

from kosmos.api.objects import Obj
from kosmos.clustertree.kubeletparams import Refusal

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


class ReadApi(Protocol):
    """The kubelet read API's data for one leaf node (``None``: not a leaf of ours)."""

    def leaf_of(self, port: int) -> str | None: ...

    def pods(self, leaf: str) -> Obj: ...

    async def summary(self, leaf: str) -> Obj | None: ...

    async def resource_metrics(self, leaf: str) -> str | None: ...


def _leaf(reader: ReadApi | None, request: web.Request) -> tuple[ReadApi, str]:
    """The read API and the leaf node this request's port belongs to."""
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    leaf = reader.leaf_of(int(sockname[1])) if reader and sockname else None
    if reader is None or leaf is None:
        raise Refusal(404, "no leaf node is served on this port")
    return reader, leaf


def _unavailable(leaf: str) -> Refusal:
    return Refusal(503, f"leaf node {leaf}: its member cluster is not available")


def add_read_routes(router: web.UrlDispatcher, reader: ReadApi | None) -> None:
    async def pods(request: web.Request) -> web.Response:
        api, leaf = _leaf(reader, request)
        return web.json_response(api.pods(leaf))

    async def summary(request: web.Request) -> web.Response:
        api, leaf = _leaf(reader, request)
        answer = await api.summary(leaf)
        if answer is None:
            raise _unavailable(leaf)
        return web.json_response(answer)

    async def resource_metrics(request: web.Request) -> web.Response:
        api, leaf = _leaf(reader, request)
        text = await api.resource_metrics(leaf)
        if text is None:
            raise _unavailable(leaf)
        return web.Response(body=text.encode(), headers={"Content-Type": PROMETHEUS_TEXT})

    router.add_get("/pods", pods)
    router.add_get("/stats/summary", summary)
    router.add_get("/metrics/resource", resource_metrics)
