"""A fake node backend, the test PKI's files, and a client of a running agent with real TLS."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from kosmos.api import nodeagent as api

TOKEN = "s3cret-token"
OPERATOR = "kosmos-kubenest-operator"


class FakeBackend:
    """Records each call; ``fail`` (when set) is raised by the next join/leave; ``delay``
    makes each call take that long (to see calls serialised)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.fail: Exception | None = None
        self.delay = 0.0
        self.active = 0
        self.most_active = 0
        self.current = api.State(node="node-1")

    def _enter(self, what: str, arg: Any = None) -> None:
        self.calls.append((what, arg))
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        try:
            time.sleep(self.delay)
            if self.fail is not None and what != "state":
                raise self.fail
        finally:
            self.active -= 1

    def state(self) -> api.State:
        self._enter("state")
        return self.current

    def join(self, join: api.Join) -> api.State:
        self._enter("join", join)
        self.current = api.State("node-1", api.TENANT, join.tenant, join.server)
        return self.current

    def leave(self) -> api.State:
        self._enter("leave")
        self.current = api.State(node="node-1")
        return self.current


@dataclass
class Pki:
    """PEM files: the agents' CA, the agent's serving pair, the operator's client pair, and
    a client pair from a stranger CA."""

    dir: Path
    ca: bytes
    other_ca: bytes
    files: dict[str, Path] = field(default_factory=dict)

    def context(
        self, client: str | None = "operator", trust: bytes | None = None
    ) -> ssl.SSLContext:
        """A client context that trusts ``trust`` (the agents' CA by default) and presents
        the ``client`` pair (``operator``, ``stranger`` or None)."""
        context = ssl.create_default_context(cadata=(trust or self.ca).decode())
        if client is not None:
            context.load_cert_chain(self.files[f"{client}.crt"], self.files[f"{client}.key"])
        return context


@dataclass
class Running:
    port: int
    backend: FakeBackend
    pki: Pki

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = TOKEN,
        body: Any = None,
        data: bytes | None = None,
        context: ssl.SSLContext | None = None,
    ) -> tuple[int, Any, Any]:
        """``(status, JSON body or text, headers)`` of one request."""
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        ssl_context = context or self.pki.context()
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                method, self.url + path, headers=headers, json=body, data=data, ssl=ssl_context
            ) as response,
        ):
            if response.content_type == "application/json":
                return response.status, await response.json(), response.headers
            return response.status, await response.text(), response.headers


def join_body(pki: Pki, **changes: Any) -> dict[str, Any]:
    """A valid join body (the certificates' content does not matter to the agent)."""
    cert = pki.files["operator.crt"].read_text()
    key = pki.files["operator.key"].read_text()
    body: dict[str, Any] = {
        "tenant": "team-a/vc1",
        "server": "https://10.0.0.5:6443",
        "caData": pki.ca.decode(),
        "kubelet": {"certData": cert, "keyData": key},
        "proxy": {"certData": cert, "keyData": key},
        "clusterDNS": ["10.96.0.10"],
        "clusterDomain": "cluster.local",
    }
    body.update(changes)
    return body


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)
