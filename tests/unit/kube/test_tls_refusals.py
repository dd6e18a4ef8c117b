"""A client that refuses our serving certificate is noticed (asyncio alone drops it)."""

from __future__ import annotations

import asyncio
import socket
import ssl

from kosmos.kube import tls


def _connect(port: int, context: ssl.SSLContext) -> str:
    """A blocking client, as Go's is: it sends its alert before closing (asyncio's does not)."""
    context.check_hostname = False
    with socket.create_connection(("127.0.0.1", port)) as raw:
        try:
            with context.wrap_socket(raw):
                return "accepted"
        except ssl.SSLCertVerificationError:
            return "refused"


async def test_a_client_that_does_not_trust_the_certificate_is_reported():
    cert, key = tls.serving_certificate(["127.0.0.1"])
    context = tls.server_ssl_context(cert, key)
    refused: list[str] = []
    tls.observe_refusals(context, refused.append)

    async def serve(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    try:
        # the system's CAs never include our self-signed certificate; its own CA does
        untrusting = ssl.create_default_context()
        assert await asyncio.to_thread(_connect, port, untrusting) == "refused"
        trusting = ssl.create_default_context(cadata=cert.decode())
        assert await asyncio.to_thread(_connect, port, trusting) == "accepted"
        for _ in range(100):
            if refused:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)  # and nothing more for the trusting client
    finally:
        server.close()
        await server.wait_closed()
    assert refused == ["tlsv1_alert_unknown_ca"]
