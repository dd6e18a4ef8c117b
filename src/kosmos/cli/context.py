"""What every kosmosctl command shares: global flags, the host client, and error mapping.

Errors from the apiserver boundary become one clear line and exit code 1 (click's
ClickException), never a traceback; ``-v`` adds the cause chain for debugging.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click

from kosmos.kube import config as kube_config
from kosmos.kube.client import Client
from kosmos.kube.errors import KubeError

T = TypeVar("T")
log = logging.getLogger("kosmos.cli")


@dataclass
class CliContext:
    kubeconfig: str | None = None
    context: str | None = None
    verbose: int = 0
    _clients: list[Client] = field(default_factory=list)

    async def host(self) -> Client:
        """Client for the host cluster (from --kubeconfig/--context or $KUBECONFIG)."""
        config = await kube_config.from_kubeconfig("host", self.kubeconfig, self.context)
        client = Client(config)
        self._clients.append(client)
        return client

    async def client_for(self, name: str, kubeconfig: str, context: str | None) -> Client:
        config = await kube_config.from_kubeconfig(name, kubeconfig, context)
        client = Client(config)
        self._clients.append(client)
        return client

    async def close(self) -> None:
        for client in self._clients:
            await client.close()
        self._clients.clear()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a command's coroutine; map Kosmos errors to one line and exit code 1."""

        async def guarded() -> T:
            try:
                return await coro
            finally:
                await self.close()

        try:
            return asyncio.run(guarded())
        except KubeError as exc:
            if self.verbose:
                log.exception("command failed")
            raise click.ClickException(str(exc)) from exc


pass_cli = click.make_pass_decorator(CliContext, ensure=True)

output_option = click.option(
    "-o",
    "--output",
    type=click.Choice(["table", "wide", "json", "yaml"]),
    default="table",
    show_default=True,
    help="Output format.",
)
