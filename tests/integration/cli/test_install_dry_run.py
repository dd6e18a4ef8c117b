"""Every object install would create passes the real apiserver's validation (server dry run)."""

from __future__ import annotations

import asyncio

import yaml

from kosmos.api.resources import CUSTOMRESOURCEDEFINITIONS, DEPLOYMENTS, Resource
from kosmos.ops import apply, manifests
from kosmos.ops.manifests import InstallOptions
from tests.fixtures.clusters import LocalEnv
from tests.integration.cli.conftest import kosmosctl, ok


async def _dry_run_each(local_env: LocalEnv, namespace: str) -> list[str]:
    """Every optional component's objects too (kubenest's operator is off by default)."""
    options = InstallOptions(namespace=namespace, enable_kubenest=True)
    client = await local_env.client(local_env.host)
    try:
        before = {
            manifests.display_name(r, b): await apply.get_or_none(
                client, r, b["metadata"]["name"], b["metadata"].get("namespace")
            )
            for r, b in manifests.install_objects(options)
        }
        checked = []
        for resource, body in manifests.install_objects(options):
            result = await client.apply(
                resource, body, field_manager="kosmosctl", force=True, dry_run=True
            )
            assert result["metadata"]["name"] == body["metadata"]["name"]
            checked.append(manifests.display_name(resource, body))
        for resource, body in manifests.install_objects(options):
            meta = body["metadata"]
            after = await apply.get_or_none(client, resource, meta["name"], meta.get("namespace"))
            if before[manifests.display_name(resource, body)] is None:
                assert after is None, f"dry run persisted {manifests.display_name(resource, body)}"
        return checked
    finally:
        await client.close()


def test_every_install_manifest_passes_a_server_side_dry_run(
    local_env: LocalEnv, kosmos_crds: list[str], namespace: str
):
    checked = asyncio.run(_dry_run_each(local_env, namespace))
    assert "deployment.apps/kosmos-cluster-manager" in checked
    assert "deployment.apps/kosmos-virtual-cluster-operator" in checked
    assert "cluster.kosmos.io/kosmos-control-cluster" in checked


def test_install_dry_run_checks_everything_and_changes_nothing(
    local_env: LocalEnv, kosmos_crds: list[str], namespace: str
):
    result = ok(kosmosctl(local_env, "install", "-n", namespace, "--dry-run"))
    lines = result.stdout.splitlines()
    expected = len(manifests.install_objects(InstallOptions(namespace=namespace)))
    assert len(lines) == expected
    assert all(line.endswith("(server dry run)") for line in lines), lines
    host = local_env.kubectl(local_env.host)
    assert host.run("get", "deployments", "-n", namespace, "-o", "name").strip() == ""
    # -o yaml prints the objects the server would store.
    result = ok(kosmosctl(local_env, "install", "-n", namespace, "--dry-run", "-o", "yaml"))
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert len(docs) == expected
    deployment = next(d for d in docs if d["kind"] == DEPLOYMENTS.kind)
    assert deployment["metadata"]["namespace"] == namespace
    assert "managedFields" not in deployment["metadata"]


WIDGETS = Resource("preflight.kosmos.test", "v1", "widgets", "Widget", False)


def _widget_crd(*fields: str) -> dict[str, object]:
    spec = {"type": "object", "properties": {f: {"type": "string"} for f in fields}}
    schema = {"openAPIV3Schema": {"type": "object", "properties": {"spec": spec}}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{WIDGETS.plural}.{WIDGETS.group}"},
        "spec": {
            "group": WIDGETS.group,
            "scope": "Cluster",
            "names": {"plural": WIDGETS.plural, "singular": "widget", "kind": WIDGETS.kind},
            "versions": [{"name": "v1", "served": True, "storage": True, "schema": schema}],
        },
    }


async def _upgrade_preflight(local_env: LocalEnv) -> tuple[apply.Step, apply.Step]:
    """An installed CRD, then the preflight of an upgrade whose CRD adds a field its custom
    object sets (as a release adds a Cluster option): the object cannot be checked against
    the old schema. Beside it, the preflight with the CRD unchanged checks the object."""
    client = await local_env.client(local_env.host)
    old = _widget_crd("size")
    try:
        await client.apply(CUSTOMRESOURCEDEFINITIONS, old, field_manager="test", force=True)
        await apply.wait_established(client, [old["metadata"]["name"]], 30)
        same = {"apiVersion": WIDGETS.api_version, "kind": WIDGETS.kind,
                "metadata": {"name": "w"}, "spec": {"size": "s"}}  # fmt: skip
        new = {**same, "spec": {"size": "s", "color": "red"}}
        unchanged = await apply.preflight(
            client, [(CUSTOMRESOURCEDEFINITIONS, old), (WIDGETS, same)]
        )
        upgraded = await apply.preflight(
            client, [(CUSTOMRESOURCEDEFINITIONS, _widget_crd("size", "color")), (WIDGETS, new)]
        )
        return unchanged[1], upgraded[1]
    finally:
        await client.delete(CUSTOMRESOURCEDEFINITIONS, old["metadata"]["name"])
        await client.close()


def test_an_upgrade_that_adds_a_field_leaves_its_objects_to_the_apply(local_env: LocalEnv):
    unchanged, upgraded = asyncio.run(_upgrade_preflight(local_env))
    assert unchanged.unchecked == "" and unchanged.result is not None  # checked by the server
    assert upgraded.result is None
    assert upgraded.unchecked == (
        "CRD widgets.preflight.kosmos.test changes in this apply; checked when applied"
    )
