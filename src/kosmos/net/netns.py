"""Running a tool inside a named network namespace (or the current one).

The agent normally programs its own node's namespace; in tests and the local environment it
programs a namespace named on its command line while it talks to the API from the root
namespace. ``ip netns exec`` enters the namespace for one command; netlink sockets are
opened inside it by pyroute2 (``kosmos.net.netlink``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from kosmos.net.errors import CommandError


@dataclass(frozen=True)
class Namespace:
    """A network namespace by name; ``None`` is the namespace this process runs in."""

    name: str | None = None

    def argv(self, *command: str) -> list[str]:
        if self.name is None:
            return list(command)
        return ["ip", "netns", "exec", self.name, *command]

    async def run(self, *command: str, stdin: str | None = None, check: bool = True) -> str:
        """Run ``command`` here; raise ``CommandError`` with its stderr when it fails."""
        argv = self.argv(*command)
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate(stdin.encode() if stdin is not None else None)
        if check and process.returncode != 0:
            where = f" in netns {self.name}" if self.name else ""
            raise CommandError(
                f"{command[0]}{where} failed ({process.returncode}): {err.decode().strip()}",
                item=command[0],
            )
        return out.decode()

    def __str__(self) -> str:
        return self.name or "(host)"
