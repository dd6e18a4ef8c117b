"""metrics-server in the host of the local environment: what ``kubectl top`` answers.

``kosmosctl local up`` deploys metrics-server when the host has real nodes; the test session
tears Kosmos's set-up down and cordons real nodes (``tests/fixtures/clusters.py``), so this
package deploys it the same way, through :func:`kosmos.ops.local_metrics.set_up`,
with the host's real nodes uncordoned for the moment its pod is scheduled, and removes it
afterwards (:func:`kosmos.ops.local_metrics.tear_down`), as the session's tear-down did.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from kosmos.local import metrics_server
from kosmos.local.kubectl import KubectlError
from kosmos.ops import local_metrics
from kosmos.ops.host import Host
from tests.fixtures.clusters import LocalEnv
from tests.support import get, wait_for

#: metrics-server reports a pod's CPU after two scrapes (``--metric-resolution=15s``).
FIRST_METRICS_TIMEOUT = 120.0
TOP_ROW = re.compile(r"^(\S+)\s+(\d+)m\s+(?:\S+%\s+)?(\d+)Mi\b")


@dataclass(frozen=True)
class Usage:
    """One ``kubectl top`` row: CPU in millicores, memory in MiB."""

    name: str
    cpu_millis: int
    memory_mib: int


@dataclass
class MetricsEnv:
    env: LocalEnv

    def top(self, kind: str, name: str, *args: str, cluster: str = "") -> Usage:
        """``kubectl top <kind> <name>`` once it answers with numbers (not ``<unknown>``)."""
        kubectl = self.env.kubectl(cluster or self.env.host)

        def row() -> Usage | None:
            out = kubectl.run("top", kind, name, *args, "--no-headers", timeout=30)
            match = TOP_ROW.match(out.strip())
            if match is None:
                return None
            return Usage(match.group(1), int(match.group(2)), int(match.group(3)))

        usage: Usage = wait_for(
            row,
            FIRST_METRICS_TIMEOUT,
            f"`kubectl top {kind} {name}`",
            interval=3,
            ignoring=(KubectlError,),  # "metrics not available yet" until the first scrapes
        )
        return usage

    def pod_metrics(self, namespace: str, name: str) -> dict[str, Any]:
        """The metrics.k8s.io PodMetrics behind ``kubectl top pod``, in exact units."""
        path = f"/apis/{metrics_server.API_GROUP}/v1beta1/namespaces/{namespace}/pods/{name}"
        kubectl = self.env.kubectl(self.env.host)

        def fetch() -> dict[str, Any]:
            body: dict[str, Any] = json.loads(kubectl.run("get", "--raw", path, timeout=30))
            return body

        metrics: dict[str, Any] = wait_for(
            fetch,
            FIRST_METRICS_TIMEOUT,
            f"PodMetrics {namespace}/{name}",
            interval=3,
            ignoring=(KubectlError,),
        )
        return metrics


@pytest.fixture(scope="package")
def metrics(local_env: LocalEnv) -> Iterator[MetricsEnv]:
    workers = local_env.real_nodes(local_env.host)
    if not workers:
        pytest.fail(
            "the host has no real node, so metrics-server cannot run (the running environment "
            "was started without them: `kosmosctl local down`, then `scripts/up`)"
        )
    host = local_env.kubectl(local_env.host)
    plan = local_env.plan(local_env.host)
    operations = Host(kubeconfig=str(local_env.kubeconfig(local_env.host)))
    host.run("uncordon", *workers)
    try:
        local_metrics.set_up(operations, plan, print)
    finally:
        host.run("cordon", *workers)
    yield MetricsEnv(local_env)
    local_metrics.tear_down(operations, print)


def busy_container(image: str) -> dict[str, Any]:
    """A container that uses a little CPU every second and holds ~8 MiB, so its usage is
    measurably above zero in ``kubectl top``'s units (m, Mi)."""
    script = (
        'x=$(head -c 8000000 /dev/zero | tr "\\0" a); '
        "while :; do i=0; while [ $i -lt 3000 ]; do i=$((i+1)); done; sleep 1; done"
    )
    return {
        "name": "busy",
        "image": image,
        "imagePullPolicy": "Never",
        "command": ["sh", "-c", script],
    }


def pod_running(kubectl: Any, namespace: str, name: str, timeout: float = 120) -> dict[str, Any]:
    def running() -> dict[str, Any] | None:
        body: dict[str, Any] = get(kubectl, "pod", name, "-n", namespace)
        return body if body["status"].get("phase") == "Running" else None

    result: dict[str, Any] = wait_for(running, timeout, f"pod {namespace}/{name} Running")
    return result
