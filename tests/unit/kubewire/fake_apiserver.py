"""A tiny HTTP server speaking just enough of the apiserver's list/watch wire format.

For unit tests of the client and informer wire behaviour (pagination, ERROR events, 410,
bookmarks, stalls). Real apiserver behaviour is covered by tests/integration.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

PATH = "/api/v1/namespaces/default/configmaps"


def cm(name: str, rv: int) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "default",
            "resourceVersion": str(rv),
            "managedFields": [{"manager": "x"}],
        },
        "data": {"v": str(rv)},
    }


class FakeApiserver:
    def __init__(self) -> None:
        self.rv = 10
        self.objects: dict[str, dict[str, Any]] = {}
        self.requests: list[dict[str, str]] = []
        self.watch_scripts: list[list[Any]] = []  # one script per watch call
        self.errors: dict[str, tuple[int, dict[str, Any]]] = {}
        self.runner: web.AppRunner | None = None
        self.port = 0

    def put(self, name: str) -> dict[str, Any]:
        self.rv += 1
        self.objects[name] = cm(name, self.rv)
        return self.objects[name]

    def remove(self, name: str) -> dict[str, Any]:
        self.rv += 1
        obj = self.objects.pop(name)
        obj["metadata"]["resourceVersion"] = str(self.rv)
        return obj

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"http://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        query = dict(request.query)
        self.requests.append({"method": request.method, "path": request.path, **query})
        if request.path in self.errors:
            code, status = self.errors[request.path]
            return web.json_response(status, status=code)
        if request.path == "/readyz":
            return web.Response(text="ok")
        if query.get("watch") == "true":
            return await self.watch(request)
        if request.path != PATH:
            return web.json_response(
                {"kind": "Status", "code": 404, "reason": "NotFound", "message": "not here"},
                status=404,
            )
        return self.list(query)

    def list(self, query: dict[str, str]) -> web.Response:
        names = sorted(self.objects)
        limit = int(query.get("limit", "500"))
        start = int(query.get("continue", "0"))
        page = names[start : start + limit]
        meta: dict[str, Any] = {"resourceVersion": str(self.rv)}
        if start + limit < len(names):
            meta["continue"] = str(start + limit)
        items = [json.loads(json.dumps(self.objects[n])) for n in page]
        return web.json_response({"kind": "ConfigMapList", "metadata": meta, "items": items})

    async def watch(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        script = self.watch_scripts.pop(0) if self.watch_scripts else ["hang"]
        for step in script:
            if step == "hang":
                await asyncio.sleep(3600)
            elif isinstance(step, float):
                await asyncio.sleep(step)
            else:
                # Split each event across two chunks to exercise line reassembly.
                line = json.dumps(step).encode() + b"\n"
                await response.write(line[:7])
                await response.write(line[7:])
        return response
