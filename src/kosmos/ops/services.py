"""What ``kosmosctl export svc``, ``import svc`` and ``get ... --all-clusters`` do.

The clusterset is the host plus every joined member; a member is reached through the
kubeconfig its Cluster names (as unjoin reaches it). Export and import are the seed
tutorial's two manual steps: a ServiceExport next to the host Service, and a ServiceImport
in one member built from that Service (type and ports), which the MCS controller then fills
in. Both check before they write, write one object, and say so when it is already there.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from kosmos.api import names
from kosmos.api.objects import Obj
from kosmos.api.resources import CLUSTERS, NAMESPACES, SERVICE_EXPORTS, SERVICE_IMPORTS, SERVICES
from kosmos.kube.client import Client
from kosmos.kube.errors import NotFound
from kosmos.ops import linkside
from kosmos.ops.errors import OperationError
from kosmos.ops.uninstall import is_root


@dataclass
class Member:
    """One cluster of the clusterset: a client, or why there is none."""

    name: str
    client: Client | None
    problem: str = ""


@contextlib.asynccontextmanager
async def clusterset(host: Client) -> AsyncIterator[list[Member]]:
    """The host (under the root Cluster's name) then every member, clients closed after."""
    clusters = (await host.list(CLUSTERS)).items
    root = next((c["metadata"]["name"] for c in clusters if is_root(c)), names.ROOT_CLUSTER_NAME)
    out = [Member(root, host)]
    for cluster in sorted(clusters, key=lambda c: str(c["metadata"]["name"])):
        if is_root(cluster):
            continue
        name = cluster["metadata"]["name"]
        client = await linkside.member_client(host, cluster, linked_only=False)
        out.append(Member(name, client, "" if client else "its kubeconfig cannot be read"))
    try:
        yield out
    finally:
        for member in out[1:]:
            if member.client is not None:
                await member.client.close()


def service_import(service: Obj) -> Obj:
    """The ServiceImport of a Service: Headless when clusterIP is None, else ClusterSetIP;
    each port's name, protocol, appProtocol and (service) port — an import has no target port."""
    spec = service.get("spec") or {}
    kind = "Headless" if spec.get("clusterIP") == "None" else "ClusterSetIP"
    ports = []
    for port in spec.get("ports") or []:
        item: Obj = {"protocol": port.get("protocol") or "TCP", "port": port["port"]}
        if port.get("name"):
            item["name"] = port["name"]
        if port.get("appProtocol"):
            item["appProtocol"] = port["appProtocol"]
        ports.append(item)
    meta = service["metadata"]
    return {
        "apiVersion": SERVICE_IMPORTS.api_version,
        "kind": "ServiceImport",
        "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
        "spec": {"type": kind, "ports": ports},
    }


def _shape(service_import: Obj) -> tuple[str, list[tuple[str, str, str, int]]]:
    """What ``import svc`` compares: the type and the ports (defaults filled in)."""
    spec = service_import.get("spec") or {}
    ports = [
        (p.get("name") or "", p.get("protocol") or "TCP", p.get("appProtocol") or "", p["port"])
        for p in spec.get("ports") or []
    ]
    return str(spec.get("type")), sorted(ports)


async def _service(host: Client, name: str, namespace: str) -> Obj:
    try:
        return await host.get(SERVICES, name, namespace)
    except NotFound:
        raise OperationError(
            f"service {namespace}/{name} not found in the host; create it first"
        ) from None


async def export_service(host: Client, name: str, namespace: str) -> str:
    """Create the ServiceExport of a host Service (idempotent)."""
    await _service(host, name, namespace)
    with contextlib.suppress(NotFound):
        await host.get(SERVICE_EXPORTS, name, namespace)
        return f"serviceexport {namespace}/{name} already exists"
    body = {
        "apiVersion": SERVICE_EXPORTS.api_version,
        "kind": "ServiceExport",
        "metadata": {"name": name, "namespace": namespace},
    }
    await host.create(SERVICE_EXPORTS, body)
    return f"serviceexport {namespace}/{name} created"


async def import_service(host: Client, cluster: str, name: str, namespace: str) -> str:
    """Create in member ``cluster`` the ServiceImport of a host Service (idempotent)."""
    desired = service_import(await _service(host, name, namespace))
    async with clusterset(host) as members:
        member = next((m for m in members[1:] if m.name == cluster), None)
        if member is None:
            joined = ", ".join(m.name for m in members[1:]) or "none"
            raise OperationError(f"cluster {cluster} is not joined (members: {joined})")
        if member.client is None:
            raise OperationError(f"cluster {cluster}: {member.problem}")
        return await _import_into(member.client, cluster, desired)


async def _import_into(client: Client, cluster: str, desired: Obj) -> str:
    name, namespace = desired["metadata"]["name"], desired["metadata"]["namespace"]
    where = f"serviceimport {namespace}/{name} in cluster {cluster}"
    try:
        current = await client.get(SERVICE_IMPORTS, name, namespace)
    except NotFound:
        current = None
    if current is not None:
        if _shape(current) == _shape(desired):
            return f"{where} already exists"
        have, want = _shape(current), _shape(desired)
        raise OperationError(
            f"{where} already exists with type {have[0]} ports {have[1]}, but the host "
            f"service has type {want[0]} ports {want[1]}; delete it there first"
        )
    try:
        await client.get(NAMESPACES, namespace)
    except NotFound:
        raise OperationError(f"namespace {namespace} does not exist in cluster {cluster}") from None
    await client.create(SERVICE_IMPORTS, desired)
    return f"{where} created"
