"""``kosmos eps-probe`` against the real host apiserver, with real TCP probes.

The prober process watches the host's ServiceImports. One import lists two loopback
addresses on one port: 127.0.0.1 with a listener that accepts, 127.0.0.2 with a listener
whose accept queue is full, so the kernel drops every SYN to it (a timeout, as behind a
dropped route; no outside address will do here, since this machine's egress accepts any
connection). The prober marks only the latter after the failure threshold; closing that
listener makes the address refuse (RST: reachable), and the mark clears. A mark an earlier
prober left clears as soon as the address answers once; a UDP-only import is never marked.
The times to mark and to clear are printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Iterator

import pytest

from kosmos.api import names
from kosmos.api.resources import SERVICE_IMPORTS
from kosmos.kube.client import Client
from tests.fixtures.clusters import LocalEnv
from tests.support import wait_for_async

ADDR, DISC = names.ANNOTATION_ADDRESS, names.ANNOTATION_DISCONNECTED
BLACKHOLE = "127.0.0.2"  # a full accept queue there: SYNs dropped
INTERVAL, TIMEOUT, THRESHOLD = 1.0, 1.0, 2


def service_import(name: str, ns: str, addresses: str, port: int, **annotations: str) -> dict:
    return {
        "apiVersion": SERVICE_IMPORTS.api_version,
        "kind": "ServiceImport",
        "metadata": {
            "name": name,
            "namespace": ns,
            "annotations": {ADDR: addresses, **annotations},
        },
        "spec": {"type": "ClusterSetIP", "ports": [{"port": port, "protocol": "TCP"}]},
    }


@pytest.fixture
async def listener() -> AsyncIterator[int]:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


@contextlib.contextmanager
def blackhole(port: int) -> Iterator[None]:
    """A listener on BLACKHOLE:port that never accepts, its queue filled: SYNs are dropped."""
    server = socket.socket()
    server.bind((BLACKHOLE, port))
    server.listen(0)
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect((BLACKHOLE, port))
        fillers.append(filler)
    try:
        yield
    finally:
        for sock in (*fillers, server):
            sock.close()


@pytest.fixture
async def host(local_env: LocalEnv, kosmos_crds: list[str]) -> AsyncIterator[Client]:
    client = await local_env.client(local_env.host)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
def prober(local_env: LocalEnv, kosmos_crds: list[str]) -> subprocess.Popen[bytes]:
    argv = [
        sys.executable, "-m", "kosmos.launcher", "eps-probe",
        "--kubeconfig", str(local_env.kubeconfig(local_env.host)),
        "--health-port", "0", "--bind-address", "127.0.0.1",
        f"--interval={INTERVAL}", f"--timeout={TIMEOUT}", f"--failure-threshold={THRESHOLD}",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    process = subprocess.Popen(argv, env=env)
    yield process
    process.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(10)
    process.kill()


async def disconnected(client: Client, ns: str, name: str) -> str | None:
    obj = await client.get(SERVICE_IMPORTS, name, ns)
    return (obj["metadata"].get("annotations") or {}).get(DISC)


async def test_prober_marks_the_unreachable_address_and_clears_it(
    host: Client, namespace: str, listener: int, prober: subprocess.Popen[bytes]
):
    async def current() -> str | None:
        return await disconnected(host, namespace, "web")

    with blackhole(listener):
        started = time.monotonic()
        body = service_import("web", namespace, f"127.0.0.1,{BLACKHOLE}", listener)
        await host.create(SERVICE_IMPORTS, body)
        await wait_for_async(
            lambda: _is(current(), BLACKHOLE), 30, "the blackholed address to be marked"
        )
        mark = time.monotonic() - started
        await asyncio.sleep(INTERVAL * 3)
        assert await current() == BLACKHOLE  # stays marked while it fails
        started = time.monotonic()
    await wait_for_async(lambda: _is(current(), None), 10, "the mark to clear")
    clear = time.monotonic() - started
    print(
        f"\nmarked disconnected {mark:.2f}s after the import was created (the prober "
        f"process starting meanwhile; interval {INTERVAL}s, timeout {TIMEOUT}s, threshold "
        f"{THRESHOLD}); "
        f"cleared {clear:.2f}s after the address answered again"
    )
    assert clear <= INTERVAL + TIMEOUT + 1.0

    started = time.monotonic()
    with blackhole(listener):
        await wait_for_async(lambda: _is(current(), BLACKHOLE), 30, "marked again")
        print(f"marked again {time.monotonic() - started:.2f}s after the address failed again")
        patch = {"metadata": {"annotations": {ADDR: "127.0.0.1"}}}
        started = time.monotonic()
        await host.patch(SERVICE_IMPORTS, "web", patch, namespace=namespace)
        await wait_for_async(lambda: _is(current(), None), 10, "the mark to go with the address")
    print(f"cleared {time.monotonic() - started:.2f}s after the address left kosmos.io/address")


async def _is(value: Awaitable[str | None], expected: str | None) -> bool:
    return await value == expected


async def test_an_earlier_mark_clears_after_one_success_and_udp_is_never_marked(
    host: Client, namespace: str, listener: int, prober: subprocess.Popen[bytes]
):
    marked = service_import("back", namespace, "127.0.0.1", listener, **{DISC: "127.0.0.1"})
    udp = service_import("udp", namespace, BLACKHOLE, 53)
    udp["spec"]["ports"][0]["protocol"] = "UDP"
    started = time.monotonic()
    await host.create(SERVICE_IMPORTS, marked)
    await host.create(SERVICE_IMPORTS, udp)

    async def cleared() -> bool:
        return await disconnected(host, namespace, "back") is None

    await wait_for_async(cleared, 15, "the earlier mark to clear")
    print(f"\nan earlier mark cleared after {time.monotonic() - started:.2f}s")
    await asyncio.sleep(THRESHOLD * (INTERVAL + TIMEOUT) + 1)
    assert await disconnected(host, namespace, "udp") is None
