"""``kosmosctl install --enable-kubenest``: the operator's objects, its least privilege, its
flags and where its pod may run."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from kosmos.api import names
from kosmos.api.resources import CLUSTERROLES, DEPLOYMENTS, ROLES, VIRTUAL_CLUSTERS
from kosmos.cli.main import cli
from kosmos.ops import install, kubenest, manifests, uninstall
from kosmos.ops.apply import Step
from kosmos.ops.errors import OperationError
from kosmos.ops.kubenest import KubenestOptions
from kosmos.ops.manifests import InstallOptions
from tests.unit.kubenest.fakes import FakeClient

OPERATOR = "kosmos-virtual-cluster-operator"
ON = InstallOptions(namespace="kosmos-x", version="v9", enable_kubenest=True)


def named(options: InstallOptions) -> dict[str, list[str]]:
    """kind -> names of the operator's objects install applies."""
    out: dict[str, list[str]] = {}
    for _, body in manifests.install_objects(options):
        if body["metadata"].get("labels", {}).get("app.kubernetes.io/name") == OPERATOR:
            out.setdefault(body["kind"], []).append(body["metadata"]["name"])
    return out


def deployment(options: InstallOptions = ON) -> dict[str, Any]:
    (body,) = [
        b
        for r, b in manifests.install_objects(options)
        if r == DEPLOYMENTS and b["metadata"]["name"] == OPERATOR
    ]
    return body


def allowed(group: str, resource: str, verb: str) -> bool:
    return any(
        group in rule["apiGroups"]
        and resource in rule["resources"]
        and verb in rule["verbs"]
        and not rule.get("resourceNames")
        for rule in kubenest.RULES
    )


def test_off_by_default_and_removed_when_disabled():
    assert named(InstallOptions()) == {}
    assert named(ON) == {
        "ServiceAccount": [OPERATOR],
        "ClusterRole": [OPERATOR],
        "ClusterRoleBinding": [OPERATOR],
        "Role": [f"{OPERATOR}-leader-election"],
        "RoleBinding": [f"{OPERATOR}-leader-election"],
        "Deployment": [OPERATOR],
    }
    disabled = {b["metadata"]["name"] for _, b in manifests.disabled_objects(InstallOptions())}
    assert OPERATOR in disabled
    assert OPERATOR not in {b["metadata"]["name"] for _, b in manifests.disabled_objects(ON)}
    # uninstall removes what any install may have made
    everything = manifests.all_component_objects(InstallOptions())
    assert any(b["metadata"]["name"] == OPERATOR for _, b in everything)


def test_the_cluster_role_is_the_rules_and_the_lease_is_its_own():
    roles = {
        b["metadata"]["name"]: b["rules"]
        for r, b in manifests.install_objects(ON)
        if r in (CLUSTERROLES, ROLES)
    }
    assert roles[OPERATOR] == list(kubenest.RULES)
    lease_rules = roles[f"{OPERATOR}-leader-election"]
    assert {"get", "update", "patch"} <= set(lease_rules[1]["verbs"])
    assert lease_rules[1]["resourceNames"] == ["virtual-cluster-operator"]


def test_rules_grant_what_kubenest_calls():
    for group, resource, verb in (
        (names.GROUP, "virtualclusters", "watch"),
        (names.GROUP, "virtualclusters", "patch"),  # kubeconfig, nodeInfos, finalizer
        (names.GROUP, "virtualclusters/status", "patch"),
        (names.GROUP, "globalnodes", "create"),
        (names.GROUP, "globalnodes", "delete"),
        (names.GROUP, "globalnodes/status", "patch"),
        ("", "nodes", "watch"),
        ("", "nodes", "delete"),  # a node leaves the host for a tenant
        ("", "nodes", "create"),  # and comes back
        ("", "nodes/status", "patch"),
        ("", "pods", "list"),
        ("", "pods", "watch"),  # control-plane pods: nodes not to borrow
        ("", "pods/eviction", "create"),
        ("", "secrets", "create"),
        ("", "services", "patch"),
        ("apps", "deployments", "create"),  # a server-side apply of a new object
        ("apps", "statefulsets", "patch"),
        ("policy", "poddisruptionbudgets", "delete"),
        ("", "events", "create"),
    ):
        assert allowed(group, resource, verb), (group, resource, verb)


def test_rules_grant_nothing_more():
    for group, resource, verb in (
        ("", "pods", "create"),  # tenants' pods come from their Deployments
        ("", "pods", "delete"),  # a drain evicts, so budgets hold
        ("", "pods/exec", "create"),
        ("", "pods/binding", "create"),
        ("", "secrets", "update"),
        ("", "secrets", "watch"),  # read when needed, never cached
        ("", "nodes", "update"),
        ("", "namespaces", "create"),  # the VirtualCluster's namespace is the user's
        ("", "namespaces", "delete"),
        ("", "serviceaccounts/token", "create"),
        ("", "configmaps", "get"),
        (names.GROUP, "virtualclusters", "create"),
        (names.GROUP, "virtualclusters", "delete"),
        (names.GROUP, "clusters", "get"),
        ("apps", "daemonsets", "create"),
        ("rbac.authorization.k8s.io", "clusterroles", "bind"),
        ("certificates.k8s.io", "certificatesigningrequests", "create"),
    ):
        assert not allowed(group, resource, verb), (group, resource, verb)
    for rule in kubenest.RULES:
        assert not {"escalate", "bind", "impersonate", "deletecollection", "*"} & set(rule["verbs"])
        assert "*" not in rule["resources"] and "*" not in rule["apiGroups"]


def test_the_deployment_runs_the_in_cluster_provider_with_the_install_flags():
    options = InstallOptions(
        image_repository="reg.example/kosmos",
        version="v9",
        enable_kubenest=True,
        node_selector=(("kosmos", "yes"),),
        kubenest=KubenestOptions(
            advertise_address="10.0.0.9",
            node_selector=(("kubernetes.io/hostname", "host-real1"), ("zone", "a")),
            image_repository="mirror.example/k8s",
        ),
    )
    pod = deployment(options)["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "reg.example/kosmos/kosmos:v9"
    assert container["args"] == [
        "virtual-cluster-operator",
        "--leader-elect",
        "--provider=in-cluster",
        "--image-repository=mirror.example/k8s",
        "--advertise-address=10.0.0.9",
        "--control-plane-node-selector=kubernetes.io/hostname=host-real1",
        "--control-plane-node-selector=zone=a",
    ]
    assert pod["nodeSelector"] == {"kosmos": "yes"}  # --node-selector: every Kosmos pod


def test_defaults_leave_the_address_to_the_operator():
    (container,) = deployment()["spec"]["template"]["spec"]["containers"]
    assert container["args"][2:] == ["--provider=in-cluster", "--image-repository=registry.k8s.io"]


def test_never_on_kwok_or_leaf_nodes_rather_on_control_plane_nodes():
    pod = deployment()["spec"]["template"]["spec"]
    affinity = pod["affinity"]["nodeAffinity"]
    (term,) = affinity["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    absent = {e["key"] for e in term["matchExpressions"] if e["operator"] == "DoesNotExist"}
    assert {names.LABEL_KWOK_NODE, names.LABEL_NODE} <= absent
    assert affinity["preferredDuringSchedulingIgnoredDuringExecution"]
    assert manifests.CONTROL_PLANE_TOLERATION in pod["tolerations"]


def test_cli_rejects_a_bad_address_or_selector_before_connecting():
    result = CliRunner().invoke(
        cli, ["install", "--enable-kubenest", "--kubenest-advertise-address", "nope"]
    )
    assert result.exit_code == 2 and "not an IP address" in result.stderr
    result = CliRunner().invoke(
        cli, ["install", "--enable-kubenest", "--kubenest-control-plane-node-selector", "x"]
    )
    assert result.exit_code == 2 and "KEY=VALUE" in result.stderr


async def test_uninstall_refuses_while_virtual_clusters_hold_nodes():
    client = FakeClient()
    assert await uninstall._virtual_clusters_to_delete(client, force=False) == []
    client.add(VIRTUAL_CLUSTERS, {"metadata": {"name": "vc", "namespace": "t1"}})
    with pytest.raises(OperationError, match=r"virtual clusters still exist: t1/vc"):
        await uninstall._virtual_clusters_to_delete(client, force=False)
    (forced,) = await uninstall._virtual_clusters_to_delete(client, force=True)
    lines: list[str] = []
    await uninstall._remove_virtual_clusters(client, [forced], timeout=1, record=lines.append)
    assert lines == ["virtualcluster.kosmos.io/vc deleted"]


async def test_a_re_run_without_kubenest_refuses_to_strand_virtual_clusters():
    client = FakeClient()
    removals = [Step(r, b, "deleted") for r, b in manifests.disabled_objects(InstallOptions())]
    await install._keep_tenants_served(client, removals)  # no tenant: removed as disabled
    client.add(VIRTUAL_CLUSTERS, {"metadata": {"name": "vc", "namespace": "t1"}})
    await install._keep_tenants_served(client, [])  # kept: nothing to refuse
    with pytest.raises(OperationError, match=r"pass --enable-kubenest to keep it"):
        await install._keep_tenants_served(client, removals)
