"""kosmos.kube.execute against a floater on a real node: the commands netdoctor runs.

One ``kosmos floater`` pod of our image per test module, on cluster1's first real node; every
check execs in it through the apiserver, as ``kosmosctl netdoctor`` does (a self pair).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from kosmos.kube import execute
from kosmos.kube.client import Client
from kosmos.kube.errors import BadRequest, NotFound
from tests.fixtures.clusters import LocalEnv
from tests.integration.realnodes.conftest import MEMBER, pod, running
from tests.support import apply, get

PORT = 8889
NAME = "floater"


@pytest.fixture(scope="module")
def floater(local_env: LocalEnv) -> Iterator[dict[str, Any]]:
    """The floater pod (Ready: its TCP readiness probe passed) in a namespace of its own."""
    kubectl = local_env.kubectl(MEMBER)
    namespace = f"t-execute-{int(time.time()) % 100000}"
    kubectl.run("create", "namespace", namespace)
    node = local_env.real_nodes(MEMBER)[0]
    body = pod(
        NAME,
        node,
        "kosmos",
        args=["floater"],
        env=[
            {"name": "PORT", "value": str(PORT)},
            {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        ],
        ports=[{"containerPort": PORT, "protocol": p} for p in ("TCP", "UDP")],
        readinessProbe={"tcpSocket": {"port": PORT}, "periodSeconds": 1},
    )
    try:
        apply(kubectl, body, namespace=namespace)
        yield running(kubectl, namespace, NAME)[NAME]
    finally:
        kubectl.run("delete", "namespace", namespace, "--wait=false", "--ignore-not-found")


@pytest.fixture
async def client(local_env: LocalEnv) -> AsyncIterator[Client]:
    c = await local_env.client(MEMBER)
    yield c
    await c.close()


def _where(floater: dict[str, Any]) -> tuple[str, str, str]:
    return floater["metadata"]["namespace"], floater["spec"]["nodeName"], NAME


def _ips(floater: dict[str, Any]) -> list[str]:
    return [entry["ip"] for entry in floater["status"]["podIPs"]]


async def test_curl_reaches_the_floater_over_http(client: Client, floater: dict[str, Any]):
    namespace, node, name = _where(floater)
    for ip in _ips(floater):
        host = f"[{ip}]" if ":" in ip else ip
        command = ["curl", "-sS", "-g", "-m", "5", f"http://{host}:{PORT}/"]
        result = await execute.run(client, namespace, name, command)
        assert result == execute.ExecResult(f"OK {node}\n", "", 0), ip


async def test_the_udp_probe_gets_the_echo(client: Client, floater: dict[str, Any]):
    namespace, node, name = _where(floater)
    for ip in _ips(floater):
        command = ["python3", "-m", "kosmos.floater.probe", "udp", ip, str(PORT), "--timeout", "5"]
        result = await execute.run(client, namespace, name, command)
        assert result.ok, result
        assert result.stdout == f"kosmos-floater {node} kosmos-netdoctor\n"
    closed = ["python3", "-m", "kosmos.floater.probe", "udp", "127.0.0.1", "1", "--timeout", "1"]
    result = await execute.run(client, namespace, name, closed)
    assert (result.exit_code, result.stderr) == (1, "udp 127.0.0.1:1: Connection refused\n")


async def test_nslookup_asks_the_clusters_dns(
    client: Client, floater: dict[str, Any], local_env: LocalEnv
):
    namespace, _, name = _where(floater)
    kube_dns = get(local_env.kubectl(MEMBER), "service", "kube-dns", "-n", "kube-system")
    server = kube_dns["spec"]["clusterIP"]
    command = ["nslookup", "-timeout=5", "kubernetes.default.svc.cluster.local", server]
    result = await execute.run(client, namespace, name, command)
    assert result.ok, result
    assert "Name:\tkubernetes.default.svc.cluster.local" in result.stdout


async def test_exit_codes_streams_and_missing_binaries(client: Client, floater: dict[str, Any]):
    namespace, _, name = _where(floater)
    script = ["sh", "-c", "echo out; echo err >&2; exit 3"]
    result = await execute.run(client, namespace, name, script, container="main")
    assert (result.stdout, result.stderr, result.exit_code) == ("out\n", "err\n", 3)
    assert result.error
    missing = await execute.run(client, namespace, name, ["no-such-binary"])
    assert missing.exit_code is None
    assert missing.error is not None and "no-such-binary" in missing.error


async def test_timeout_and_refusals(client: Client, floater: dict[str, Any]):
    namespace, _, name = _where(floater)
    started = time.monotonic()
    result = await execute.run(client, namespace, name, ["sleep", "30"], timeout=1.5)
    assert time.monotonic() - started < 4
    assert (result.exit_code, result.error) == (None, "timed out after 1.5 s")
    with pytest.raises(NotFound):
        await execute.run(client, namespace, "no-such-pod", ["true"])
    with pytest.raises(BadRequest, match="container nope is not valid for pod floater"):
        await execute.run(client, namespace, name, ["true"], container="nope")


async def test_round_trip_and_probe_start_times(client: Client, floater: dict[str, Any]):
    """Measured, loosely bounded: what one check costs beside the network."""
    namespace, _, name = _where(floater)
    trips = []
    for _ in range(5):
        started = time.monotonic()
        assert (await execute.run(client, namespace, name, ["true"])).ok
        trips.append(time.monotonic() - started)
    timer = (
        "import subprocess, sys, time\n"
        "runs = []\n"
        "for _ in range(5):\n"
        "    t = time.monotonic()\n"
        "    subprocess.run([sys.executable, '-m', 'kosmos.floater.probe', 'udp', '127.0.0.1',"
        f" '{PORT}', '--timeout', '5'], check=True, capture_output=True)\n"
        "    runs.append(time.monotonic() - t)\n"
        "print(sorted(runs)[2])\n"
    )
    result = await execute.run(client, namespace, name, ["python3", "-c", timer], timeout=30)
    assert result.ok, result
    probe = float(result.stdout)
    argv = ["python3", "-X", "importtime", "-m", "kosmos.floater.probe", "udp", "::1", str(PORT)]
    result = await execute.run(client, namespace, name, argv)
    assert result.ok, result
    imports = _top_level_imports(result.stderr)
    assert not imports.keys() & {"aiohttp", "click", "asyncio"}, imports
    trip = statistics.median(trips)
    print(
        f"exec round trip median {trip * 1000:.0f} ms; probe start to exit {probe * 1000:.0f} ms,"
        f" imports {sum(imports.values()) / 1000:.0f} ms: {imports}"
    )
    assert trip < 2.0
    assert probe < 1.0


def _top_level_imports(importtime: str) -> dict[str, int]:
    """Cumulative microseconds of each top-level import in ``-X importtime`` output."""
    found = {}
    for line in importtime.splitlines():
        if line.startswith("import time:") and "|" in line:
            _, cumulative, name = line.removeprefix("import time:").split("|")
            if cumulative.strip().isdigit() and not name.startswith("  "):
                found[name.strip()] = int(cumulative)
    return found
