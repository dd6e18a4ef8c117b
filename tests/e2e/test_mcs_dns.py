"""clusterset.local from a real pod: the member's own DNS forwards it to kosmos-coredns.

``local up`` installs Kosmos in-cluster and joins both members with ClusterTree, so every
cluster runs kosmos-coredns and its kube-system/coredns carries the clusterset.local stanza.
The test writes, in cluster1, what the MCS controller writes for an import (ServiceImport,
derived Service, EndpointSlice labelled for both the import and the derived Service) whose
endpoint is an HTTP pod on cluster2's real node, reached over ClusterLink. A client pod on
cluster1's real node resolves ``web.<ns>.svc.clusterset.local`` through its ordinary
resolv.conf and gets HTTP 200 by that name; ``kubernetes.default.svc.cluster.local`` still
resolves.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from kosmos.api import names
from kosmos.local.kosmos_plan import REAL_NODE_PLACEMENT
from kosmos.local.kubectl import Kubectl
from tests.e2e.conftest import E2EEnv
from tests.support import apply, get, wait_for

NS = "mcs-dns-e2e"
SHELL = "docker.io/kosmos/shell:v0.1.0"
HTTP = "docker.io/kosmos/http:v0.1.0"
DERIVED = "derived-web0000001"
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


def imported(cluster_ip: str, endpoint_ip: str) -> list[dict[str, Any]]:
    """What the MCS controller writes in an importing cluster for ``web`` from cluster2."""
    service_import = {
        "apiVersion": f"{names.MCS_GROUP}/v1beta1",
        "kind": "ServiceImport",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {
            "type": "ClusterSetIP",
            "ips": [cluster_ip],
            "ports": [{"name": "http", "protocol": "TCP", "port": 80}],
        },
    }
    endpoint_slice = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{DERIVED}-cluster2-4",
            "namespace": NS,
            "labels": {
                names.LABEL_MCS_SERVICE_NAME: "web",
                names.LABEL_MCS_SOURCE_CLUSTER: "cluster2",
                names.LABEL_SLICE_MANAGED_BY: names.MCS_CONTROLLER,
                names.LABEL_SLICE_SERVICE_NAME: DERIVED,
            },
        },
        "addressType": "IPv4",
        "ports": [{"name": "http", "protocol": "TCP", "port": 8080}],
        "endpoints": [{"addresses": [endpoint_ip], "conditions": {"ready": True}}],
    }
    return [service_import, endpoint_slice]


def test_a_real_pod_resolves_and_reaches_a_clusterset_name(e2e_env: E2EEnv, namespaces: None):
    cluster1, cluster2 = e2e_env.kubectl("cluster1"), e2e_env.kubectl("cluster2")
    apply(cluster2, pod("web", HTTP))
    backend = running_ip(cluster2, "web")
    derived = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": DERIVED, "namespace": NS},
        "spec": {"ports": [{"name": "http", "protocol": "TCP", "port": 80}]},
    }
    apply(cluster1, derived)
    cluster_ip = get(cluster1, "service", DERIVED, "-n", NS)["spec"]["clusterIP"]
    apply(cluster1, *imported(cluster_ip, backend))
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
