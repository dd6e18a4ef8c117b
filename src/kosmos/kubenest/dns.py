"""The tenant's cluster DNS as its pods see it: ``kube-dns`` at the ClusterIP kubelets name.

A local tenant's CoreDNS is a process of the operator's machine on a port of the tenant's
range, not a pod: pods on the tenant's real nodes reach it through a Service without a
selector (``kube-system/kube-dns``, ClusterIP :data:`~kosmos.kubenest.pki.CLUSTER_DNS`,
port 53) and an EndpointSlice of ours pointing at the advertise address and that port;
the node's kube-proxy (serving the tenant) does the translation. The node must reach the
advertise address, which is what real nodes need anyway (``joins.unreachable``).
"""

from __future__ import annotations

import contextlib

from kosmos.api import names
from kosmos.api.objects import Obj
from kosmos.api.resources import ENDPOINTSLICES, SERVICES
from kosmos.kube.client import Client
from kosmos.kube.errors import AlreadyExists
from kosmos.kubenest import pki

NAMESPACE = "kube-system"
SERVICE = "kube-dns"
SLICE = "kube-dns-kosmos"
PORTS = (("dns", "UDP"), ("dns-tcp", "TCP"))


def service() -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": SERVICE, "namespace": NAMESPACE, "labels": {"k8s-app": "kube-dns"}},
        "spec": {
            "clusterIP": pki.CLUSTER_DNS,
            "ports": [{"name": n, "port": 53, "protocol": p, "targetPort": 53} for n, p in PORTS],
        },
    }


def endpoint_slice(address: str, port: int) -> Obj:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": SLICE,
            "namespace": NAMESPACE,
            "labels": {
                "kubernetes.io/service-name": SERVICE,
                "endpointslice.kubernetes.io/managed-by": names.FIELD_MANAGER_KUBENEST,
            },
        },
        "addressType": "IPv6" if ":" in address else "IPv4",
        "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
        "ports": [{"name": n, "port": port, "protocol": p} for n, p in PORTS],
    }


async def ensure(tenant: Client, address: str, port: int) -> None:
    """Create the Service (once: its ClusterIP is immutable) and apply the slice."""
    with contextlib.suppress(AlreadyExists):
        await tenant.create(SERVICES, service())
    await tenant.apply(
        ENDPOINTSLICES,
        endpoint_slice(address, port),
        field_manager=names.FIELD_MANAGER_KUBENEST,
        force=True,
    )
