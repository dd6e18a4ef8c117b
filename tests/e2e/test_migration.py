"""The seed's "Application Migration" tutorial on real nodes.

An nginx Deployment and Service made in cluster1 without Kosmos (the tutorial's manifests;
our HTTP image instead of ``nginx:1.14-alpine``, which no registry-less node can pull, and the
placement that puts it on cluster1's real node) are migrated by the tutorial's PromotePolicy
and rolled back. The member pod's uid, its container's start time and restart count are the
same throughout; after the migration the host's Deployment scaled to 3 makes two more pods in
cluster1 through ClusterTree, and the rollback removes them and gives the member its
Deployment back.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from kosmos.api import names
from kosmos.local import kosmos_plan
from kosmos.local.kubectl import Kubectl
from tests.e2e.conftest import E2EEnv
from tests.support import get, wait_for

NS = "nginx-test"
POLICY = "promote-policy-example"
MEMBER = "cluster1"
EXCLUDED = ["events", "events.events.k8s.io", "endpoints", "endpointslices.discovery.k8s.io"]


def _tutorial_app() -> list[dict[str, Any]]:
    placement = kosmos_plan.REAL_NODE_PLACEMENT
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "nginx", "namespace": NS},
        "spec": {
            "selector": {"matchLabels": {"app": "nginx"}},
            "replicas": 1,
            "template": {
                "metadata": {"labels": {"app": "nginx"}, "deletionGracePeriodSeconds": 30},
                "spec": {
                    **placement,
                    "containers": [
                        {
                            "name": "nginx",
                            "image": kosmos_plan.SAMPLE_IMAGE,
                            "imagePullPolicy": "IfNotPresent",
                            "env": [{"name": "PORT", "value": "80"}],
                            "ports": [{"containerPort": 80}],
                        }
                    ],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "nginx-service", "namespace": NS},
        "spec": {
            "selector": {"app": "nginx"},
            "ports": [{"protocol": "TCP", "port": 80, "targetPort": 80}],
            "type": "ClusterIP",
        },
    }
    return [deployment, service]


def _policy(rollback: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "includedNamespaces": [NS],
        "excludedNamespaceScopedResources": EXCLUDED,
        "clusterName": MEMBER,
    }
    if rollback:
        spec = {"rollback": "true", **spec}
    return {
        "apiVersion": "kosmos.io/v1alpha1",
        "kind": "PromotePolicy",
        "metadata": {"name": POLICY, "namespace": "default"},
        "spec": spec,
    }


def _apply(kubectl: Kubectl, *bodies: Any) -> None:
    for body in bodies:
        kubectl.run("apply", "-f", "-", stdin=json.dumps(body))


def _containers(kubectl: Kubectl) -> dict[str, tuple[str, str, int]]:
    """Running pods: name -> (uid, container start time, restarts)."""
    out = {}
    for pod in get(kubectl, "pods", "-n", NS)["items"]:
        statuses = pod["status"].get("containerStatuses") or []
        running = statuses and (statuses[0].get("state") or {}).get("running")
        if pod["metadata"].get("deletionTimestamp") or not running:
            continue
        out[pod["metadata"]["name"]] = (
            pod["metadata"]["uid"],
            running["startedAt"],
            statuses[0]["restartCount"],
        )
    return out


def _phase(host: Kubectl) -> str:
    return str(
        (get(host, "promotepolicy", POLICY, "-n", "default").get("status") or {}).get("phase") or ""
    )


@pytest.fixture
def tutorial(e2e_env: E2EEnv) -> Iterator[dict[str, tuple[str, str, int]]]:
    member, host = e2e_env.kubectl(MEMBER), e2e_env.kubectl()
    member.run("create", "namespace", NS)
    try:
        _apply(member, *_tutorial_app())
        yield wait_for(lambda: _containers(member), 180, "the tutorial's nginx pod running")
    finally:
        host.run("delete", "promotepolicy", POLICY, "-n", "default", "--ignore-not-found")
        for kubectl in (host, member):
            kubectl.run("delete", "namespace", NS, "--ignore-not-found", "--wait=false")


def test_seed_tutorial_migrates_and_rolls_back_without_restarting_the_pod(
    e2e_env: E2EEnv, tutorial: dict[str, tuple[str, str, int]]
):
    member, host = e2e_env.kubectl(MEMBER), e2e_env.kubectl()
    before = tutorial
    _apply(host, _policy())
    wait_for(
        lambda: _phase(host) in ("Completed", "FailedPrecheck", "RolledBack"),
        180,
        "the migration to finish",
    )
    status = get(host, "promotepolicy", POLICY, "-n", "default")["status"]
    assert status["phase"] == "Completed", status
    assert _containers(member) == before, "uid, start time and restarts unchanged"
    assert not member.ok("get", "deployment", "nginx", "-n", NS)
    assert get(host, "namespace", NS)["metadata"]["labels"][names.LABEL_PROMOTED_FROM] == MEMBER
    wait_for(lambda: _containers(host).keys() == before.keys(), 60, "the host pod Running")

    host.run("scale", "deployment", "nginx", "-n", NS, "--replicas", "3")
    wait_for(lambda: len(_containers(member)) == 3, 180, "3 nginx pods running in cluster1")
    after = _containers(member)
    assert {k: after[k] for k in before} == before, "the first pod kept running"
    leaves = {p["spec"]["nodeName"] for p in get(host, "pods", "-n", NS)["items"]}
    assert leaves == {f"kosmos-{MEMBER}"}

    _apply(host, _policy(rollback=True))
    wait_for(lambda: _phase(host) in ("RolledBack", "FailedRollback"), 180, "the rollback")
    assert _phase(host) == "RolledBack"
    wait_for(lambda: not host.ok("get", "namespace", NS), 120, "the host namespace gone")
    wait_for(lambda: _containers(member) == before, 120, "cluster1 as it was before")
    deployment = get(member, "deployment", "nginx", "-n", NS)
    assert deployment["spec"]["replicas"] == 1
    wait_for(
        lambda: (
            get(member, "deployment", "nginx", "-n", NS)["status"].get("availableReplicas") == 1
        ),
        60,
        "the member's Deployment available again",
    )
