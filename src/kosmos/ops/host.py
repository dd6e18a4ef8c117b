"""How an operation reaches the host cluster: its kubeconfig, and the clients opened to it.

An operation opens clients when it first needs them (a join checks the member before it
asks for the host, so a bad member kubeconfig is reported first) and ``run`` closes them all
when the operation ends, however it ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kosmos.kube import config as kube_config
from kosmos.kube.client import Client

T = TypeVar("T")


@dataclass
class Host:
    kubeconfig: str | None = None  # None: $KUBECONFIG or ~/.kube/config
    context: str | None = None
    _clients: list[Client] = field(default_factory=list)

    async def client(self) -> Client:
        """A new client for the host, closed by ``close``."""
        config = await kube_config.from_kubeconfig("host", self.kubeconfig, self.context)
        client = Client(config)
        self._clients.append(client)
        return client

    async def close(self) -> None:
        for client in self._clients:
            await client.close()
        self._clients.clear()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run an operation to its end in a new event loop, then close its clients."""

        async def guarded() -> T:
            try:
                return await coro
            finally:
                await self.close()

        return asyncio.run(guarded())
