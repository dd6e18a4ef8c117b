"""clusterset.local from a real pod: the member's own DNS forwards it to kosmos-coredns.

``local up`` installs Kosmos in-cluster and joins both members with ClusterTree, so every
cluster runs kosmos-coredns and its kube-system/coredns carries the clusterset.local stanza.
Here a member exports (the MCS model: any cluster of the clusterset may): an HTTP pod on
cluster2's real node, its Service and a ServiceExport in cluster2. The MCS controller imports
it into cluster1 (ServiceImport, derived Service, slices whose endpoint is reached over
ClusterLink). A client pod on cluster1's real node resolves ``web.<ns>.svc.clusterset.local``
through its ordinary resolv.conf to the import's IP and gets HTTP 200 by that name;
``kubernetes.default.svc.cluster.local`` still resolves.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from kosmos.api import names
from kosmos.local.images import HTTP_PORT, HTTP_REF, SHELL_REF
from kosmos.local.kosmos_plan import REAL_NODE_PLACEMENT
from kosmos.local.kubectl import Kubectl
from tests.e2e.conftest import E2EEnv
from tests.support import apply, get, wait_for

NS = "mcs-dns-e2e"
SHELL = SHELL_REF
HTTP = HTTP_REF
NAME = f"web.{NS}.svc.{names.MCS_ZONE}"


def pod(name: str, image: str, command: list[str] | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "image": image, "imagePullPolicy": "IfNotPresent"}
    if command:
        container["command"] = command
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": {"app": name}},
        "spec": {**REAL_NODE_PLACEMENT, "restartPolicy": "Never", "containers": [container]},
    }


@pytest.fixture
def namespaces(e2e_env: E2EEnv) -> Iterator[None]:
    for cluster in ("cluster1", "cluster2"):
        e2e_env.kubectl(cluster).run("create", "namespace", NS)
    yield
    for cluster in ("cluster1", "cluster2"):
        e2e_env.kubectl(cluster).run("delete", "namespace", NS, "--wait=false")


def running_ip(kubectl: Kubectl, name: str) -> str:
    def ip() -> str | None:
        status = get(kubectl, "pod", name, "-n", NS).get("status", {})
        return status.get("podIP") if status.get("phase") == "Running" else None

    return str(wait_for(ip, 120, f"pod {name} Running"))


def exported() -> list[dict[str, Any]]:
    """``web``'s Service and its ServiceExport, in cluster2."""
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {
            "selector": {"app": "web"},
            "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": HTTP_PORT}],
        },
    }
    export = {
        "apiVersion": f"{names.MCS_GROUP}/v1beta1",
        "kind": "ServiceExport",
        "metadata": {"name": "web", "namespace": NS},
    }
    return [service, export]


def test_a_real_pod_resolves_and_reaches_a_clusterset_name(e2e_env: E2EEnv, namespaces: None):
    cluster1, cluster2 = e2e_env.kubectl("cluster1"), e2e_env.kubectl("cluster2")
    apply(cluster2, pod("web", HTTP))
    running_ip(cluster2, "web")
    apply(cluster2, *exported())

    def clusterset_ip() -> str | None:
        found = cluster1.run("get", f"serviceimports.{names.MCS_GROUP}", "web", "-n", NS,
                             "-o", "jsonpath={.spec.ips[0]}", "--ignore-not-found")  # fmt: skip
        return found.strip() or None

    cluster_ip = wait_for(clusterset_ip, 60, "cluster1's import of web with its clusterset IP")
    script = (
        "set -e; "
        "for i in $(seq 60); do nslookup " + NAME + " && break; sleep 1; done; "
        "nslookup " + NAME + " | grep -q " + cluster_ip + "; "
        "nslookup kubernetes.default.svc.cluster.local; "
        "for i in $(seq 30); do wget -q -O /tmp/out http://" + NAME + "/ && break; sleep 1; done; "
        "cat /tmp/out; grep -q web /tmp/out"
    )
    apply(cluster1, pod("client", SHELL, ["sh", "-c", script]))

    def finished() -> str | None:
        phase = get(cluster1, "pod", "client", "-n", NS).get("status", {}).get("phase")
        return phase if phase in ("Succeeded", "Failed") else None

    phase = wait_for(finished, 180, "the client pod to finish")
    logs = cluster1.run("logs", "client", "-n", NS)
    assert phase == "Succeeded", logs
    assert "web" in logs.splitlines()[-1]  # the HTTP image answers GET / with its pod name
