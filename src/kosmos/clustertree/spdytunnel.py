"""SPDY port-forward through a leaf node: the kubelet's SPDY upgrade, relayed as bytes.

kubectl (≥ 1.31) first tries port-forward over a WebSocket that tunnels SPDY
(``SPDY/3.1+portforward.k8s.io``); the apiserver forwards that to a leaf node as is (the
node declares ``ExtendWebSocketsToKubelet``). When that attempt fails, or an apiserver has
the gates off, or kubectl runs with ``KUBECTL_PORT_FORWARD_WEBSOCKETS=false``, the apiserver
proxies an SPDY upgrade instead: ``Upgrade: SPDY/3.1``, ``X-Stream-Protocol-Version:
portforward.k8s.io`` (``apimachinery/pkg/util/httpstream``, ``streaming/pkg/httpstream/spdy``).

We answer that upgrade as the kubelet does (101, ``Connection: Upgrade``, ``Upgrade:
SPDY/3.1`` and the negotiated protocol) and carry the raw bytes both ways to the member
apiserver's ``pods/portforward`` opened as the tunnelling WebSocket (SPDY bytes in binary
messages, ``client-go/tools/portforward/tunneling_connection.go``). The SPDY session —
framing, zlib header compression, pings, the per-port streams — therefore runs between the
client and the member's kubelet untouched; nothing here parses SPDY.

aiohttp only takes over a connection for ``websocket``/``tcp`` upgrades; for SPDY it keeps
parsing HTTP. Installing our own payload parser on the request's protocol (what aiohttp's
own ``WebSocketResponse`` does) routes every byte after the request head to us instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import cast

import aiohttp
from aiohttp import web
from aiohttp.http_websocket import WebSocketReader

from kosmos.clustertree.kubeletparams import Refusal

SPDY = "SPDY/3.1"
PORT_FORWARD = "portforward.k8s.io"
#: the WebSocket subprotocol that carries SPDY bytes (``WebsocketsSPDYTunnelingPrefix``)
TUNNEL = f"{SPDY}+{PORT_FORWARD}"
PROTOCOL_VERSION = "X-Stream-Protocol-Version"
_READ_LIMIT = 1 << 16


def is_spdy_upgrade(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").strip().lower().startswith("spdy")


def negotiate(request: web.Request) -> str:
    """The stream protocol both sides speak (``httpstream.Handshake``): only
    ``portforward.k8s.io``, the one the kubelet serves; refusals word the kubelet's."""
    connection = request.headers.get("Connection", "").lower()
    if "upgrade" not in connection or SPDY.lower() not in request.headers["Upgrade"].lower():
        raise Refusal(400, "unable to upgrade: missing upgrade headers in request")
    values = request.headers.getall(PROTOCOL_VERSION, [])
    if not values:
        raise Refusal(
            400, f"unable to upgrade: header {PROTOCOL_VERSION} does not exist in request"
        )
    offered = [p.strip() for value in values for p in value.split(",") if p.strip()]
    if PORT_FORWARD not in offered:
        raise Refusal(
            403,
            f"unable to upgrade: unable to negotiate protocol: client supports {offered}, "
            f"server accepts [{PORT_FORWARD}]",
        )
    return PORT_FORWARD


class _RawParser:
    """The payload parser aiohttp feeds once installed: bytes into a StreamReader, which
    pauses the transport when a slow member leaves too much unread (backpressure)."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        if data:
            self._reader.feed_data(data)
        return False, b""

    def feed_eof(self) -> None:
        self._reader.feed_eof()


async def _client_to_member(
    reader: asyncio.StreamReader, member: aiohttp.ClientWebSocketResponse
) -> None:
    while chunk := await reader.read(_READ_LIMIT):
        await member.send_bytes(chunk)


async def _member_to_client(
    member: aiohttp.ClientWebSocketResponse, client: web.StreamResponse
) -> None:
    async for msg in member:
        if msg.type is aiohttp.WSMsgType.BINARY:
            await client.write(msg.data)
        elif msg.type is not aiohttp.WSMsgType.TEXT:
            break


async def relay(
    request: web.Request, protocol: str, member: aiohttp.ClientWebSocketResponse
) -> web.StreamResponse:
    """Switch the client's connection to raw bytes and splice it with the member's tunnel
    until either side ends; the connection is closed afterwards (never reused for HTTP)."""
    transport = request.transport
    if transport is None:
        raise ConnectionResetError("client connection lost")
    reader = asyncio.StreamReader(limit=_READ_LIMIT)
    reader.set_transport(transport)
    # aiohttp types the parser as its WebSocketReader; any feed_data/feed_eof object works
    request.protocol.set_parser(cast(WebSocketReader, _RawParser(reader)))
    request.protocol.keep_alive(False)
    response = web.StreamResponse(
        status=101,
        headers={"Connection": "Upgrade", "Upgrade": SPDY, PROTOCOL_VERSION: protocol},
    )
    response.force_close()
    await response.prepare(request)
    up = asyncio.create_task(_client_to_member(reader, member))
    down = asyncio.create_task(_member_to_client(member, response))
    try:
        await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (up, down):
            task.cancel()
        with contextlib.suppress(ConnectionError, aiohttp.ClientError, RuntimeError):
            await member.close()
        transport.close()
    return response
