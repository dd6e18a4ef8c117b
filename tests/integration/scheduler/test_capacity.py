"""True capacity through the real kube-scheduler: a pod no single member node can hold
waits with our reason, though the leaf node's summed room could take it."""

from __future__ import annotations

from typing import Any

from kosmos.api.quantity import parse_quantity
from tests.integration.scheduler.support import (
    LEAVES,
    apply,
    bound,
    events,
    get,
    live_pods,
    wait_for,
)


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
