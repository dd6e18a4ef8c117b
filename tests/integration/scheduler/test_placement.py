"""Per-cluster placement through the real kube-scheduler and ReplicaSet/StatefulSet
controllers: the split holds from zero, up, down and after pods are deleted."""

from __future__ import annotations

from collections import Counter
from typing import Any

from kosmos.local.kubectl import Kubectl
from tests.integration.scheduler.support import bound, live_pods, policy
from tests.support import apply, get, wait_for

COST = "controller.kubernetes.io/pod-deletion-cost"
C1, C2 = "kosmos-cluster1", "kosmos-cluster2"


def workload(kind: str, name: str, replicas: int) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {
                "schedulerName": "kosmos-scheduler",
                "terminationGracePeriodSeconds": 0,
                "containers": [{"name": "app", "image": "busybox"}],
            },
        },
    }
    if kind == "StatefulSet":
        spec.update(serviceName=name, podManagementPolicy="Parallel")
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}


def placement(name: str, clusters: list[dict[str, Any]], namespace: str) -> dict[str, Any]:
    selectors = [{"labelSelector": {"matchLabels": {"app": name}}, "policyName": "split"}]
    term = {"name": "split", "nodeType": "leaf", "placement": {"clusters": clusters}}
    return policy(f"{name}-split", selectors, [term], namespace)


def split(host: Kubectl, namespace: str, app: str, count: int) -> Counter[str]:
    return Counter(p["spec"]["nodeName"] for p in bound(host, namespace, count, f"app={app}", 120))


def scale(host: Kubectl, namespace: str, kind: str, name: str, replicas: int) -> None:
    host.run("scale", kind.lower(), name, "-n", namespace, f"--replicas={replicas}")


def _keepers(host: Kubectl, namespace: str, count: int) -> Counter[str]:
    """Where the ``count`` pods with the highest deletion cost run (None if a cost is missing)."""
    pods = live_pods(host, namespace, "app=web")
    costs = [(p["metadata"].get("annotations") or {}).get(COST) for p in pods]
    if len(pods) < count or None in costs:
        return Counter()
    ranked = sorted(zip(costs, pods, strict=True), key=lambda c: -int(c[0]))
    return Counter(p["spec"]["nodeName"] for _, p in ranked[:count])


def _ready(host: Kubectl, namespace: str) -> int:
    return sum(
        any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in p["status"].get("conditions") or []
        )
        for p in live_pods(host, namespace, "app=web")
    )


def test_weights_7_3_hold_from_zero_up_down_and_after_deleting_pods(workers, namespace):
    host = workers.host
    weights = [{"name": "cluster1", "weight": 7}, {"name": "cluster2", "weight": 3}]
    apply(
        host,
        placement("web", weights, namespace),
        workload("Deployment", "web", 0),
        namespace=namespace,
    )

    scale(host, namespace, "Deployment", "web", 10)
    assert split(host, namespace, "web", 10) == {C1: 7, C2: 3}

    scale(host, namespace, "Deployment", "web", 20)
    assert split(host, namespace, "web", 20) == {C1: 14, C2: 6}
    # scale-down picks victims by deletion cost: every bound pod carries one before we shrink
    # ... and the costs have settled: the ten dearest pods are the 7:3 split (costs follow
    # bindings through the extender's watch, so right after a burst some may still move)
    wait_for(lambda: _keepers(host, namespace, 10) == {C1: 7, C2: 3}, 30, "settled deletion costs")
    # ... and every pod is Ready: the ReplicaSet controller removes Pending and unready pods
    # before it looks at deletion costs (a member slower to report status loses its pods)
    wait_for(lambda: _ready(host, namespace) == 20, 120, "all 20 pods Ready")
    scale(host, namespace, "Deployment", "web", 10)
    assert split(host, namespace, "web", 10) == {C1: 7, C2: 3}

    pods = live_pods(host, namespace, "app=web")
    doomed = [p["metadata"]["name"] for p in pods if p["spec"]["nodeName"] == C1][:3]
    doomed += [p["metadata"]["name"] for p in pods if p["spec"]["nodeName"] == C2][:1]
    host.run("delete", "pod", "-n", namespace, *doomed, "--wait=false")
    wait_for(
        lambda: (
            not {p["metadata"]["name"] for p in live_pods(host, namespace, "app=web")} & set(doomed)
        ),
        30,
        "the deleted pods to be terminating",
    )
    assert split(host, namespace, "web", 10) == {C1: 7, C2: 3}


def test_fixed_replicas_first_then_weights(workers, namespace):
    clusters = [{"name": "cluster2", "replicas": 2}, {"name": "cluster1", "weight": 1}]
    apply(
        workers.host,
        placement("fixed", clusters, namespace),
        workload("Deployment", "fixed", 5),
        namespace=namespace,
    )
    assert split(workers.host, namespace, "fixed", 5) == {C2: 2, C1: 3}


def test_statefulset_ordinals_keep_the_split_when_scaled_down(workers, namespace):
    host = workers.host
    weights = [{"name": "cluster1", "weight": 1}, {"name": "cluster2", "weight": 1}]
    apply(
        host,
        placement("db", weights, namespace),
        workload("StatefulSet", "db", 4),
        namespace=namespace,
    )
    placed = {
        p["metadata"]["name"]: p["spec"]["nodeName"]
        for p in bound(host, namespace, 4, "app=db", 120)
    }
    assert placed == {"db-0": C1, "db-1": C2, "db-2": C1, "db-3": C2}
    scale(host, namespace, "StatefulSet", "db", 3)  # removes db-3
    assert split(host, namespace, "db", 3) == {C1: 2, C2: 1}
    assert get(host, "statefulset", "db", "-n", namespace)["spec"]["replicas"] == 3
