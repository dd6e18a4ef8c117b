"""Adoption of running member pods (application migration) and the promoted-pod placement."""

from __future__ import annotations

import json
from typing import Any

from tests.fixtures.tree import TreeEnv
from tests.integration.clustertree.test_tree import LEAF_TOLERATION, volume
from tests.support import apply, get, wait_for

POLICY = "kosmos-system/promote-shop"
IMAGE = "nginx:1.14.2"


def member_pod(name: str, policy: str | None = POLICY, **spec: Any) -> dict[str, Any]:
    """A pod as a user made it in the member (no Kosmos marks), marked by a migration."""
    annotations = {"kosmos.io/promote-policy": policy} if policy else {}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}, "annotations": annotations},
        "spec": {"containers": [{"name": "app", "image": IMAGE}], **spec},
    }


def host_pod(name: str, member_uid: str | None = None, policy: str = POLICY) -> dict[str, Any]:
    """The host pod a migration rebuilds for a running member pod (``member_uid`` None: an
    ordinary pod, whose member copy Kosmos makes)."""
    annotations = {"kosmos.io/member-pod-uid": member_uid, "kosmos.io/promote-policy": policy}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {"app": name},
            "annotations": annotations if member_uid is not None else {},
        },
        "spec": {
            "nodeName": "kosmos-cluster1",
            "tolerations": [LEAF_TOLERATION],
            "containers": [{"name": "app", "image": IMAGE}],
        },
    }


def running_member_pod(tree: TreeEnv, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    member = tree.member("cluster1")
    apply(member, body, namespace=namespace)
    name = body["metadata"]["name"]

    def running() -> dict[str, Any] | None:
        pod: dict[str, Any] = get(member, "pod", name, "-n", namespace)
        return pod if pod["status"].get("phase") == "Running" else None

    return wait_for(running, 60, f"member pod {name} Running")


def events(tree: TreeEnv, namespace: str, name: str) -> list[str]:
    items = get(
        tree.host, "events", "-n", namespace, "--field-selector", f"involvedObject.name={name}"
    )["items"]
    return [e["reason"] for e in items]


def adopted(tree: TreeEnv, namespace: str, name: str, member_uid: str) -> dict[str, Any]:
    """Wait until the member pod is Kosmos's copy of the host pod; the member pod."""
    member = tree.member("cluster1")
    host_uid = get(tree.host, "pod", name, "-n", namespace)["metadata"]["uid"]

    def check() -> dict[str, Any] | None:
        pod: dict[str, Any] = get(member, "pod", name, "-n", namespace)
        meta = pod["metadata"]
        ok = (
            meta["labels"].get("kosmos-io/pod") == "true"
            and meta["annotations"].get("kosmos.io/host-pod-uid") == host_uid
        )
        return pod if ok else None

    pod = wait_for(check, 30, f"member pod {name} adopted")
    assert pod["metadata"]["uid"] == member_uid
    return pod


def test_a_marked_running_member_pod_is_adopted_not_restarted(
    tree: TreeEnv, namespace: str
) -> None:
    member = tree.member("cluster1")
    # the member's own ConfigMap, used by the pod; the host has another of the same name
    own = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}}
    apply(member, {**own, "data": {"from": "member"}}, namespace=namespace)
    apply(tree.host, {**own, "data": {"from": "host"}}, namespace=namespace)
    env = [{"name": "FROM", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "from"}}}]
    body = member_pod("web")
    body["spec"]["containers"][0]["env"] = env
    before = running_member_pod(tree, namespace, body)
    uid = before["metadata"]["uid"]
    started = before["status"]["containerStatuses"][0]["state"]["running"]["startedAt"]
    host = host_pod("web", uid)
    host["spec"]["containers"][0]["env"] = env
    apply(tree.host, host, namespace=namespace)

    adopted(tree, namespace, "web", uid)

    def host_running() -> dict[str, Any] | None:
        pod: dict[str, Any] = get(tree.host, "pod", "web", "-n", namespace)
        return pod if pod.get("status", {}).get("phase") == "Running" else None

    host_now = wait_for(host_running, 30, "host pod status follows the member pod")
    after = get(member, "pod", "web", "-n", namespace)
    assert host_now["status"]["podIP"] == after["status"]["podIP"]
    state = after["status"]["containerStatuses"][0]
    assert state["restartCount"] == 0 and state["state"]["running"]["startedAt"] == started
    assert [p["metadata"]["name"] for p in get(member, "pods", "-n", namespace)["items"]] == ["web"]
    assert "Adopted" in wait_for(lambda: events(tree, namespace, "web"), 10, "Adopted event")
    settings = get(member, "configmap", "settings", "-n", namespace)
    assert settings["data"] == {"from": "member"}
    assert "app.kubernetes.io/managed-by" not in (settings["metadata"].get("labels") or {})
    # an ordinary Kosmos pod now: a host label edit reaches it
    tree.host.run("label", "pod", "web", "-n", namespace, "release=v2")
    wait_for(
        lambda: get(member, "pod", "web", "-n", namespace)["metadata"]["labels"].get("release"),
        30,
        "label edit copied to the adopted pod",
    )


def test_without_the_full_handshake_it_stays_a_name_conflict(tree: TreeEnv, namespace: str) -> None:
    member = tree.member("cluster1")
    uid = running_member_pod(tree, namespace, member_pod("other"))["metadata"]["uid"]
    apply(tree.host, host_pod("other", uid, policy="kosmos-system/another"), namespace=namespace)
    wrong_uid = running_member_pod(tree, namespace, member_pod("stale"))["metadata"]["uid"]
    apply(tree.host, host_pod("stale", wrong_uid[::-1]), namespace=namespace)
    for name in ("other", "stale"):
        wait_for(
            lambda name=name: "NameConflict" in events(tree, namespace, name),
            30,
            f"NameConflict for {name}",
        )
        pod = get(member, "pod", name, "-n", namespace)
        assert "kosmos-io/pod" not in pod["metadata"]["labels"]
        assert "kosmos.io/host-pod-uid" not in pod["metadata"]["annotations"]


def test_a_released_pod_survives_its_host_pod(tree: TreeEnv, namespace: str) -> None:
    member = tree.member("cluster1")
    uid = running_member_pod(tree, namespace, member_pod("kept"))["metadata"]["uid"]
    apply(tree.host, host_pod("kept", uid), namespace=namespace)
    adopted(tree, namespace, "kept", uid)
    # release, as a migration's rollback does in the member: one patch
    unmark = {"kosmos.io/host-pod-uid": None, "kosmos.io/promote-policy": None}
    release = {"metadata": {"labels": {"kosmos-io/pod": None}, "annotations": unmark}}
    member.run("patch", "pod", "kept", "-n", namespace, "--type=merge", "-p", json.dumps(release))
    tree.host.run("delete", "pod", "kept", "-n", namespace, "--wait=true", "--timeout=60s")
    pod = get(member, "pod", "kept", "-n", namespace)
    assert pod["metadata"]["uid"] == uid and "deletionTimestamp" not in pod["metadata"]
    assert pod["status"]["phase"] == "Running"


def test_a_foreign_member_claim_is_used_and_kept(tree: TreeEnv, namespace: str) -> None:
    member = tree.member("cluster1")
    apply(member, volume(f"pv-{namespace}", "/tmp/kosmos-test", namespace, "data"))
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data"},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": "",
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }
    apply(member, claim, namespace=namespace)
    own = get(member, "pvc", "data", "-n", namespace)
    apply(tree.host, claim, namespace=namespace)  # not the leaf class: stays Pending here
    pod = host_pod("user")  # an ordinary pod: Kosmos creates its member copy
    pod["spec"]["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]
    pod["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    apply(tree.host, pod, namespace=namespace)
    wait_for(
        lambda: get(member, "pod", "user", "-n", namespace)["status"].get("phase") == "Running",
        60,
        "the member pod runs with the member's own claim",
    )
    tree.host.run("delete", "pod", "user", "-n", namespace, "--wait=true", "--timeout=60s")
    tree.host.run("delete", "pvc", "data", "-n", namespace, "--wait=true", "--timeout=60s")
    after = get(member, "pvc", "data", "-n", namespace)
    assert after["metadata"]["uid"] == own["metadata"]["uid"]
    assert "deletionTimestamp" not in after["metadata"]
    assert "app.kubernetes.io/managed-by" not in (after["metadata"].get("labels") or {})


def test_new_pods_of_a_promoted_namespace_are_placed_in_its_member(
    tree: TreeEnv, namespace: str
) -> None:
    tree.host.run("label", "namespace", namespace, "kosmos.io/promoted-from=cluster1")
    template = {
        "metadata": {"labels": {"app": "grown"}},
        "spec": {"containers": [{"name": "app", "image": IMAGE}]},
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "grown"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "grown"}},
            "template": template,
        },
    }
    apply(tree.host, deployment, namespace=namespace)
    chosen = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "chosen"},
        "spec": {
            "nodeSelector": {"kosmos.io/owner-cluster": "cluster2"},
            "containers": [{"name": "app", "image": IMAGE}],
        },
    }
    apply(tree.host, chosen, namespace=namespace)

    def placed() -> list[dict[str, Any]] | None:
        items: list[dict[str, Any]] = get(tree.host, "pods", "-n", namespace, "-l", "app=grown")[
            "items"
        ]
        done = [p for p in items if p["spec"].get("nodeName") == "kosmos-cluster1"]
        return items if len(items) == 2 and len(done) == 2 else None

    for pod in wait_for(placed, 60, "both replicas bound to cluster1's leaf node"):
        spec = pod["spec"]
        assert spec["nodeSelector"] == {"kosmos.io/owner-cluster": "cluster1"}
        tolerations = spec["tolerations"]
        assert {"key": "kosmos.io/node", "operator": "Exists", "effect": "NoSchedule"} in (
            tolerations
        )
        for key in ("node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready"):
            mine = [t for t in tolerations if t.get("key") == key]
            assert mine == [{"key": key, "operator": "Exists", "effect": "NoExecute"}]
    current = get(tree.host, "deployment", "grown", "-n", namespace)
    assert current["spec"]["template"]["spec"].get("nodeSelector") is None
    assert current["spec"]["template"]["spec"].get("tolerations") is None
    left = get(tree.host, "pod", "chosen", "-n", namespace)["spec"]
    assert left["nodeSelector"] == {"kosmos.io/owner-cluster": "cluster2"}
    assert "kosmos.io/node" not in json.dumps(left.get("tolerations") or [])


def test_deleting_a_host_namespace_leaves_the_members_namespace(
    tree: TreeEnv, namespace: str
) -> None:
    member = tree.member("cluster1")
    own = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "own"}, "data": {}}
    apply(member, own, namespace=namespace)
    uid = running_member_pod(tree, namespace, member_pod("kept"))["metadata"]["uid"]
    apply(tree.host, host_pod("made"), namespace=namespace)
    wait_for(
        lambda: get(member, "pod", "made", "-n", namespace)["status"].get("phase") == "Running",
        60,
        "the member copy of a host pod Running",
    )
    tree.host.run("delete", "namespace", namespace, "--wait=true", "--timeout=90s")
    wait_for(
        lambda: not get(member, "pods", "-n", namespace, "-l", "kosmos-io/pod=true")["items"],
        30,
        "the member copy deleted with its host pod",
    )
    assert "deletionTimestamp" not in get(member, "namespace", namespace)["metadata"]
    assert get(member, "pod", "kept", "-n", namespace)["metadata"]["uid"] == uid
    get(member, "configmap", "own", "-n", namespace)
