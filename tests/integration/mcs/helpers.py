"""Objects and reads the MCS integration tests share (kubectl against real apiservers)."""

from __future__ import annotations

import json
from typing import Any

from kosmos.api import names
from kosmos.local.kubectl import Kubectl
from kosmos.mcs.forge import derived_name
from tests.support import apply, get

ALPHA = "multicluster.x-k8s.io/v1alpha1"
BETA = "multicluster.x-k8s.io/v1beta1"
IMPORTS = "serviceimports.multicluster.x-k8s.io"
EXPORTS = "serviceexports.multicluster.x-k8s.io"


def service(name: str, ports: list[tuple[str, int, int]], **spec: Any) -> dict[str, Any]:
    """A selector-less Service (its slices are written by the test, as a controller would)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "ports": [
                {"name": n, "protocol": "TCP", "port": p, "targetPort": t} for n, p, t in ports
            ],
            **spec,
        },
    }


def source_slice(
    name: str, service_name: str, endpoints: list[tuple[str, bool]], ports: list[tuple[str, int]]
) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": name, "labels": {"kubernetes.io/service-name": service_name}},
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": [ip], "conditions": {"ready": ready}} for ip, ready in endpoints
        ],
        "ports": [{"name": n, "protocol": "TCP", "port": p} for n, p in ports],
    }


def export(name: str, api_version: str = BETA) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": "ServiceExport", "metadata": {"name": name}}


def publish(kubectl: Kubectl, namespace: str, name: str, ports: Any, endpoints: Any) -> None:
    """A Service with one source slice, and its export."""
    slice_ports = [(n, t) for n, _p, t in ports]
    apply(
        kubectl,
        service(name, ports),
        source_slice(f"{name}-src", name, endpoints, slice_ports),
        export(name),
        namespace=namespace,
    )


def imported(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any] | None:
    out = kubectl.run("get", IMPORTS, name, "-n", namespace, "-o", "json", "--ignore-not-found")
    return json.loads(out) if out.strip() else None


def mcs_slices(kubectl: Kubectl, namespace: str, name: str) -> list[dict[str, Any]]:
    selector = f"{names.LABEL_MCS_SERVICE_NAME}={name}"
    items: list[dict[str, Any]] = get(kubectl, "endpointslices", "-n", namespace, "-l", selector)[
        "items"
    ]
    return items


def addresses(kubectl: Kubectl, namespace: str, name: str) -> dict[str, set[str]]:
    """Per source cluster: the addresses of the MCS slices in this cluster."""
    out: dict[str, set[str]] = {}
    for item in mcs_slices(kubectl, namespace, name):
        source = item["metadata"]["labels"][names.LABEL_MCS_SOURCE_CLUSTER]
        for endpoint in item.get("endpoints") or []:
            out.setdefault(source, set()).update(endpoint["addresses"])
    return out


def derived(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any] | None:
    out = kubectl.run(
        "get", "service", derived_name(namespace, name), "-n", namespace, "-o", "json",
        "--ignore-not-found",
    )  # fmt: skip
    return json.loads(out) if out.strip() else None


def conditions(obj: dict[str, Any] | None) -> dict[str, tuple[str, str, str]]:
    found = ((obj or {}).get("status") or {}).get("conditions") or []
    return {c["type"]: (c["status"], c["reason"], c.get("message", "")) for c in found}


def export_of(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any] | None:
    out = kubectl.run("get", EXPORTS, name, "-n", namespace, "-o", "json", "--ignore-not-found")
    return json.loads(out) if out.strip() else None


def host_id(kubectl: Kubectl) -> str:
    """The host's cluster id: the root Cluster's name (annotated root), else the default."""
    for cluster in get(kubectl, "clusters.kosmos.io")["items"]:
        annotations = cluster["metadata"].get("annotations") or {}
        if annotations.get(names.ANNOTATION_CLUSTER_ROLE) == "root":
            return str(cluster["metadata"]["name"])
    return names.ROOT_CLUSTER_NAME


def get_exports(kubectl: Kubectl, namespace: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = get(kubectl, EXPORTS, "-n", namespace)["items"]
    return items
