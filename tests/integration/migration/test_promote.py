"""PromotePolicy against the real host and members (kwok pods), with the real
cluster-manager: migrate a namespace, scale in the host, roll back; bad input.

A kwok pod never restarts, so here "not restarted" is the member pod's uid and startTime;
the e2e test shows the same on real containers.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from kosmos.api import names
from kosmos.local.kubectl import Kubectl
from tests.fixtures.tree import TreeEnv
from tests.integration.migration.test_backup import app_objects as backup_app
from tests.integration.migration.test_backup import cluster_scoped
from tests.support import apply, get, wait_for

EXCLUDED = ["events", "events.events.k8s.io", "endpoints", "endpointslices.discovery.k8s.io"]
TIMEOUT = 120


@pytest.fixture
def app_ns(tree: TreeEnv) -> Iterator[str]:
    """A namespace that exists only in the first member (as an app made without Kosmos)."""
    name = f"mig-{secrets.token_hex(3)}"
    member = tree.member(tree.env.members[0])
    member.run("create", "namespace", name)
    yield name
    for kubectl in (tree.host, member):
        kubectl.run("delete", "namespace", name, "--ignore-not-found", "--wait=false")
    tree.host.run(
        "delete", "promotepolicies", "-n", "default", "-l", f"test={name}", "--ignore-not-found"
    )


def app(ns: str) -> list[dict[str, Any]]:
    labels = {"app": "nginx"}
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "conf", "namespace": ns},
            "data": {"k": "v"},
        },
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "web", "namespace": ns},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "read", "namespace": ns},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "read", "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read"},
            "subjects": [{"kind": "ServiceAccount", "name": "web", "namespace": ns}],
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "nginx", "namespace": ns},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": "web",
                        "containers": [
                            {
                                "name": "nginx",
                                "image": "nginx:1.14-alpine",
                                "volumeMounts": [{"name": "c", "mountPath": "/c"}],
                            }
                        ],
                        "volumes": [{"name": "c", "configMap": {"name": "conf"}}],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "nginx-service", "namespace": ns},
            "spec": {
                "selector": labels,
                "ports": [{"protocol": "TCP", "port": 80, "targetPort": 80}],
            },
        },
    ]


def policy(name: str, ns: str, cluster: str, **spec: Any) -> dict[str, Any]:
    body = {
        "includedNamespaces": [ns],
        "excludedNamespaceScopedResources": EXCLUDED,
        "clusterName": cluster,
        **spec,
    }
    return {
        "apiVersion": "kosmos.io/v1alpha1",
        "kind": "PromotePolicy",
        "metadata": {"name": name, "namespace": "default", "labels": {"test": ns}},
        "spec": body,
    }


def phase(kubectl: Kubectl, name: str) -> str:
    status = get(kubectl, "promotepolicy", name, "-n", "default").get("status") or {}
    return str(status.get("phase") or "")


def wait_phase(kubectl: Kubectl, name: str, *wanted: str) -> dict[str, Any]:
    wait_for(lambda: phase(kubectl, name) in wanted, TIMEOUT, f"{name} in {wanted}")
    found: dict[str, Any] = get(kubectl, "promotepolicy", name, "-n", "default")
    return found


def ask_rollback(kubectl: Kubectl, name: str) -> None:
    patch = '{"spec":{"rollback":"true"}}'
    kubectl.run("patch", "promotepolicy", name, "-n", "default", "--type", "merge", "-p", patch)


def running_pods(kubectl: Kubectl, ns: str) -> dict[str, tuple[str, str]]:
    items = get(kubectl, "pods", "-n", ns)["items"]
    return {
        p["metadata"]["name"]: (p["metadata"]["uid"], p["status"].get("startTime", ""))
        for p in items
        if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
    }


def test_migrate_scale_and_roll_back_without_restarting_a_pod(tree: TreeEnv, app_ns: str):
    cluster = tree.env.members[0]
    member, host = tree.member(cluster), tree.host
    apply(member, *app(app_ns))
    before = wait_for(lambda: running_pods(member, app_ns), 60, "the app's pod running")
    name = f"promote-{app_ns}"
    apply(host, policy(name, app_ns, cluster))
    done = wait_phase(host, name, "Completed", "FailedPrecheck", "RolledBack", "FailedRollback")
    assert done["status"]["phase"] == "Completed", done["status"]
    assert done["status"]["progress"]["podsAdopted"] == 1
    assert done["status"]["backedupFile"].startswith("secret://kosmos-system/")
    assert running_pods(member, app_ns) == before, "the member pod is the same, not restarted"
    assert not member.ok("get", "deployment", "nginx", "-n", app_ns)
    host_pods = get(host, "pods", "-n", app_ns)["items"]
    assert [p["spec"]["nodeName"] for p in host_pods] == [f"kosmos-{cluster}"]
    wait_for(lambda: running_pods(host, app_ns).keys() == before.keys(), 30, "host pod Running")
    namespace = get(host, "namespace", app_ns)
    assert namespace["metadata"]["labels"][names.LABEL_PROMOTED_FROM] == cluster
    for kind in (
        "deployment/nginx",
        "service/nginx-service",
        "configmap/conf",
        "role/read",
        "rolebinding/read",
        "serviceaccount/web",
    ):
        assert host.ok("get", kind, "-n", app_ns), kind
    rs = get(host, "replicasets", "-n", app_ns)["items"]
    assert len(rs) == 1, "the Deployment took the migrated ReplicaSet, no rollout"

    host.run("scale", "deployment", "nginx", "-n", app_ns, "--replicas", "3")
    wait_for(lambda: len(running_pods(member, app_ns)) == 3, TIMEOUT, "3 pods in the member")
    after = running_pods(member, app_ns)
    assert all(after[p] == before[p] for p in before), "the first pod kept running"
    new = [
        p for p in get(member, "pods", "-n", app_ns)["items"] if p["metadata"]["name"] not in before
    ]
    assert all(p["metadata"]["labels"].get(names.LABEL_POD) == "true" for p in new)

    ask_rollback(host, name)
    back = wait_phase(host, name, "RolledBack", "FailedRollback")
    assert back["status"]["phase"] == "RolledBack", back["status"]
    wait_for(lambda: not host.ok("get", "namespace", app_ns), TIMEOUT, "the host namespace gone")
    assert member.ok("get", "deployment", "nginx", "-n", app_ns)
    wait_for(lambda: running_pods(member, app_ns) == before, TIMEOUT, "the member as it was")
    pod = get(member, "pods", "-n", app_ns)["items"][0]
    assert names.LABEL_POD not in pod["metadata"]["labels"]
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"


@pytest.mark.parametrize("case", ["unknown-cluster", "pods-excluded", "in-host", "second-policy"])
def test_bad_policies_fail_precheck_and_change_nothing(tree: TreeEnv, app_ns: str, case: str):
    cluster = tree.env.members[0]
    member, host = tree.member(cluster), tree.host
    apply(member, *app(app_ns))
    wait_for(lambda: running_pods(member, app_ns), 60, "the app's pod running")
    name = f"bad-{app_ns}"
    body = policy(name, app_ns, cluster)
    want = ""
    if case == "unknown-cluster":
        body["spec"]["clusterName"] = "nope"
        want = "cluster 'nope' is not joined"
    elif case == "pods-excluded":
        body["spec"]["excludedNamespaceScopedResources"] = [*EXCLUDED, "pods"]
        want = "pods cannot be excluded"
    elif case == "in-host":
        host.run("create", "namespace", app_ns)
        want = f"namespace {app_ns} already exists in the host"
    else:
        first = policy(f"first-{app_ns}", app_ns, cluster)
        apply(host, first)
        wait_phase(host, f"first-{app_ns}", "Completed")
        want = "already"  # the namespace is in the host now, or the first policy holds it
    apply(host, body)
    failed = wait_phase(host, name, "FailedPrecheck", "Completed")
    assert failed["status"]["phase"] == "FailedPrecheck"
    assert any(want in e for e in failed["status"]["precheckErrors"]), failed["status"]
    condition = failed["status"]["conditions"][0]
    assert (condition["type"], condition["status"], condition["reason"]) == (
        "Succeeded",
        "False",
        "PrecheckFailed",
    )
    if case != "second-policy":
        assert member.ok("get", "deployment", "nginx", "-n", app_ns), "nothing changed"


def test_statefulset_with_claim_job_and_rbac_migrate_and_roll_back(tree: TreeEnv, app_ns: str):
    """The backup test's namespace: a Deployment, a StatefulSet on a pre-bound volume, a Job,
    a ServiceAccount with a ClusterRoleBinding; cluster-scoped parts follow and go back."""
    cluster = tree.env.members[0]
    member, host = tree.member(cluster), tree.host
    apply(member, *backup_app(app_ns))
    try:
        wait_for(lambda: len(running_pods(member, app_ns)) >= 3, 90, "web, db-0 and the job's pod")
        before = running_pods(member, app_ns)
        name = f"promote-{app_ns}"
        apply(host, policy(name, app_ns, cluster))
        done = wait_phase(host, name, "Completed", "FailedPrecheck", "RolledBack")
        assert done["status"]["phase"] == "Completed", done["status"]
        assert running_pods(member, app_ns) == before
        for kind in ("statefulset/db", "job/once", "deployment/web", "pvc/data-db-0"):
            assert host.ok("get", kind, "-n", app_ns), kind
        for kind, obj in cluster_scoped(app_ns):
            assert host.ok("get", kind, obj), (kind, obj)
        wait_for(
            lambda: get(host, "pvc", "data-db-0", "-n", app_ns)["status"].get("phase") == "Bound",
            60,
            "the host's claim bound to its volume",
        )
        assert len(get(host, "controllerrevisions", "-n", app_ns)["items"]) == 1, "no new revision"
        ask_rollback(host, name)
        back = wait_phase(host, name, "RolledBack", "FailedRollback")
        assert back["status"]["phase"] == "RolledBack", back["status"]
        wait_for(lambda: not host.ok("get", "namespace", app_ns), TIMEOUT, "host namespace gone")
        for kind, obj in cluster_scoped(app_ns):
            assert not host.ok("get", kind, obj), (kind, obj)
        wait_for(lambda: running_pods(member, app_ns) == before, TIMEOUT, "the member as it was")
        for kind in ("statefulset/db", "job/once", "deployment/web"):
            assert member.ok("get", kind, "-n", app_ns), kind
    finally:
        for kind, obj in cluster_scoped(app_ns):
            member.run("delete", kind, obj, "--ignore-not-found", "--wait=false")
