"""The apiserver relay: real nodes reach their cluster's loopback-bound apiserver through it.

The local apiservers bind 127.0.0.1, which a node's network namespace cannot reach (its
loopback is its own). Binding them to the cluster network instead would change every
kubeconfig of the environment, and binding them everywhere would expose them beyond the
machine. So one small process of ours listens on each cluster network's host address, at
the apiserver's port, and copies bytes to and from ``127.0.0.1`` at that port: TLS passes
through untouched (the apiserver's certificate names the host address), and nothing listens
anywhere a node namespace cannot already reach.

Run as ``python -m kosmos.local.nodes.relay --pid-file F HOST:PORT=TARGET:PORT ...``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from kosmos.local import procs
from kosmos.local.nodes.launch import tail
from kosmos.local.nodes.layout import relay_dir

DESCRIPTION = "Relay TCP from cluster-network addresses to loopback apiservers."
CHUNK = 1 << 16
MODULE = "kosmos.local.nodes.relay"

Address = tuple[str, int]


def parse_route(text: str) -> tuple[Address, Address]:
    """``10.200.1.1:17310=127.0.0.1:17310`` -> ``(("10.200.1.1", 17310), ("127.0.0.1", 17310))``."""
    listen, sep, target = text.partition("=")
    if not sep:
        raise ValueError(f"route {text!r} is not LISTEN=TARGET")

    def address(part: str) -> Address:
        host, _, port = part.rpartition(":")
        return host, int(port)

    return address(listen), address(target)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            writer.close()


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _handler(target: Address) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(
            _pipe(reader, upstream_writer), _pipe(upstream_reader, writer), return_exceptions=True
        )

    return handle


async def serve(routes: list[tuple[Address, Address]]) -> None:
    servers = [
        await asyncio.start_server(_handler(target), *listen, reuse_address=True)
        for listen, target in routes
    ]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for server in servers:
        server.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=MODULE, description=DESCRIPTION)
    parser.add_argument("--pid-file", type=Path, required=True)
    parser.add_argument("routes", nargs="+", metavar="LISTEN=TARGET")
    args = parser.parse_args(argv)
    routes = [parse_route(r) for r in args.routes]
    asyncio.run(serve(routes))


# -- managing the relay process -------------------------------------------------------------


class RelayError(RuntimeError):
    """The relay did not start; the message carries its log."""


def pid_file() -> Path:
    return relay_dir() / "relay.pid"


def log_file() -> Path:
    return relay_dir() / "relay.log"


def command(routes: list[str]) -> list[str]:
    return [sys.executable, "-m", MODULE, "--pid-file", str(pid_file()), *sorted(routes)]


def running() -> tuple[int, list[str]] | None:
    """The relay's pid and its routes, if it runs."""
    try:
        pid = int(pid_file().read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        argv = (procs.PROC / str(pid) / "cmdline").read_bytes().decode().split("\0")
    except OSError:
        return None
    if not procs.alive(pid) or MODULE not in argv or str(pid_file()) not in argv:
        return None
    return pid, [a for a in argv if "=" in a and not a.startswith("-")]


def ensure(routes: list[str], timeout: float = 10.0) -> int | None:
    """The relay runs with exactly ``routes`` (restarted if it runs with others); returns the
    pid of a relay it started, None when the running one was kept."""
    current = running()
    if current and sorted(current[1]) == sorted(routes):
        return None
    stop()
    relay_dir().mkdir(parents=True, exist_ok=True)
    with log_file().open("ab") as log:
        process = subprocess.Popen(
            command(routes),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    pid_file().write_text(str(process.pid))
    ports = {parse_route(r)[0][1] for r in routes}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        if ports <= set(procs.listening_ports([process.pid])):
            return process.pid
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    raise RelayError(f"the apiserver relay did not listen on {sorted(ports)}:\n{tail(log_file())}")


def stop() -> None:
    current = running()
    if current:
        procs.terminate([current[0]], grace=5.0)
    pid_file().unlink(missing_ok=True)


if __name__ == "__main__":
    main()
