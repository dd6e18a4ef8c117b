"""Kubeconfigs of a tenant control plane: the admin's (handed to the user, base64 in
``spec.kubeconfig``) and the components' (controller-manager, scheduler, kwok, CoreDNS).

Credentials are inline (``*-data``), so one file (or one Secret entry) is the whole access.
Pure: no files, no clients.
"""

from __future__ import annotations

import base64

import yaml

from kosmos.kubenest import pki as tenant_pki


def b64(data: str | bytes) -> str:
    """Standard base64 text of ``data`` (str encoded as UTF-8), as kubeconfigs and
    ``spec.kubeconfig`` carry it."""
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode()


def kubeconfig(
    server: str, ca_pem: bytes, cert_pem: bytes, key_pem: bytes, cluster_name: str, *, user: str
) -> str:
    """One cluster, one user, one context (``<user>@<cluster_name>``), current: YAML."""
    context = f"{user}@{cluster_name}"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster_name,
                "cluster": {"server": server, "certificate-authority-data": b64(ca_pem)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {"client-certificate-data": b64(cert_pem), "client-key-data": b64(key_pem)},
            }
        ],
        "contexts": [{"name": context, "context": {"cluster": cluster_name, "user": user}}],
        "current-context": context,
    }
    return yaml.safe_dump(config, sort_keys=False)


def admin_kubeconfig(
    server: str, ca_pem: bytes, cert_pem: bytes, key_pem: bytes, cluster_name: str
) -> str:
    """The tenant administrator's kubeconfig (user ``kosmos:tenant-admin``, system:masters)."""
    return kubeconfig(server, ca_pem, cert_pem, key_pem, cluster_name, user=tenant_pki.ADMIN_USER)


def component_kubeconfig(
    server: str, pki: tenant_pki.TenantPKI, base: str, cluster_name: str
) -> str:
    """The kubeconfig of the component whose client pair is ``base`` (one of
    :data:`kosmos.kubenest.pki.PAIRS`); the user is the certificate's common name."""
    cert_pem, key_pem = pki.pair(base)
    user = pki.common_name(base)
    return kubeconfig(server, pki.files["ca.crt"], cert_pem, key_pem, cluster_name, user=user)
