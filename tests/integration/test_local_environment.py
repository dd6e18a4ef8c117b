"""The local environment runs real control planes: versions, controllers, scheduler, GC."""

from __future__ import annotations

import ipaddress
import json
import time

import yaml

from kosmos.local.toolchain import GROUPS
from kosmos.local.topology import KWOK_NODE_SELECTOR
from tests.fixtures.clusters import LocalEnv

PINNED = next(g for g in GROUPS if g.name == "k8s").version()


def get_json(env: LocalEnv, cluster: str, *args: str) -> dict:
    return json.loads(env.kubectl(cluster).run(*args, "-o", "json"))


def wait_for(predicate, timeout: float = 60, interval: float = 0.5, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_every_apiserver_reports_the_pinned_release(local_env: LocalEnv):
    for cluster in local_env.names:
        version = json.loads(local_env.kubectl(cluster).run("get", "--raw", "/version"))
        assert version["gitVersion"] == PINNED, cluster


def test_each_cluster_has_its_own_kwok_nodes_with_topology_labels(local_env: LocalEnv):
    for plan in local_env.clusters:
        nodes = get_json(local_env, plan.name, "get", "nodes", "-l", KWOK_NODE_SELECTOR)["items"]
        assert sorted(n["metadata"]["name"] for n in nodes) == sorted(n.name for n in plan.nodes)
        for node in nodes:
            labels = node["metadata"]["labels"]
            assert labels["topology.kubernetes.io/region"] == plan.region
            assert labels["topology.kubernetes.io/zone"].startswith(plan.region)
            ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"]
            assert ready == "True"


def test_deployment_gets_replicaset_pods_scheduled_running_and_gc_on_namespace_delete(
    local_env: LocalEnv, namespace: str
):
    member = local_env.members[0]
    kubectl = local_env.kubectl(member)
    kubectl.run("create", "deployment", "web", "--image=nginx", "--replicas=3", "-n", namespace)

    replicasets = wait_for(
        lambda: get_json(local_env, member, "get", "rs", "-n", namespace)["items"],
        what="kube-controller-manager to create a ReplicaSet",
    )
    assert replicasets[0]["metadata"]["ownerReferences"][0]["kind"] == "Deployment"

    def running_pods():
        pods = get_json(local_env, member, "get", "pods", "-n", namespace)["items"]
        running = [p for p in pods if p["status"].get("phase") == "Running"]
        return running if len(running) == 3 else None

    pods = wait_for(running_pods, what="3 pods Running")
    kwok_nodes = {n.name for n in local_env.plan(member).nodes}
    for pod in pods:
        assert pod["spec"]["nodeName"] in kwok_nodes
        assert pod["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"
        scheduled = {c["type"]: c for c in pod["status"]["conditions"]}["PodScheduled"]
        assert scheduled["status"] == "True"
    assert any(
        e["source"].get("component") == "default-scheduler"
        or e.get("reportingComponent") == "default-scheduler"
        for e in get_json(local_env, member, "get", "events", "-n", namespace)["items"]
        if e["reason"] == "Scheduled"
    )

    kubectl.run("delete", "namespace", namespace, "--wait=false")
    wait_for(
        lambda: not kubectl.ok("get", "namespace", namespace),
        timeout=120,
        what="namespace deletion to garbage-collect its objects",
    )
    leftover = get_json(local_env, member, "get", "pods", "-A", "-l", "app=web")["items"]
    assert [p for p in leftover if p["metadata"]["namespace"] == namespace] == []


def test_kwok_leaves_nodes_without_its_label_alone(local_env: LocalEnv):
    """Kosmos will add leaf nodes to the host: kwok must never adopt them.

    A labelled control node created at the same time proves kwok was given the chance.
    """
    host = local_env.kubectl(local_env.host)
    key, value = KWOK_NODE_SELECTOR.split("=")
    nodes = {
        "kosmos-untouched-by-kwok": {},
        "kwok-adopted-control": {key: value},
    }
    for name in nodes:
        host.run("delete", "node", name, "--ignore-not-found")
    items = [
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": n, "labels": labels}}
        for n, labels in nodes.items()
    ]
    host.run(
        "create", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    )
    try:
        wait_for(
            lambda: get_json(local_env, local_env.host, "get", "node", "kwok-adopted-control")[
                "status"
            ].get("conditions"),
            timeout=30,
            what="kwok to adopt the labelled control node",
        )
        time.sleep(2)
        node = get_json(local_env, local_env.host, "get", "node", "kosmos-untouched-by-kwok")
        assert node["status"].get("conditions") is None
        assert node["status"].get("addresses") is None
    finally:
        for name in nodes:
            host.run("delete", "node", name, "--ignore-not-found")


def test_kubeconfigs_have_one_context_per_cluster_with_inline_credentials(local_env: LocalEnv):
    for plan in local_env.clusters:
        config = yaml.safe_load(local_env.kubeconfig(plan.name).read_text())
        assert [c["name"] for c in config["contexts"]] == [plan.name]
        assert config["clusters"][0]["cluster"]["server"] == (
            f"https://127.0.0.1:{plan.apiserver_port}"
        )
        user = config["users"][0]["user"]
        assert "client-certificate-data" in user and "client-key-data" in user


def test_pod_and_service_cidrs_are_the_planned_ones(local_env: LocalEnv, namespace: str):
    for plan in local_env.clusters:
        kubectl = local_env.kubectl(plan.name)
        kubectl.run("create", "service", "clusterip", "probe", "--tcp=80:80", "-n", namespace)
        svc = get_json(local_env, plan.name, "get", "service", "probe", "-n", namespace)
        assert ipaddress.ip_address(svc["spec"]["clusterIP"]) in ipaddress.ip_network(
            plan.service_cidr
        ), plan.name
