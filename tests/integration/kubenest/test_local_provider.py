"""The local provider with the real binaries (~/.cache/kosmos/bin): two tenants started from
nothing, each answering only its own admin, a kwok node made Ready by the tenant's kwok,
the tenant's CoreDNS answering for its ``kubernetes`` Service, adoption by a restarted
operator, and nothing left after destroy.

Needs no local environment: the tenants run in a temporary state directory on ports
``KOSMOS_KUBENEST_TEST_PORTS`` (default 21000-21099). Prints the start time and the idle RSS.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import dns.message
import dns.query
import pytest

from kosmos.api.objects import Obj
from kosmos.kubenest import components, processes
from kosmos.kubenest.local import LocalProvider
from kosmos.kubenest.pki import ADMIN, CA, TenantPKI
from kosmos.kubenest.provider import ControlPlane
from kosmos.kubenest.settings import Settings
from tests.support import require

BIN = Path(os.environ.get("KOSMOS_KUBENEST_BIN", "~/.cache/kosmos/bin")).expanduser()
LOW, HIGH = (int(p) for p in os.environ.get("KOSMOS_KUBENEST_TEST_PORTS", "21000-21099").split("-"))
READY_WITHIN = 90.0
NODE = """apiVersion: v1
kind: Node
metadata:
  name: kn-fake-0
  labels: {kwok.x-k8s.io/node: fake, type: kwok}
  annotations: {kwok.x-k8s.io/node: fake}
spec: {}
"""


def vc(name: str) -> Obj:
    return {"metadata": {"namespace": "kn-test", "name": name}}


@pytest.fixture
async def provider(tmp_path: Path) -> AsyncIterator[LocalProvider]:
    missing = [b for b in [*components.BINARIES.values(), "kubectl"] if not (BIN / b).is_file()]
    require(not missing, f"{BIN} lacks {missing} (kosmosctl local toolchain builds them)")
    settings = Settings("local", tmp_path / "state", BIN, (LOW, HIGH), "127.0.0.1")
    local = LocalProvider(settings)
    yield local
    for name in ("a", "b"):
        await local.destroy(vc(name))


async def until_ready(
    provider: LocalProvider, obj: Obj, pki: TenantPKI
) -> tuple[ControlPlane, float]:
    start = time.monotonic()
    while True:
        plane = await provider.ensure(obj, pki)
        elapsed = time.monotonic() - start
        if plane.ready:
            return plane, elapsed
        assert elapsed < READY_WITHIN, f"not ready after {elapsed:.0f}s: {plane.message}"
        await asyncio.sleep(0.2)


def kubectl(kubeconfig: Path, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [str(BIN / "kubectl"), f"--kubeconfig={kubeconfig}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def status_with(endpoint: str, ca: Path, cert: Path, key: Path) -> int:
    context = ssl.create_default_context(cafile=str(ca))
    context.load_cert_chain(str(cert), str(key))
    async with aiohttp.ClientSession() as session, session.get(f"{endpoint}/api", ssl=context) as r:
        return r.status


def write_admin(provider: LocalProvider, obj: Obj, pki: TenantPKI, plane: ControlPlane) -> Path:
    path = provider.layout(obj).dir / "user-admin.kubeconfig"
    path.write_text(provider.admin_kubeconfig(obj, pki, plane.ports["apiserver"]))
    return path


async def test_two_tenants(provider: LocalProvider) -> None:
    pki_a = TenantPKI.create("kn-test/a", ["127.0.0.1"])
    plane_a, took = await until_ready(provider, vc("a"), pki_a)
    print(f"\ntenant a: nothing -> /readyz in {took:.1f}s")
    admin_a = write_admin(provider, vc("a"), pki_a, plane_a)
    assert "kube-system" in kubectl(admin_a, "get", "namespaces", "-o", "name")

    pki_b = TenantPKI.create("kn-test/b", ["127.0.0.1"])
    plane_b, took_b = await until_ready(provider, vc("b"), pki_b)
    print(f"tenant b: nothing -> /readyz in {took_b:.1f}s")
    assert not set(plane_a.ports.values()) & set(plane_b.ports.values())

    layout_a, layout_b = provider.layout(vc("a")), provider.layout(vc("b"))
    ca_a = layout_a.crt(CA)
    own = await status_with(plane_a.endpoint, ca_a, layout_a.crt(ADMIN), layout_a.key(ADMIN))
    foreign = await status_with(plane_a.endpoint, ca_a, layout_b.crt(ADMIN), layout_b.key(ADMIN))
    assert (own, foreign) == (200, 401)

    kubectl(admin_a, "apply", "-f", "-", stdin=NODE)
    kubectl(admin_a, "wait", "--for=condition=Ready", "node/kn-fake-0", "--timeout=60s")

    await asyncio.sleep(10)  # idle: the start's work is done
    pids = provider.pids(vc("a"))
    assert len(pids) == len(components.PROCESSES)
    print(
        f"tenant a idle RSS: {processes.rss_bytes(pids) / 2**20:.0f} MiB over {len(pids)} processes"
    )
    for component in components.PROCESSES:
        pid = processes.running(layout_a.dir, component)
        assert pid is not None
        print(f"  {component}: {processes.rss_bytes([pid]) / 2**20:.0f} MiB")

    query = dns.message.make_query("kubernetes.default.svc.cluster.local", "A")
    answer = dns.query.udp(query, "127.0.0.1", port=plane_a.ports["coredns"], timeout=5)
    assert [item.address for rrset in answer.answer for item in rrset] == ["10.96.0.1"]

    restarted = LocalProvider(provider.settings)  # a restarted operator adopts every process
    again = await restarted.ensure(vc("a"), pki_a)
    assert again.ready and again.ports == plane_a.ports and restarted.pids(vc("a")) == pids

    await provider.destroy(vc("a"))
    await provider.destroy(vc("b"))
    assert not layout_a.dir.exists() and not layout_b.dir.exists()
    assert not any(processes.owns(pid, layout_a.dir) for pid in pids)
