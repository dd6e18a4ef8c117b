"""The in-cluster provider on an in-memory host: Services first (their addresses go into the
certificates), the endpoint's node, what is pending, readiness, conflicts and destroy."""

from __future__ import annotations

import itertools
import ssl
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from kosmos.api import names
from kosmos.api.objects import Obj
from kosmos.api.resources import (
    DEPLOYMENTS,
    NODES,
    PODDISRUPTIONBUDGETS,
    PODS,
    SECRETS,
    SERVICES,
    STATEFULSETS,
    Resource,
)
from kosmos.kubenest import incluster, phases, workloads
from kosmos.kubenest.incluster import InClusterProvider
from kosmos.kubenest.pki import TenantPKI
from kosmos.kubenest.provider import ProviderError
from kosmos.kubenest.settings import Settings
from tests.unit.kubenest.fakes import FakeClient

NS = "test-521-8"
VC: Obj = {
    "apiVersion": "kosmos.io/v1alpha1",
    "kind": "VirtualCluster",
    "metadata": {"name": NS, "namespace": NS, "uid": "uid-vc"},
    "spec": {"externalIP": "192.168.0.1"},
}


class FakeHost(FakeClient):
    """Allocates ClusterIPs and NodePorts on Service creation, as an apiserver does."""

    def __init__(self) -> None:
        super().__init__("host")
        self.ips = (f"10.96.1.{i}" for i in itertools.count(10))
        self.ports = itertools.count(30100)

    async def create(self, resource: Resource, body: Obj, namespace: str | None = None) -> Obj:
        if resource is SERVICES:
            spec = body["spec"]
            spec["clusterIP"] = next(self.ips)
            if spec["type"] == "NodePort":
                spec["ports"] = [{**p, "nodePort": next(self.ports)} for p in spec["ports"]]
        return await super().create(resource, body, namespace)

    async def apply(self, resource: Resource, body: Obj, **kwargs: Any) -> Obj:
        """An apply leaves the status alone."""
        meta = body["metadata"]
        current = self.find(resource, meta["name"], meta.get("namespace"))
        status = {"status": current["status"]} if current and "status" in current else {}
        return await super().apply(resource, {**body, **status}, **kwargs)


def node(name: str, ip: str, **labels: str) -> Obj:
    return {
        "metadata": {"name": name, "labels": labels},
        "status": {
            "addresses": [{"type": "InternalIP", "address": ip}],
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


@pytest.fixture
def host() -> FakeHost:
    fake = FakeHost()
    fake.add(NODES, node("host-node1", "10.2.0.2", **{names.LABEL_KWOK_NODE: "fake"}))
    fake.add(NODES, node("host-real2", "10.2.0.12"))
    fake.add(NODES, node("host-real1", "10.2.0.11"))
    fake.add(NODES, node("kosmos-c1", "10.2.0.3", **{names.LABEL_NODE: "true"}))
    return fake


def settings(advertise: str = "127.0.0.1", **kwargs: Any) -> Settings:
    return Settings("in-cluster", Path("/s"), Path("/b"), (1, 2), advertise, **kwargs)


async def pki_for(provider: InClusterProvider) -> TenantPKI:
    """What the control-plane reconciler does: ask for addresses, then make the PKI."""
    wanted = await provider.addresses(VC)
    sans = phases.certificate_addresses(VC, provider.settings.advertise_address, *wanted.apiserver)
    return TenantPKI.create(phases.vc_key(VC), sans, wanted.etcd)


def mark_ready(host: FakeHost) -> None:
    for (plural, _ns, _name), obj in host.objects.items():
        if plural == "deployments":
            obj["status"] = {"availableReplicas": 1}
        if plural == "statefulsets":
            obj["status"] = {"readyReplicas": 1}


async def test_addresses_create_the_services_and_name_runnable_nodes(host: FakeHost) -> None:
    provider = InClusterProvider(settings(), host)  # type: ignore[arg-type]
    wanted = await provider.addresses(VC)
    api = host.find(SERVICES, "apiserver", NS)
    etcd = host.find(SERVICES, "etcd", NS)
    assert api is not None and etcd is not None
    assert incluster.cluster_ip(api) in wanted.apiserver
    assert f"apiserver.{NS}.svc" in wanted.apiserver
    assert "10.2.0.11" in wanted.apiserver and "10.2.0.12" in wanted.apiserver
    assert "10.2.0.2" not in wanted.apiserver  # kwok's node runs nothing
    assert "10.2.0.3" not in wanted.apiserver  # nor does a leaf node
    assert "127.0.0.1" not in wanted.apiserver
    assert wanted.etcd[0] == incluster.cluster_ip(etcd)
    dns = host.find(SERVICES, "coredns", NS)
    assert dns is not None
    ports = dns["spec"]["ports"]
    assert {p["protocol"] for p in ports} == {"UDP", "TCP"}
    assert len({p["nodePort"] for p in ports}) == 1  # one port for both (kubenest.dns)
    assert await provider.addresses(VC) == wanted  # created once


async def test_ensure_applies_everything_then_reports_ready(
    host: FakeHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = InClusterProvider(settings(), host)  # type: ignore[arg-type]
    monkeypatch.setattr(workloads, "stages", lambda: b"kind: Stage\n")
    tenant = await pki_for(provider)
    plane = await provider.ensure(VC, tenant)
    assert not plane.ready
    assert "apiserver: starting" in plane.message and "etcd: starting" in plane.message
    api_port = incluster.node_port(host.find(SERVICES, "apiserver", NS) or {})
    assert plane.endpoint == f"https://10.2.0.11:{api_port}"  # first runnable node by name
    assert plane.ports["apiserver"] == api_port and plane.ports["coredns"] > 0
    assert host.find(STATEFULSETS, "etcd", NS) is not None
    assert host.find(DEPLOYMENTS, "apiserver", NS) is not None
    assert "kcm: waits for the apiserver" in plane.message
    for name in ("kcm", "scheduler", "kwok", "coredns"):  # once the apiserver is up
        assert host.find(DEPLOYMENTS, name, NS) is None
    assert host.find(SECRETS, f"{NS}-control-plane", NS) is not None
    assert host.find(PODDISRUPTIONBUDGETS, "control-plane", NS) is not None
    kept = host.find(SERVICES, "apiserver", NS) or {}
    assert kept["metadata"]["annotations"][incluster.ANNOTATION_ADVERTISE] == "10.2.0.11"

    plane = await provider.ensure(VC, tenant)
    assert "apiserver: 0/1 ready" in plane.message and "etcd: 0/1 ready" in plane.message
    answers: list[str | None] = ["not asked", "connection refused", None]

    async def ready(self: Any, vc: Obj, url: str, pki: TenantPKI) -> str | None:
        return answers.pop(0)

    monkeypatch.setattr(InClusterProvider, "_ready", ready)
    mark_ready(host)
    plane = await provider.ensure(VC, tenant)  # the apiserver is Available: the rest start
    assert not plane.ready and "kcm: waits for the apiserver" in plane.message
    for name in ("kcm", "scheduler", "kwok", "coredns"):
        assert host.find(DEPLOYMENTS, name, NS) is not None
    mark_ready(host)
    plane = await provider.ensure(VC, tenant)
    assert not plane.ready and plane.message == "apiserver not ready: connection refused"
    plane = await provider.ensure(VC, tenant)
    assert plane.ready and plane.message == ""


async def test_a_pods_trouble_is_in_the_message(
    host: FakeHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = InClusterProvider(settings(), host)  # type: ignore[arg-type]
    monkeypatch.setattr(workloads, "stages", lambda: b"")
    tenant = await pki_for(provider)
    pod = {
        "metadata": {
            "name": "apiserver-x",
            "namespace": NS,
            "labels": workloads.labels(VC, "apiserver"),
        },
        "status": {
            "containerStatuses": [
                {"state": {"waiting": {"reason": "ErrImageNeverPull", "message": "not present"}}}
            ]
        },
    }
    host.add(PODS, pod)
    plane = await provider.ensure(VC, tenant)
    assert "apiserver: starting (ErrImageNeverPull: not present)" in plane.message


async def test_the_advertise_address_wins_and_control_plane_nodes_come_first(
    host: FakeHost,
) -> None:
    cp = node("host-master", "10.2.0.20", **{"node-role.kubernetes.io/control-plane": ""})
    host.add(NODES, cp)
    nodes = (await host.list(NODES)).items
    assert incluster.candidates(nodes, {}) == ["10.2.0.20", "10.2.0.11", "10.2.0.12"]
    assert incluster.candidates(nodes, {"zone": "a"}) == []
    provider = InClusterProvider(settings("192.0.2.9"), host)  # type: ignore[arg-type]
    wanted = await provider.addresses(VC)
    assert "192.0.2.9" in wanted.apiserver


async def test_a_certificate_that_misses_the_nodes_is_a_clear_error(
    host: FakeHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = InClusterProvider(settings(), host)  # type: ignore[arg-type]
    monkeypatch.setattr(workloads, "stages", lambda: b"")
    await provider.addresses(VC)
    stale = TenantPKI.create(phases.vc_key(VC), ["192.168.0.1"])
    with pytest.raises(ProviderError, match=f"delete Secret {NS}-cert"):
        await provider.ensure(VC, stale)


async def test_a_foreign_service_is_not_taken(host: FakeHost) -> None:
    host.add(
        SERVICES,
        {"metadata": {"name": "etcd", "namespace": NS}, "spec": {"clusterIP": "10.96.9.9"}},
    )
    provider = InClusterProvider(settings(), host)  # type: ignore[arg-type]
    with pytest.raises(ProviderError, match=f"Service {NS}/etcd exists and is not this virtual"):
        await provider.addresses(VC)


async def test_a_foreign_deployment_is_not_taken_over(
    host: FakeHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = InClusterProvider(settings(), host)  # type: ignore[arg-type]
    monkeypatch.setattr(workloads, "stages", lambda: b"")
    tenant = await pki_for(provider)
    host.add(DEPLOYMENTS, {"metadata": {"name": "scheduler", "namespace": NS}})
    with pytest.raises(ProviderError, match=f"Deployment {NS}/scheduler exists and is not this"):
        await provider.ensure(VC, tenant)
    assert host.find(DEPLOYMENTS, "apiserver", NS) is None  # nothing applied


async def test_destroy_deletes_only_the_control_planes_objects(
    host: FakeHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = InClusterProvider(settings(), host)  # type: ignore[arg-type]
    monkeypatch.setattr(workloads, "stages", lambda: b"")
    tenant = await pki_for(provider)
    host.add(
        SECRETS,
        {"metadata": {"name": f"{NS}-cert", "namespace": NS, "labels": workloads.labels(VC)}},
    )
    host.add(DEPLOYMENTS, {"metadata": {"name": "mine", "namespace": NS}})
    await provider.ensure(VC, tenant)
    await provider.destroy(VC)
    left = sorted((plural, name) for (plural, ns, name) in host.objects if ns == NS)
    assert left == [("deployments", "mine"), ("secrets", f"{NS}-cert")]
    await provider.destroy(VC)  # idempotent


async def test_readyz_is_asked_as_the_tenants_admin_through_the_endpoint(
    host: FakeHost, tmp_path: Path
) -> None:
    """A TLS server with the tenant's apiserver certificate answers /readyz: 500 with the
    failing check, then 200; the provider's client (cached per tenant) says which."""
    provider = InClusterProvider(settings(), host)  # type: ignore[arg-type]
    tenant = TenantPKI.create(phases.vc_key(VC), [])
    answers = [
        web.Response(status=500, text="[+]ping ok\n[-]etcd failed\n"),
        web.Response(text="ok"),
    ]

    async def readyz(request: web.Request) -> web.Response:
        return answers.pop(0)

    for name, pem in tenant.files.items():
        (tmp_path / name).write_bytes(pem)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(tmp_path / "ca.crt"))
    context.load_cert_chain(str(tmp_path / "apiserver.crt"), str(tmp_path / "apiserver.key"))
    context.verify_mode = ssl.CERT_REQUIRED
    app = web.Application()
    app.router.add_get("/readyz", readyz)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"https://127.0.0.1:{port}"
    try:
        problem = await provider._ready(VC, url, tenant)
        assert problem is not None and "etcd failed" in problem
        assert await provider._ready(VC, url, tenant) is None
        gone = await provider._ready(VC, "https://127.0.0.1:1", tenant)
        assert gone is not None
    finally:
        await provider.destroy(VC)
        await runner.cleanup()


async def test_an_unchanged_body_is_not_applied_again_while_starting(
    host: FakeHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = InClusterProvider(settings(), host)  # type: ignore[arg-type]
    monkeypatch.setattr(workloads, "stages", lambda: b"kind: Stage\n")
    tenant = await pki_for(provider)
    await provider.ensure(VC, tenant)
    first = [entry for entry in host.log if entry[0] == "apply"]
    assert ("apply", "deployments", "apiserver") in first
    host.log.clear()
    await provider.ensure(VC, tenant)
    assert [entry for entry in host.log if entry[0] == "apply"] == []
    del host.objects[("deployments", NS, "apiserver")]  # deleted behind our back
    host.log.clear()
    await provider.ensure(VC, tenant)
    assert [e for e in host.log if e[0] == "apply"] == [("apply", "deployments", "apiserver")]
    monkeypatch.setattr(incluster, "REAPPLY_AFTER", 0.0)  # a while later: everything again
    host.log.clear()
    await provider.ensure(VC, tenant)
    assert [e for e in host.log if e[0] == "apply"] == first
