"""``kosmos floater``: HTTP ``GET /`` and a UDP echo on one port, until SIGTERM.

One port number for both protocols, so a check names one target (``IP:PORT``) whichever
protocol it uses, and a DaemonSet's readiness probe (TCP) also vouches for the UDP socket
opened with it. The sockets bind ``::`` with ``IPV6_V6ONLY`` off, so one socket answers IPv4
and IPv6 peers alike; a node without IPv6 gets ``0.0.0.0``. The floater talks to no apiserver
(its node name comes from the downward API), so its pods need no credentials at all.

Plain sockets for serving, not ``kosmos.net``: this configures nothing in the kernel.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import socket
from dataclasses import dataclass
from typing import cast

import click
from aiohttp import web

from kosmos.kube import logs

log = logging.getLogger("kosmos.floater")

DEFAULT_PORT = 8889
#: the largest reply that still fits a UDP datagram over IPv4 (65535 - 8 - 20)
_MAX_DATAGRAM = 65507
#: (family, wildcard address) in order of preference: dual-stack first
WILDCARDS: tuple[tuple[socket.AddressFamily, str], ...] = (
    (socket.AF_INET6, "::"),
    (socket.AF_INET, "0.0.0.0"),
)
_EPHEMERAL_TRIES = 20


def _socket(
    family: socket.AddressFamily, kind: socket.SocketKind, host: str, port: int
) -> socket.socket:
    sock = socket.socket(family, kind)
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def bind_pair(
    port: int, wildcards: tuple[tuple[socket.AddressFamily, str], ...] = WILDCARDS
) -> tuple[socket.socket, socket.socket]:
    """A TCP and a UDP socket on the same ``port`` (0: a free one), on the first wildcard
    address the node supports.

    A family the node lacks (no IPv6: EAFNOSUPPORT, EADDRNOTAVAIL) moves on to the next;
    any other error (the port is taken) is the caller's to report.
    """
    last: OSError | None = None
    for family, host in wildcards:
        try:
            return _pair(family, host, port)
        except OSError as exc:
            if exc.errno not in {errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL, errno.EPROTONOSUPPORT}:
                raise
            last = exc
    assert last is not None
    raise last


def _pair(
    family: socket.AddressFamily, host: str, port: int
) -> tuple[socket.socket, socket.socket]:
    for _ in range(_EPHEMERAL_TRIES if port == 0 else 1):
        tcp = _socket(family, socket.SOCK_STREAM, host, port)
        try:
            return tcp, _socket(family, socket.SOCK_DGRAM, host, tcp.getsockname()[1])
        except OSError as exc:
            tcp.close()
            if port != 0 or exc.errno != errno.EADDRINUSE:
                raise
    raise OSError(
        errno.EADDRINUSE, f"no port free for both TCP and UDP after {_EPHEMERAL_TRIES} tries"
    )


class Echo(asyncio.DatagramProtocol):
    """Answers every datagram with ``kosmos-floater <node> <payload>`` to its sender."""

    def __init__(self, node: str) -> None:
        self.prefix = b"kosmos-floater " + node.encode() + b" "
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's own datagram transport does not subclass DatagramTransport
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if self.transport is not None:
            reply = self.prefix + data
            self.transport.sendto(reply[:_MAX_DATAGRAM], addr)

    def error_received(self, exc: Exception) -> None:  # an ICMP error for an earlier reply
        log.debug("udp: %s", exc)


def http_app(node: str) -> web.Application:
    body = f"OK {node}\n"

    async def root(_: web.Request) -> web.Response:
        return web.Response(text=body, content_type="text/plain")

    app = web.Application()
    app.router.add_get("/", root)
    return app


@dataclass
class Floater:
    """The running responder; ``port`` is the one bound (useful with port 0)."""

    node: str
    port: int
    address: str
    runner: web.AppRunner
    udp: asyncio.DatagramTransport

    async def stop(self) -> None:
        self.udp.close()
        await self.runner.cleanup()


async def start(
    node: str, port: int, wildcards: tuple[tuple[socket.AddressFamily, str], ...] = WILDCARDS
) -> Floater:
    tcp, udp = bind_pair(port, wildcards)
    try:
        runner = web.AppRunner(http_app(node), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        await web.SockSite(runner, tcp).start()
    except BaseException:
        tcp.close()
        udp.close()
        raise
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: Echo(node), sock=udp)
    address, bound = tcp.getsockname()[:2]
    return Floater(node, bound, address, runner, transport)


async def serve(node: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    floater = await start(node, port)
    stack = "dual-stack" if floater.address == "::" else "IPv4 only"
    log.info(
        "floater %s: HTTP and UDP echo on port %d (%s %s)",
        node,
        floater.port,
        floater.address,
        stack,
    )
    try:
        await stopping.wait()
    finally:
        await floater.stop()


@click.command(name="floater", context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    envvar="PORT",
    default=DEFAULT_PORT,
    show_default=True,
    help="TCP (HTTP) and UDP (echo) port.",
)
@click.option(
    "--node",
    envvar="NODE_NAME",
    default=socket.gethostname,
    show_default="hostname",
    help="The node name the answers carry.",
)
@logs.option()
def command(port: int, node: str, log_format: str) -> None:
    """Answer netdoctor checks: HTTP GET / -> "OK <node>", UDP echo, on one port."""
    # The components' output (kosmos.kube.logs), without the apiserver client: the floater
    # never talks to one.
    logs.configure(logging.INFO, log_format)
    try:
        asyncio.run(serve(node, port))
    except OSError as exc:
        raise click.ClickException(f"cannot listen on port {port}: {exc}") from exc
