"""Client.table: asks for the server-rendered Table and merges the pages of a list."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web

from kosmos.api.resources import CONFIGMAPS
from kosmos.kube.client import Client
from kosmos.kube.config import ClusterConfig

COLUMNS = [{"name": "Name", "type": "string", "priority": 0}]


@pytest.fixture
async def table_server():
    seen: list[dict[str, Any]] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(
            {"path": request.path, "accept": request.headers.get("Accept"), **request.query}
        )
        if request.path.endswith("/configmaps/one"):
            return web.json_response(
                {"kind": "Table", "columnDefinitions": COLUMNS, "rows": [{"cells": ["one"]}]}
            )
        cont = request.query.get("continue")
        page = {"kind": "Table", "columnDefinitions": COLUMNS, "metadata": {}}
        if cont is None:
            page["rows"] = [{"cells": ["a"]}]
            page["metadata"]["continue"] = "next"
        else:  # the last page may omit rows entirely
            page["metadata"]["resourceVersion"] = "7"
        return web.json_response(page)

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    client = Client(ClusterConfig(name="host", server=f"http://127.0.0.1:{port}"))
    yield client, seen
    await client.close()
    await runner.cleanup()


async def test_table_requests_the_table_form_and_merges_pages(table_server):
    client, seen = table_server
    table = await client.table(CONFIGMAPS, "default")
    assert table["columnDefinitions"] == COLUMNS
    assert [r["cells"] for r in table["rows"]] == [["a"]]
    assert [s.get("continue") for s in seen] == [None, "next"]
    assert all(s["accept"] == "application/json;as=Table;v=v1;g=meta.k8s.io" for s in seen)


async def test_table_of_one_object_does_not_paginate(table_server):
    client, seen = table_server
    table = await client.table(CONFIGMAPS, "default", "one")
    assert [r["cells"] for r in table["rows"]] == [["one"]]
    assert "limit" not in seen[0]
