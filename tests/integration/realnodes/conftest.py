"""Real nodes of the local environment: pods that run real containers.

The session environment has one real node per cluster (``tests/fixtures/clusters.py``);
pod-to-pod traffic between nodes needs two in one cluster, so this package adds
``cluster1-real2`` for its duration and removes it afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from kosmos.local.nodes import lifecycle
from kosmos.local.nodes.artifacts import image_refs
from kosmos.local.nodes.plan import RealNodePlan
from tests.fixtures.clusters import LocalEnv
from tests.fixtures.realpods import real_pod
from tests.support import get, wait_for

MEMBER = "cluster1"


@dataclass
class RealEnv:
    env: LocalEnv
    second: RealNodePlan  # cluster1-real2

    @property
    def first(self) -> str:
        return f"{MEMBER}-real1"

    def kubectl(self, cluster: str = MEMBER) -> Any:
        return self.env.kubectl(cluster)


@pytest.fixture(scope="package")
def real(local_env: LocalEnv) -> Iterator[RealEnv]:
    missing = [c for c in local_env.names if not local_env.real_nodes(c)]
    if missing:
        pytest.fail(
            f"clusters without a real node: {', '.join(missing)} (the running environment was "
            "started without them: `kosmosctl local down`, then `scripts/up`)"
        )
    cluster = local_env.plan(MEMBER)
    kubectl = local_env.kubectl(MEMBER)
    second = lifecycle.add_node(cluster, 2, local_env.environment, kubectl, print)
    try:
        yield RealEnv(local_env, second)
    finally:
        report = lifecycle.remove_node(second.name, kubectl)
        assert report.left == [], report.left


def image(key: str) -> str:
    return image_refs()[key]


def pod(name: str, node: str, key: str, command: list[str] | None = None, **extra: Any) -> Any:
    """A pod bound to ``node`` running our image ``key`` (``pause``, ``shell``, ``http``...)."""
    return real_pod(name, node, image(key), command, **extra)


def running(kubectl: Any, namespace: str, *names: str, timeout: float = 90) -> dict[str, Any]:
    """Wait until the pods are Running and Ready; returns them by name."""

    def ready() -> dict[str, Any] | None:
        found = {}
        for name in names:
            body = get(kubectl, "pod", name, "-n", namespace)
            conditions = {c["type"]: c["status"] for c in body["status"].get("conditions") or []}
            if conditions.get("Ready") != "True":
                return None
            found[name] = body
        return found

    result: dict[str, Any] = wait_for(ready, timeout, f"pods {', '.join(names)} Ready")
    return result
