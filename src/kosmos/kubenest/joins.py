"""What a real node is given to join a tenant: the apiserver, its CA, fresh credentials.

The kubelet gets a client certificate ``system:node:<node>`` in ``system:nodes`` (the
Node authorizer then limits it to its own node and pods), kube-proxy one as
``system:kube-proxy`` (the default ``system:node-proxier`` binding), both from the tenant's
CA, made for this join (a node that returns holds nothing another tenant could use). The
apiserver is the one ``spec.kubeconfig`` names: the node must reach it, so a tenant
published on a loopback address cannot take real nodes (:func:`unreachable` says so).
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
from typing import Any
from urllib.parse import urlsplit

import yaml

from kosmos.api import nodeagent
from kosmos.api.objects import Obj, namespace_of
from kosmos.api.resources import SECRETS
from kosmos.kube.client import Client
from kosmos.kubenest import dns, phases, pki
from kosmos.kubenest.components import COREDNS

NODE_GROUP = "system:nodes"
PROXY_USER = "system:kube-proxy"


def server_of(vc: Obj) -> str:
    """The apiserver URL of the tenant's published kubeconfig ('' when there is none)."""
    encoded = (vc.get("spec") or {}).get("kubeconfig") or ""
    try:
        config: Any = yaml.safe_load(base64.b64decode(encoded))
        return str(config["clusters"][0]["cluster"]["server"])
    except (ValueError, TypeError, KeyError, IndexError, yaml.YAMLError):
        return ""


def unreachable(vc: Obj) -> str:
    """Why real nodes cannot reach this tenant's apiserver ('' when they can)."""
    server = server_of(vc)
    if not server:
        return "the virtual cluster has no usable spec.kubeconfig yet"
    host = urlsplit(server).hostname or ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if loopback:
        return (
            f"its apiserver is at {server}, a loopback address no node reaches; run the "
            "operator with --advertise-address set to an address the nodes reach"
        )
    return ""


async def join_for(host: Client, tenant: Client, vc: Obj, node: str) -> nodeagent.Join:
    """The :class:`~kosmos.api.nodeagent.Join` for ``node`` into ``vc``'s tenant, whose
    cluster DNS is made reachable for the node's pods first (:mod:`kosmos.kubenest.dns`)."""
    dns_port = ((vc.get("status") or {}).get("portMap") or {}).get(COREDNS)
    address = urlsplit(server_of(vc)).hostname or ""
    if dns_port and address:
        await dns.ensure(tenant, address, int(dns_port))
    secret = await host.get(SECRETS, phases.cert_secret(vc), namespace_of(vc))
    tenant_pki = pki.TenantPKI.from_secret(secret)
    kubelet = await asyncio.to_thread(tenant_pki.issue, f"system:node:{node}", NODE_GROUP)
    proxy = await asyncio.to_thread(tenant_pki.issue, PROXY_USER)
    return nodeagent.Join(
        tenant=phases.vc_key(vc),
        server=server_of(vc),
        caData=tenant_pki.files[f"{pki.CA}.crt"].decode(),
        kubelet=_credentials(kubelet),
        proxy=_credentials(proxy),
        clusterDNS=[pki.CLUSTER_DNS] if dns_port else [],
        clusterDomain=pki.CLUSTER_DOMAIN,
    )


def _credentials(pair: tuple[bytes, bytes]) -> nodeagent.Credentials:
    return nodeagent.Credentials(certData=pair[0].decode(), keyData=pair[1].decode())
