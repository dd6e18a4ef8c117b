"""ClusterTree against the real host and members: leaf nodes, pod sync, dependencies, streams."""

from __future__ import annotations

import json
from typing import Any

from kosmos.api.objects import node_ready
from kosmos.api.quantity import parse_quantity
from tests.fixtures.tree import TreeEnv, leaf_nodes
from tests.support import apply, get, wait_for

LEAF_TOLERATION = {"key": "kosmos.io/node", "operator": "Equal", "value": "true"}
ON_LEAVES = {"kosmos.io/node": "true"}


def deployment(name: str, replicas: int, **spec: Any) -> dict[str, Any]:
    pod_spec = {
        "tolerations": [LEAF_TOLERATION],
        "nodeSelector": ON_LEAVES,
        "containers": [{"name": "app", "image": "nginx:1.14.2"}],
        **spec,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec},
        },
    }


def volume(name: str, path: str, namespace: str, claim: str) -> dict[str, Any]:
    """A static hostPath PersistentVolume, bound ahead to the claim Kosmos makes in a member."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "hostPath": {"path": path},
            "storageClassName": "",
            "claimRef": {"namespace": namespace, "name": claim},
        },
    }


def pods(kubectl: Any, namespace: str, selector: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = get(kubectl, "pods", "-n", namespace, "-l", selector)["items"]
    return items


def running(items: list[dict[str, Any]], count: int) -> bool:
    return len(items) == count and all(p["status"].get("phase") == "Running" for p in items)


def test_leaf_nodes_are_ready_agents_with_lease_capacity_and_taint(tree: TreeEnv) -> None:
    nodes = {n["metadata"]["name"]: n for n in leaf_nodes(tree)}
    assert {"kosmos-cluster1", "kosmos-cluster2"} <= set(nodes)
    for name, node in nodes.items():
        labels = node["metadata"]["labels"]
        assert labels["kubernetes.io/role"] == "agent"
        assert labels["kosmos.io/node"] == "true"
        assert {"key": "kosmos.io/node", "value": "true", "effect": "NoSchedule"} in node["spec"][
            "taints"
        ]
        assert node_ready(node)
        assert parse_quantity(node["status"]["allocatable"]["cpu"]) > 0
        assert json.loads(node["metadata"]["annotations"]["kosmos.io/largest-free-node"])["cpu"]
        lease = get(tree.host, "lease", "-n", "kube-node-lease", name)
        assert lease["spec"]["holderIdentity"] == name
    table = tree.host.run("get", "nodes", "-l", "kosmos.io/node=true")
    assert "agent" in table and "NotReady" not in table


def test_deployment_spreads_over_both_members_and_runs_there(tree: TreeEnv, namespace: str) -> None:
    apply(tree.host, deployment("nginx", 3), namespace=namespace)
    host_pods = wait_for(
        lambda: (p := pods(tree.host, namespace, "app=nginx")) and running(p, 3) and p,
        60,
        "3 nginx pods Running in the host",
    )
    nodes = {p["spec"]["nodeName"] for p in host_pods}
    assert nodes == {"kosmos-cluster1", "kosmos-cluster2"}
    for member in ("cluster1", "cluster2"):
        mine = [p for p in host_pods if p["spec"]["nodeName"] == f"kosmos-{member}"]
        copies = pods(tree.member(member), namespace, "app=nginx")
        assert {p["metadata"]["name"] for p in copies} == {p["metadata"]["name"] for p in mine}
        for copy in copies:
            assert copy["status"]["phase"] == "Running"
            assert copy["metadata"]["labels"]["kosmos-io/pod"] == "true"
            host = next(p for p in mine if p["metadata"]["name"] == copy["metadata"]["name"])
            assert (
                copy["metadata"]["annotations"]["kosmos.io/host-pod-uid"] == host["metadata"]["uid"]
            )
            assert host["status"]["podIP"] == copy["status"]["podIP"]


def test_zone_anti_affinity_puts_one_replica_in_each_member(tree: TreeEnv, namespace: str) -> None:
    anti = {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {
                    "labelSelector": {"matchLabels": {"app": "spread"}},
                    "topologyKey": "topology.kubernetes.io/zone",
                }
            ]
        }
    }
    apply(tree.host, deployment("spread", 2, affinity=anti), namespace=namespace)
    host_pods = wait_for(
        lambda: (p := pods(tree.host, namespace, "app=spread")) and running(p, 2) and p,
        60,
        "2 spread pods Running",
    )
    assert {p["spec"]["nodeName"] for p in host_pods} == {"kosmos-cluster1", "kosmos-cluster2"}
    copy = pods(tree.member("cluster1"), namespace, "app=spread")[0]
    assert copy["spec"]["affinity"] == anti  # the intent holds inside the member too


def test_logs_and_exec_through_the_leaf_node(tree: TreeEnv, namespace: str) -> None:
    apply(tree.host, deployment("talk", 1), namespace=namespace)
    pod = wait_for(
        lambda: (p := pods(tree.host, namespace, "app=talk")) and running(p, 1) and p[0],
        60,
        "talk pod Running",
    )
    name, member = pod["metadata"]["name"], pod["spec"]["nodeName"].removeprefix("kosmos-")
    logs = tree.host.run("logs", "-n", namespace, name, "--tail", "2")
    assert member in logs
    assert logs == tree.member(member).run("logs", "-n", namespace, name, "--tail", "2")
    stamped = tree.host.run("logs", "-n", namespace, name, "--timestamps", "--tail", "1")
    assert stamped.split(" ", 1)[0].endswith("Z")
    assert tree.host.run("exec", "-n", namespace, name, "--", "echo", "hi").strip() == "hi"
    out = tree.host.run("exec", "-n", namespace, name, "--", "sh", "-c", "echo $KOSMOS_CLUSTER")
    assert out.strip() == member


def test_dependencies_are_copied_kept_in_step_and_removed(tree: TreeEnv, namespace: str) -> None:
    member = tree.member("cluster1")
    # a static volume in the member for the claim Kosmos makes there
    pv_name = f"pv-{namespace}"
    apply(member, volume(pv_name, "/tmp/kosmos-test", namespace, "data"))
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "user", "labels": {"app": "user"}},
        "spec": {
            "nodeName": "kosmos-cluster1",
            "serviceAccountName": "worker",
            "tolerations": [LEAF_TOLERATION],
            "containers": [
                {
                    "name": "app",
                    "image": "busybox",
                    "env": [
                        {
                            "name": "PASSWORD",
                            "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}},
                        }
                    ],
                    "volumeMounts": [
                        {"name": "conf", "mountPath": "/conf"},
                        {"name": "data", "mountPath": "/data"},
                    ],
                }
            ],
            "volumes": [
                {"name": "conf", "configMap": {"name": "settings"}},
                {"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
            ],
        },
    }
    apply(
        tree.host,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings"},
            "data": {"mode": "blue"},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "creds"},
            "stringData": {"password": "s3cret"},
        },
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "worker"}},
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": "kosmos-leaf",
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
        pod,
        namespace=namespace,
    )
    wait_for(lambda: running(pods(member, namespace, "app=user"), 1), 60, "member pod Running")
    wait_for(lambda: running(pods(tree.host, namespace, "app=user"), 1), 30, "host pod Running")
    for kind, name in (
        ("configmap", "settings"),
        ("secret", "creds"),
        ("serviceaccount", "worker"),
        ("pvc", "data"),
    ):
        copy = get(member, kind, name, "-n", namespace)
        assert copy["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "kosmos"
    assert get(member, "pvc", "data", "-n", namespace)["status"]["phase"] == "Bound"

    tree.host.run(
        "patch",
        "configmap",
        "settings",
        "-n",
        namespace,
        "--type",
        "merge",
        "-p",
        '{"data": {"mode": "green"}}',
    )
    wait_for(
        lambda: (
            "green"
            in member.run(
                "get", "configmap", "settings", "-n", namespace, "-o", "jsonpath={.data.mode}"
            )
        ),
        30,
        "ConfigMap edit copied to the member",
    )

    tree.host.run("delete", "pod", "user", "-n", namespace, "--wait=true", timeout=60)
    for kind, name in (
        ("configmap", "settings"),
        ("secret", "creds"),
        ("serviceaccount", "worker"),
    ):
        wait_for(
            lambda k=kind, n=name: not member.ok("get", k, n, "-n", namespace),
            30,
            f"unused {kind} {name} removed from the member",
        )
    assert member.ok("get", "pvc", "data", "-n", namespace)  # claims live with the host claim
    tree.host.run("delete", "pvc", "data", "-n", namespace, "--wait=true", timeout=60)
    wait_for(
        lambda: not member.ok("get", "pvc", "data", "-n", namespace),
        30,
        "member claim removed with the host claim",
    )
    member.run("delete", "pv", pv_name, "--ignore-not-found", "--wait=false")


def test_statefulset_with_claim_templates_runs_on_a_leaf(tree: TreeEnv, namespace: str) -> None:
    member = tree.member("cluster2")
    for i in range(2):
        apply(
            member, volume(f"pv-{namespace}-{i}", f"/tmp/kosmos-sts-{i}", namespace, f"data-db-{i}")
        )
    apply(
        tree.host,
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "db"},
            "spec": {
                "replicas": 2,
                "serviceName": "db",
                "selector": {"matchLabels": {"app": "db"}},
                "template": {
                    "metadata": {"labels": {"app": "db"}},
                    "spec": {
                        "tolerations": [LEAF_TOLERATION],
                        "nodeSelector": {"kubernetes.io/hostname": "kosmos-cluster2"},
                        "containers": [
                            {
                                "name": "db",
                                "image": "postgres",
                                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                            }
                        ],
                    },
                },
                "volumeClaimTemplates": [
                    {
                        "metadata": {"name": "data"},
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "storageClassName": "kosmos-leaf",
                            "resources": {"requests": {"storage": "1Gi"}},
                        },
                    }
                ],
            },
        },
        namespace=namespace,
    )
    wait_for(lambda: running(pods(tree.host, namespace, "app=db"), 2), 90, "db-0 and db-1 Running")
    claims = get(tree.host, "pvc", "-n", namespace)["items"]
    assert {c["metadata"]["name"]: c["status"]["phase"] for c in claims} == {
        "data-db-0": "Bound",
        "data-db-1": "Bound",
    }
    assert running(pods(member, namespace, "app=db"), 2)
    tree.host.run("delete", "statefulset", "db", "-n", namespace, "--wait=true", timeout=60)
    tree.host.run("delete", "pvc", "--all", "-n", namespace, "--wait=true", timeout=60)
    for i in range(2):
        member.run("delete", "pv", f"pv-{namespace}-{i}", "--ignore-not-found", "--wait=false")


def test_edits_of_mutable_fields_reach_the_member_pod(tree: TreeEnv, namespace: str) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "edited", "labels": {"app": "edited"}},
        "spec": {
            "nodeName": "kosmos-cluster2",
            "tolerations": [LEAF_TOLERATION],
            "containers": [{"name": "app", "image": "nginx:1.14.2"}],
        },
    }
    apply(tree.host, pod, namespace=namespace)
    member = tree.member("cluster2")
    wait_for(lambda: running(pods(member, namespace, "app=edited"), 1), 60, "member pod Running")
    tree.host.run("label", "pod", "edited", "-n", namespace, "release=v2")
    tree.host.run("set", "image", "pod/edited", "-n", namespace, "app=nginx:1.15")

    def updated() -> bool:
        copy = get(member, "pod", "edited", "-n", namespace)
        return (
            copy["metadata"]["labels"].get("release") == "v2"
            and copy["spec"]["containers"][0]["image"] == "nginx:1.15"
        )

    wait_for(updated, 30, "label and image edits copied to the member pod")
