"""Running a tool inside a named network namespace (or the current one).

The agent normally programs its own node's namespace; in tests and the local environment it
programs a namespace named on its command line while it talks to the API from the root
namespace. ``ip netns exec`` enters the namespace for one command; a netlink socket is
opened inside it by a thread that enters it (``netlink_socket``), and ``kosmos.net.netlink``
hands that socket to pyroute2.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

from kosmos.net.errors import CommandError, DeviceMissing, KernelError

_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


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


async def netlink_socket(netns: str) -> int:
    """The file descriptor of an rtnetlink socket created inside ``netns``."""
    return await _in_own_thread(_netlink_socket_in, netns)


def _netlink_socket_in(netns: str) -> int:
    """An rtnetlink socket created inside ``netns`` (run in a thread of its own).

    ``setns`` moves only the calling thread, and a socket keeps the namespace it was created
    in, so a throwaway thread does it without touching the event loop's thread. pyroute2's
    own ``netns=`` forks a copy of this process instead, which shares asyncio's signal
    wake-up pipe: a signal to that copy reaches our loop as if sent to us, and a missing
    namespace is silently created.
    """
    path = f"/var/run/netns/{netns}"
    try:
        target = os.open(path, os.O_RDONLY)
    except FileNotFoundError as exc:
        raise DeviceMissing(f"network namespace {netns} does not exist", item=netns) from exc
    try:
        if _libc.setns(target, _CLONE_NEWNET) != 0:
            code = ctypes.get_errno()
            raise KernelError(
                f"entering netns {netns}: {os.strerror(code)}", item=netns, errno=code
            )
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 0)  # NETLINK_ROUTE
        return sock.detach()
    finally:
        os.close(target)


async def _in_own_thread(func: Callable[[str], int], arg: str) -> int:
    """Run ``func`` in a new thread that dies afterwards (a pool thread would stay in the netns)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[int] = loop.create_future()

    def work() -> None:
        try:
            result = func(arg)
        except BaseException as exc:  # handed to the awaiting task
            loop.call_soon_threadsafe(done.set_exception, exc)
        else:
            loop.call_soon_threadsafe(done.set_result, result)

    threading.Thread(target=work, name=f"netns-{arg}", daemon=True).start()
    return await done
