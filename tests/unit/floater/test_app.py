"""The floater on a free port: HTTP and UDP echo over IPv4 and IPv6 loopback, and its CLI."""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from kosmos.floater import app, probe

SRC = str(Path(app.__file__).parents[2])


@pytest.fixture
async def floater():
    running = await app.start("node-a", 0)
    yield running
    await running.stop()


@pytest.mark.parametrize("host", ["127.0.0.1", "[::1]"])
async def test_http_answers_ok_with_the_node_name(floater, host):
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://{host}:{floater.port}/") as response:
            assert response.status == 200
            assert response.content_type == "text/plain"
            assert await response.text() == "OK node-a\n"
        async with session.get(f"http://{host}:{floater.port}/other") as response:
            assert response.status == 404


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_udp_echo_on_the_same_port(floater, host):
    assert floater.address == "::"  # one dual-stack socket serves both families
    reply = await _in_thread(probe.udp, host, floater.port, 2.0)
    assert reply == b"kosmos-floater node-a kosmos-netdoctor"


async def _in_thread(fn, *args):  # the probe blocks; the floater needs the loop meanwhile
    return await asyncio.to_thread(fn, *args)


async def test_falls_back_to_ipv4_when_the_family_is_missing():
    wildcards = ((socket.AF_INET6, "2001:db8::1"), (socket.AF_INET, "127.0.0.1"))
    running = await app.start("node-b", 0, wildcards)
    try:
        assert running.address == "127.0.0.1"
        reply = await _in_thread(probe.udp, "127.0.0.1", running.port, 2.0)
        assert reply == b"kosmos-floater node-b kosmos-netdoctor"
    finally:
        await running.stop()


async def test_a_taken_port_is_an_error_not_a_fallback(floater):
    with pytest.raises(OSError) as caught:
        app.bind_pair(floater.port)
    assert caught.value.errno == errno.EADDRINUSE


def test_echo_caps_the_reply_at_one_datagram():
    sent = []

    class Transport:
        def sendto(self, data, addr):
            sent.append((data, addr))

    echo = app.Echo("n")
    echo.transport = Transport()  # type: ignore[assignment]
    echo.datagram_received(b"x" * 65507, ("10.0.0.1", 5))
    assert len(sent[0][0]) == 65507
    assert sent[0][0].startswith(b"kosmos-floater n x")


def _free_port() -> int:
    tcp, udp = app.bind_pair(0)
    port = int(tcp.getsockname()[1])
    tcp.close()
    udp.close()
    return port


def test_command_serves_until_sigterm_and_exits_0():
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": SRC, "PORT": str(port), "NODE_NAME": "node-c"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kosmos.launcher", "floater"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert f"floater node-c: HTTP and UDP echo on port {port} (:: dual-stack)" in line
        assert probe.udp("127.0.0.1", port, 2.0) == b"kosmos-floater node-c kosmos-netdoctor"
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert proc.wait(timeout=5) == 0
        assert time.monotonic() - started < 2.0
    finally:
        proc.kill()
        proc.wait()
