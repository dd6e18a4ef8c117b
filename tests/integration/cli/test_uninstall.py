"""uninstall refuses while members are joined, removes everything with --force, and is
idempotent. It deletes the CRDs, so the module's fixture re-applies them afterwards."""

from __future__ import annotations

import json

from kosmos.api import crds
from tests.fixtures.clusters import LocalEnv
from tests.integration.cli.conftest import kosmosctl, ok

NAMESPACE = "kosmos-cli-uninstall"
MEMBER = "cli-uninstall-member"


def test_uninstall_refuses_while_a_member_is_joined_then_force_removes_everything(
    local_env: LocalEnv, restore_host: list[str]
):
    restore_host.append(NAMESPACE)
    host = local_env.kubectl(local_env.host)
    ok(kosmosctl(local_env, "install", "-n", NAMESPACE))
    member = {
        "apiVersion": "kosmos.io/v1alpha1",
        "kind": "Cluster",
        "metadata": {"name": MEMBER},
        "spec": {"clusterTreeOptions": {"enable": False}},
    }
    host.run("apply", "-f", "-", stdin=json.dumps(member))

    refused = kosmosctl(local_env, "uninstall", "-n", NAMESPACE)
    assert refused.exit_code == 1
    (line,) = refused.stderr.strip().splitlines()
    assert MEMBER in line and "--force" in line
    assert refused.stdout == ""  # nothing was deleted
    assert host.ok("get", "deployment", "kosmos-cluster-manager", "-n", NAMESPACE)

    forced = ok(kosmosctl(local_env, "uninstall", "-n", NAMESPACE, "--force"))
    assert f"cluster.kosmos.io/{MEMBER} deleted" in forced.stdout
    assert f"namespace/{NAMESPACE} deleted" in forced.stdout
    assert not host.ok("get", "namespace", NAMESPACE)
    served = host.run("get", "crd", "-o", "name").split()
    ours = {
        f"customresourcedefinition.apiextensions.k8s.io/{m['metadata']['name']}"
        for m in crds.crd_manifests()
    }
    assert not ours & set(served)
    roles = host.run("get", "clusterroles,clusterrolebindings", "-o", "name").split()
    assert not [r for r in roles if "/kosmos-" in r]

    again = ok(kosmosctl(local_env, "uninstall", "-n", NAMESPACE))
    assert again.stdout == "" and "nothing to uninstall" in again.stderr
