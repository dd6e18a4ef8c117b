"""True capacity through the real kube-scheduler: a pod no single member node can hold
waits with our reason, though the leaf node's summed room could take it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kosmos.api.quantity import parse_quantity
from tests.integration.scheduler.support import LEAVES, bound, events, live_pods
from tests.support import apply, get, wait_for


def deployment(cpu: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "big"},
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": {"app": "big"}},
            "template": {
                "metadata": {"labels": {"app": "big"}},
                "spec": {
                    "schedulerName": "kosmos-scheduler",
                    "nodeSelector": {"kosmos.io/node": "true"},
                    "terminationGracePeriodSeconds": 0,
                    "containers": [
                        {"name": "app", "image": "busybox", "resources": {"requests": {"cpu": cpu}}}
                    ],
                },
            },
        },
    }


def test_pod_bigger_than_any_member_node_waits_with_our_reason_until_it_shrinks(workers, namespace):
    host = workers.host
    leaf_cpu = {
        n: parse_quantity(get(host, "node", n)["status"]["allocatable"]["cpu"]) for n in LEAVES
    }
    # members have nodes of 4, 8 and 16 cpus: 20 fits a leaf's sum (28), no single node
    assert all(cpu >= 20 for cpu in leaf_cpu.values()), leaf_cpu
    apply(host, deployment("20"), namespace=namespace)
    pending = wait_for(lambda: live_pods(host, namespace, "app=big"), 30, "the big pod")[0]
    name = pending["metadata"]["name"]
    messages = wait_for(
        lambda: events(host, namespace, name), 60, "FailedScheduling for the big pod"
    )
    assert any(
        "leaf node(s) of cluster1 with no member node that fits the pod" in m
        and "requests cpu 20; most free on one member node: cpu " in m
        for m in messages
    ), messages
    assert not get(host, "pod", name, "-n", namespace)["spec"].get("nodeName")
    condition = {
        c["type"]: c for c in get(host, "pod", name, "-n", namespace)["status"]["conditions"]
    }
    assert "no member node that fits the pod" in condition["PodScheduled"]["message"]

    apply(host, deployment("10"), namespace=namespace)  # a new ReplicaSet, a smaller pod
    (placed,) = bound(host, namespace, 1, "app=big")
    assert placed["spec"]["nodeName"] in LEAVES
    assert placed["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "10"


GPU = "nvidia.com/gpu"


@pytest.fixture
def gpu_node(scheduler):
    """cluster1-node3 (4 cpu) gets 2 GPUs: the leaf node sums 28 cpu and 2 GPUs."""
    member = scheduler.tree.member("cluster1")

    def patch(value):
        body = {"status": {"capacity": {GPU: value}, "allocatable": {GPU: value}}}
        member.run(
            "patch",
            "node",
            "cluster1-node3",
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps(body),
        )

    patch("2")
    wait_for(
        lambda: get(scheduler.host, "node", "kosmos-cluster1")["status"]["allocatable"].get(GPU),
        30,
        "the leaf node to advertise the GPUs",
    )
    yield member
    patch(None)


def gpu_pod(name: str, cpu: str) -> dict[str, Any]:
    requests = {"cpu": cpu, GPU: "1"}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "schedulerName": "kosmos-scheduler",
            "nodeSelector": {"kosmos.io/owner-cluster": "cluster1"},
            "terminationGracePeriodSeconds": 0,
            "containers": [
                {
                    "name": "app",
                    "image": "cuda",
                    "resources": {"requests": requests, "limits": {GPU: "1"}},
                }
            ],
        },
    }


def test_extended_resources_must_be_on_the_same_member_node_as_the_cpu(
    scheduler, gpu_node, namespace
):
    host = scheduler.host
    # 6 cpu and a GPU: the leaf has both in sum, but the GPU node has 4 cpu
    apply(host, gpu_pod("wide", "6"), namespace=namespace)
    messages = wait_for(lambda: events(host, namespace, "wide"), 60, "FailedScheduling for wide")
    assert any("no single member node has all of it free" in m for m in messages), messages
    apply(host, gpu_pod("narrow", "2"), namespace=namespace)
    placed = {p["metadata"]["name"]: p["spec"].get("nodeName") for p in live_pods(host, namespace)}
    narrow = wait_for(
        lambda: get(host, "pod", "narrow", "-n", namespace)["spec"].get("nodeName"),
        60,
        "narrow bound",
    )
    assert narrow == "kosmos-cluster1" and not placed.get("wide")
    copy = wait_for(
        lambda: (
            (p := get(gpu_node, "pod", "narrow", "-n", namespace))["spec"].get("nodeName") and p
        ),
        60,
        "the member copy bound",
    )
    assert copy["spec"]["nodeName"] == "cluster1-node3"  # the only member node with a GPU


BIG_NODE = "cluster1-node2"  # the 16-cpu member node; the others have 8 and 4
RESERVED = {"key": "reserved", "value": "batch", "effect": "NoSchedule"}


@pytest.fixture
def tainted_big_node(scheduler):
    """cluster1's only node with room for 10 cpu carries a taint ordinary pods lack."""
    member = scheduler.tree.member("cluster1")
    member.run("taint", "node", BIG_NODE, "reserved=batch:NoSchedule", "--overwrite")
    yield member
    member.run("taint", "node", BIG_NODE, "reserved:NoSchedule-")


def ten_cpu_pod(name: str, tolerations: list[dict[str, str]]) -> dict[str, Any]:
    body = gpu_pod(name, "10")
    container = body["spec"]["containers"][0]
    container["image"] = "busybox"
    container["resources"] = {"requests": {"cpu": "10"}}
    body["spec"]["tolerations"] = tolerations
    return body


def test_member_node_taints_the_pod_does_not_tolerate_give_no_room(
    scheduler, tainted_big_node, namespace
):
    host = scheduler.host
    apply(host, ten_cpu_pod("plain", []), namespace=namespace)
    messages = wait_for(lambda: events(host, namespace, "plain"), 60, "FailedScheduling for plain")
    assert any(
        "leaf node(s) of cluster1 with no member node that fits the pod" in m
        and "1 member node(s) with taints the pod does not tolerate" in m
        for m in messages
    ), messages
    toleration = {**RESERVED, "operator": "Equal"}
    apply(host, ten_cpu_pod("tolerant", [toleration]), namespace=namespace)
    assert (
        wait_for(
            lambda: get(host, "pod", "tolerant", "-n", namespace)["spec"].get("nodeName"),
            60,
            "tolerant bound",
        )
        == "kosmos-cluster1"
    )
    copy = wait_for(
        lambda: (
            (p := get(tainted_big_node, "pod", "tolerant", "-n", namespace))["spec"].get("nodeName")
            and p
        ),
        60,
        "the member copy bound",
    )
    assert copy["spec"]["nodeName"] == BIG_NODE
    assert not get(host, "pod", "plain", "-n", namespace)["spec"].get("nodeName")
