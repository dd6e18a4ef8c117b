"""Helpers of the scheduler tests: pods and policies to apply, bindings to wait for, events."""

from __future__ import annotations

from collections import Counter
from typing import Any

from kosmos.api.objects import Obj
from kosmos.local.kubectl import Kubectl
from tests.support import get, wait_for

LEAVES = ("kosmos-cluster1", "kosmos-cluster2")
HOST_WORKERS = ("host-worker1", "host-worker2")  # untainted; host-worker3 is tainted


def live_pods(kubectl: Kubectl, namespace: str, selector: str = "") -> list[Obj]:
    args = ["pods", "-n", namespace] + (["-l", selector] if selector else [])
    return [p for p in get(kubectl, *args)["items"] if not p["metadata"].get("deletionTimestamp")]


def bound(kubectl: Kubectl, namespace: str, count: int, selector: str = "", t: float = 60) -> list:
    """Wait until exactly ``count`` live pods exist and all are bound; returns them."""

    def ready() -> list[Obj] | None:
        pods = live_pods(kubectl, namespace, selector)
        done = len(pods) == count and all(p["spec"].get("nodeName") for p in pods)
        return pods if done else None

    result: list[Obj] = wait_for(ready, t, f"{count} pods bound in {namespace} ({selector})")
    return result


def nodes_of(pods: list[Obj]) -> Counter[str]:
    return Counter(p["spec"]["nodeName"] for p in pods)


def pod(name: str, labels: Obj | None = None, **spec: Any) -> Obj:
    body = {
        "schedulerName": "kosmos-scheduler",
        "containers": [{"name": "app", "image": "busybox"}],
        "terminationGracePeriodSeconds": 0,
        **spec,
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": body,
    }


def policy(name: str, selectors: list[Obj], terms: list[Obj], namespace: str | None) -> Obj:
    meta: Obj = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {
        "apiVersion": "kosmos.io/v1alpha1",
        "kind": "DistributionPolicy" if namespace else "ClusterDistributionPolicy",
        "metadata": meta,
        "spec": {"resourceSelectors": selectors, "policyTerms": terms},
    }


def events(kubectl: Kubectl, namespace: str, name: str, reason: str = "FailedScheduling") -> list:
    items = get(
        kubectl, "events", "-n", namespace, "--field-selector", f"involvedObject.name={name}"
    )
    return [e["message"] for e in items["items"] if e.get("reason") == reason]
