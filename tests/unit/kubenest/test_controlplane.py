"""The control-plane (VirtualClusterInit) reconciler on an in-memory host and a fake
provider: Preparing, PKI Secret, Initialized with the kubeconfig, refusals, teardown."""

from __future__ import annotations

import base64
import ssl
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from kosmos.api import names
from kosmos.api.objects import Obj, condition_of
from kosmos.api.resources import SECRETS, VIRTUAL_CLUSTERS
from kosmos.kube.controller import Request
from kosmos.kube.errors import KubeconfigError
from kosmos.kubenest import phases
from kosmos.kubenest.controlplane import ControlPlaneReconciler
from kosmos.kubenest.pki import TenantPKI
from kosmos.kubenest.provider import Addresses, ControlPlane, ProviderError
from kosmos.kubenest.tenants import Tenants
from tests.unit.kubenest.fakes import FakeClient, FakeInformer, FakeRecorder

NS = "test-521-8"


class FakeProvider:
    def __init__(self) -> None:
        self.ready = False
        self.error: Exception | None = None
        self.ensured: list[TenantPKI] = []
        self.destroyed: list[str] = []
        self.endpoint = "https://127.0.0.1:20001"
        self.wanted = Addresses()

    async def addresses(self, vc: Obj) -> Addresses:
        return self.wanted

    async def ensure(self, vc: Obj, pki: TenantPKI) -> ControlPlane:
        if self.error is not None:
            raise self.error
        self.ensured.append(pki)
        message = "" if self.ready else "waiting for kube-apiserver /readyz"
        return ControlPlane(self.endpoint, self.ready, message, {"apiserver": 20001})

    async def destroy(self, vc: Obj) -> None:
        self.destroyed.append(vc["metadata"]["name"])


class Rig:
    def __init__(self) -> None:
        self.host = FakeClient("host")
        self.provider = FakeProvider()
        self.recorder = FakeRecorder()
        self.occupied: list[str] = []
        self.forgotten: list[str] = []

        async def forget(key: str) -> None:
            self.forgotten.append(key)

        self.reconcile = ControlPlaneReconciler(
            self.host,  # type: ignore[arg-type]
            self.recorder,  # type: ignore[arg-type]
            self.provider,
            advertise_address="127.0.0.1",
            virtualclusters=FakeInformer(self.host, VIRTUAL_CLUSTERS),  # type: ignore[arg-type]
            occupied=lambda key: list(self.occupied),
            forget=forget,
        )

    def add_vc(self, name: str = NS, created: str = "2026-01-01T00:00:00Z", **spec: Any) -> None:
        meta = {"name": name, "namespace": NS, "creationTimestamp": created}
        spec = {"externalIP": "192.168.0.1", **spec}
        self.host.add(VIRTUAL_CLUSTERS, {"metadata": meta, "spec": spec})

    def vc(self, name: str = NS) -> Obj:
        found = self.host.find(VIRTUAL_CLUSTERS, name, NS)
        assert found is not None
        return found

    async def run(self, name: str = NS) -> float | None:
        result = await self.reconcile(Request("kosmos-root", NS, name))
        return None if result is None else result.requeue_after


def cond(vc: Obj, kind: str) -> tuple[str, str]:
    found = condition_of(vc, kind)
    assert found is not None, kind
    return found["status"], found["reason"]


async def test_a_new_cluster_is_prepared_with_a_finalizer_and_its_own_pki() -> None:
    rig = Rig()
    rig.add_vc()
    assert await rig.run() == 1.0  # control plane starting: look again soon
    vc = rig.vc()
    assert names.FINALIZER_VIRTUAL_CLUSTER in vc["metadata"]["finalizers"]
    assert vc["status"]["phase"] == phases.PREPARING
    assert cond(vc, phases.CONTROL_PLANE_READY) == ("False", phases.STARTING)
    assert condition_of(vc, phases.CONTROL_PLANE_READY)["message"] == (  # type: ignore[index]
        "waiting for kube-apiserver /readyz"
    )
    assert cond(vc, phases.READY)[0] == "False"
    assert vc["status"]["updateTime"]
    secret = rig.host.find(SECRETS, f"{NS}-cert", NS)
    assert secret is not None
    assert secret["metadata"]["labels"][names.LABEL_VIRTUAL_CLUSTER] == f"{NS}.{NS}"
    sans = rig.provider.ensured[0].certificate("apiserver").extensions
    assert "192.168.0.1" in str(sans)  # spec.externalIP is in the serving certificate


async def test_the_providers_addresses_are_in_the_certificates() -> None:
    rig = Rig()
    rig.provider.wanted = Addresses(("10.96.7.7", "10.2.0.11"), ("10.96.8.8", "etcd.ns.svc"))
    rig.add_vc()
    await rig.run()
    made = rig.provider.ensured[0]
    apiserver = str(made.certificate("apiserver").extensions)
    assert all(a in apiserver for a in ("10.96.7.7", "10.2.0.11", "192.168.0.1"))
    etcd = str(made.certificate("etcd-server").extensions)
    assert "10.96.8.8" in etcd and "etcd.ns.svc" in etcd and "127.0.0.1" in etcd


async def test_ready_publishes_the_kubeconfig_and_port_map_then_initialized() -> None:
    rig = Rig()
    rig.add_vc()
    await rig.run()
    rig.provider.ready = True
    assert await rig.run() == 30.0
    vc = rig.vc()
    assert vc["status"]["phase"] == phases.INITIALIZED
    assert vc["status"]["portMap"] == {"apiserver": 20001}
    assert cond(vc, phases.CONTROL_PLANE_READY) == ("True", phases.RUNNING)
    config = yaml.safe_load(base64.b64decode(vc["spec"]["kubeconfig"]))
    assert config["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:20001"
    admin = rig.host.find(SECRETS, f"{NS}-admin-config", NS)
    assert admin is not None
    assert base64.b64decode(admin["data"]["kubeconfig"]) == base64.b64decode(
        vc["spec"]["kubeconfig"]
    )
    # the PKI is made once: the second ensure got the Secret's CA back
    first, second = rig.provider.ensured
    assert first.files["ca.crt"] == second.files["ca.crt"]
    assert "Initialized" in rig.recorder.reasons()


async def test_a_provider_error_is_pending_with_the_cause_and_recovers() -> None:
    rig = Rig()
    rig.add_vc()
    rig.provider.error = ProviderError("kube-apiserver not in /bin: run kosmosctl local images")
    assert await rig.run() == 10.0
    vc = rig.vc()
    assert vc["status"]["phase"] == phases.PENDING
    assert cond(vc, phases.CONTROL_PLANE_READY) == ("False", phases.PROVIDER_ERROR)
    assert "kube-apiserver not in /bin" in vc["status"]["reason"]
    assert ("Warning", phases.PROVIDER_ERROR) in [(t, r) for t, r, _ in rig.recorder.events]
    rig.provider.error = None
    rig.provider.ready = True
    await rig.run()
    vc = rig.vc()
    assert vc["status"]["phase"] == phases.INITIALIZED
    assert "reason" not in vc["status"]


async def test_a_second_cluster_in_a_namespace_fails_naming_the_first() -> None:
    rig = Rig()
    rig.add_vc("first", created="2026-01-01T00:00:00Z")
    rig.add_vc("second", created="2026-01-01T00:00:05Z")
    await rig.run("first")
    assert await rig.run("second") is None
    vc = rig.vc("second")
    assert vc["status"]["phase"] == phases.FAILED
    assert cond(vc, phases.CONTROL_PLANE_READY) == ("False", phases.NAMESPACE_TAKEN)
    assert "'first'" in condition_of(vc, phases.READY)["message"]  # type: ignore[index]
    assert rig.host.find(SECRETS, "second-cert", NS) is None  # nothing made for it
    assert len(rig.provider.ensured) == 1


async def test_deletion_waits_for_the_nodes_then_destroys_everything() -> None:
    rig = Rig()
    rig.add_vc()
    rig.provider.ready = True
    await rig.run()
    await rig.run()
    stored = rig.vc()
    stored["metadata"]["deletionTimestamp"] = "2026-01-02T00:00:00Z"
    stored["spec"]["promoteResources"] = {"nodeInfos": [{"nodeName": "n1"}]}
    rig.host.add(VIRTUAL_CLUSTERS, stored)
    await rig.run()
    assert rig.vc()["status"]["phase"] == phases.DELETING
    assert await rig.run() == 1.0  # the node reconciler still returns n1
    assert rig.provider.destroyed == []
    stored = rig.vc()
    stored["spec"]["promoteResources"] = {"nodeInfos": []}
    rig.host.add(VIRTUAL_CLUSTERS, stored)
    rig.occupied = ["n1"]  # its GlobalNode not freed yet
    assert await rig.run() == 1.0
    rig.occupied = []
    assert await rig.run() is None
    assert rig.provider.destroyed == [NS]
    assert rig.host.find(SECRETS, f"{NS}-cert", NS) is None
    assert rig.host.find(SECRETS, f"{NS}-admin-config", NS) is None
    assert rig.host.find(VIRTUAL_CLUSTERS, NS, NS) is None  # finalizer gone: deleted
    assert rig.forgotten == [f"{NS}/{NS}"]


async def test_an_unchanged_status_is_not_rewritten() -> None:
    rig = Rig()
    rig.add_vc()
    rig.provider.ready = True
    await rig.run()
    writes = len(rig.host.log)
    await rig.run()
    assert rig.host.log[writes:] == []


async def test_a_cluster_started_before_its_rival_was_seen_is_undone_when_refused() -> None:
    rig = Rig()
    rig.add_vc("second", created="2026-01-01T00:00:05Z")
    await rig.run("second")  # the cache did not show "first" yet: it started
    assert rig.host.find(SECRETS, "second-cert", NS) is not None
    rig.add_vc("first", created="2026-01-01T00:00:00Z")
    await rig.run("second")
    assert rig.vc("second")["status"]["phase"] == phases.FAILED
    assert rig.provider.destroyed == ["second"]
    assert rig.host.find(SECRETS, "second-cert", NS) is None


async def test_the_published_kubeconfig_makes_a_tenant_client() -> None:
    rig = Rig()
    rig.add_vc()
    rig.provider.ready = True
    await rig.run()
    tenants = Tenants()
    client = await tenants.client(rig.vc())
    assert client.config.server == "https://127.0.0.1:20001"
    assert client.config.ssl_context is not None
    assert await tenants.client(rig.vc()) is client  # cached while the kubeconfig holds
    await tenants.close()


async def test_a_kubeconfig_that_is_not_base64_is_a_kubeconfig_error() -> None:
    rig = Rig()
    rig.add_vc(kubeconfig="not base64!")
    with pytest.raises(KubeconfigError, match="not base64"):
        await Tenants().client(rig.vc())


async def test_the_tenant_client_trusts_only_its_own_apiserver_and_is_admin(
    tmp_path: Path,
) -> None:
    """A TLS server with the tenant's apiserver certificate, asking for client certificates
    of the tenant's CA, answers the published kubeconfig's client as kosmos:tenant-admin."""
    rig = Rig()
    rig.add_vc()
    seen: list[str] = []

    async def api(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        subject = dict(x[0] for x in (peer or {}).get("subject", ()))
        seen.append(str(subject.get("commonName")))
        return web.json_response({"kind": "APIVersions", "versions": ["v1"]})

    await rig.run()  # makes the PKI; the control plane "starts"
    tenant_pki = rig.provider.ensured[0]
    for name, pem in tenant_pki.files.items():
        (tmp_path / name).write_bytes(pem)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(tmp_path / "ca.crt"))
    context.load_cert_chain(str(tmp_path / "apiserver.crt"), str(tmp_path / "apiserver.key"))
    context.verify_mode = ssl.CERT_REQUIRED
    app = web.Application()
    app.router.add_get("/api", api)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        rig.provider.endpoint, rig.provider.ready = f"https://127.0.0.1:{port}", True
        await rig.run()  # publishes the admin kubeconfig naming that server
        vc = rig.vc()
        tenants = Tenants()
        client = await tenants.client(vc)
        assert (await client.get_raw("/api"))["versions"] == ["v1"]
        assert seen == ["kosmos:tenant-admin"]
        await tenants.close()
    finally:
        await runner.cleanup()
