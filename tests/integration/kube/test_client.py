"""kosmos.kube.Client against a real apiserver: CRUD, SSA, status, preconditions, discovery."""

from __future__ import annotations

import pytest

from kosmos.api.resources import CONFIGMAPS, CUSTOMRESOURCEDEFINITIONS, NAMESPACES
from kosmos.kube import config as kube_config
from kosmos.kube.client import Client
from kosmos.kube.errors import (
    AlreadyExists,
    Conflict,
    ConnectError,
    Forbidden,
    Invalid,
    KubeconfigError,
    NotFound,
)
from tests.fixtures.clusters import LocalEnv
from tests.support import wait_for_async


@pytest.fixture
async def member(local_env: LocalEnv):
    client = await local_env.client(local_env.members[0])
    yield client
    await client.close()


def cm(name: str, namespace: str, **data: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": data,
    }


async def test_crud_with_typed_errors(member: Client, namespace: str):
    created = await member.create(CONFIGMAPS, cm("a", namespace, k="1"))
    assert created["metadata"]["uid"]
    with pytest.raises(AlreadyExists):
        await member.create(CONFIGMAPS, cm("a", namespace))
    got = await member.get(CONFIGMAPS, "a", namespace)
    got["data"]["k"] = "2"
    await member.replace(CONFIGMAPS, got)
    with pytest.raises(Conflict):  # stale resourceVersion
        await member.replace(CONFIGMAPS, got)
    patched = await member.patch(CONFIGMAPS, "a", {"data": {"j": "x"}}, namespace=namespace)
    assert patched["data"] == {"k": "2", "j": "x"}
    patched = await member.patch(
        CONFIGMAPS,
        "a",
        [{"op": "remove", "path": "/data/j"}],
        namespace=namespace,
        patch_type="json",
    )
    assert patched["data"] == {"k": "2"}
    with pytest.raises(Conflict):  # UID precondition
        await member.delete(CONFIGMAPS, "a", namespace, uid="00000000-0000-0000-0000-000000000000")
    await member.delete(CONFIGMAPS, "a", namespace, uid=created["metadata"]["uid"])
    with pytest.raises(NotFound, match="cluster cluster1: get configmaps"):
        await member.get(CONFIGMAPS, "a", namespace)


async def test_server_side_apply_owns_fields_and_invalid_carries_causes(
    member: Client, namespace: str
):
    body = cm("applied", namespace, a="1")
    first = await member.apply(CONFIGMAPS, body, field_manager="kosmos-test")
    managers = {m["manager"] for m in first["metadata"]["managedFields"]}
    assert "kosmos-test" in managers
    body["data"] = {"b": "2"}
    second = await member.apply(CONFIGMAPS, body, field_manager="kosmos-test")
    assert second["data"] == {"b": "2"}  # fields no longer applied are removed
    bad = cm("Not_Valid", namespace)
    with pytest.raises(Invalid) as info:
        await member.create(CONFIGMAPS, bad)
    assert info.value.causes and info.value.causes[0]["field"] == "metadata.name"


async def test_paginated_list_and_status_subresource(member: Client, namespace: str):
    for i in range(7):
        await member.create(CONFIGMAPS, cm(f"p{i}", namespace))
    listed = await member.list(CONFIGMAPS, namespace, limit=3)
    names = sorted(o["metadata"]["name"] for o in listed.items)
    assert [n for n in names if n.startswith("p")] == [f"p{i}" for i in range(7)]
    assert int(listed.resource_version) > 0
    ns = await member.get(NAMESPACES, namespace)
    ns["status"]["conditions"] = [
        {
            "type": "KosmosTest",
            "status": "True",
            "reason": "Test",
            "message": "status write",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }
    ]
    await member.update_status(NAMESPACES, ns)
    conditions = (await member.get(NAMESPACES, namespace))["status"]["conditions"]
    assert any(c["type"] == "KosmosTest" for c in conditions)


async def test_discovery_finds_a_crd_and_its_objects_work(member: Client, namespace: str):
    group = "wire.kosmos.io"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }
    await member.apply(CUSTOMRESOURCEDEFINITIONS, crd, field_manager="kosmos-test", force=True)
    widgets = await wait_for_async(
        lambda: member.resource_for(f"{group}/v1", "Widget"),
        10,
        "discovery to serve the Widget CRD",
        interval=0.2,
        ignoring=(Exception,),
    )
    assert widgets.plural == "widgets" and widgets.namespaced
    await member.create(
        widgets,
        {
            "apiVersion": f"{group}/v1",
            "kind": "Widget",
            "metadata": {"name": "w", "namespace": namespace},
            "spec": {},
        },
    )
    assert (await member.get(widgets, "w", namespace))["kind"] == "Widget"


async def test_bad_kubeconfigs_fail_with_the_cluster_and_cause(tmp_path, local_env: LocalEnv):
    broken = tmp_path / "broken"
    broken.write_text("clusters: [unclosed")
    with pytest.raises(KubeconfigError, match="cluster m9: .*broken is not valid YAML"):
        await kube_config.from_kubeconfig("m9", broken)
    with pytest.raises(KubeconfigError, match="cluster m9: kubeconfig .*missing"):
        await kube_config.from_kubeconfig("m9", tmp_path / "missing")
    nowhere = await kube_config.from_kubeconfig("m9", local_env.kubeconfig(local_env.host))
    nowhere.server = "https://127.0.0.1:1"
    client = Client(nowhere)
    try:
        with pytest.raises(ConnectError, match="cluster m9: .*cannot reach https://127.0.0.1:1"):
            await client.get_raw("/version")
    finally:
        await client.close()


async def test_missing_rights_are_forbidden_naming_cluster_and_request(local_env: LocalEnv):
    """A token for a service account without RBAC: the apiserver says 403, we say which."""
    host = await local_env.client(local_env.host)
    try:
        from kosmos.api.resources import SERVICEACCOUNTS

        sa = {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "kosmos-norights", "namespace": "default"},
        }
        await host.apply(SERVICEACCOUNTS, sa, field_manager="kosmos-test")
        token = await host.request(
            "POST",
            "/api/v1/namespaces/default/serviceaccounts/kosmos-norights/token",
            what="token",
            body={
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": 600},
            },
        )
    finally:
        await host.close()
    config = await kube_config.from_kubeconfig("host", local_env.kubeconfig(local_env.host))
    bearer = token["status"]["token"]

    async def auth() -> dict[str, str]:
        return {"Authorization": f"Bearer {bearer}"}

    config.auth_headers = auth
    config.ssl_context.load_default_certs()
    limited = Client(config)
    try:
        # Client certificates win over tokens in the apiserver, so strip the cert chain.
        import ssl

        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        limited.config.ssl_context = ctx
        with pytest.raises(Forbidden, match="cluster host: list configmaps kube-system"):
            await limited.list(CONFIGMAPS, "kube-system")
    finally:
        await limited.close()
