"""Kubeconfigs of a tenant control plane: the admin's (handed to the user, base64 in
``spec.kubeconfig``) and the components' (controller-manager, scheduler, kwok, CoreDNS).

Pure: no files, no clients; the document itself is :mod:`kosmos.api.kubeconfig`'s.
"""

from __future__ import annotations

from kosmos.api.kubeconfig import b64, with_client_certificate
from kosmos.kubenest import pki as tenant_pki

__all__ = ["admin_kubeconfig", "b64", "component_kubeconfig", "kubeconfig"]


def kubeconfig(
    server: str, ca_pem: bytes, cert_pem: bytes, key_pem: bytes, cluster_name: str, *, user: str
) -> str:
    """One cluster, one user, one context (``<user>@<cluster_name>``), current: YAML."""
    return with_client_certificate(
        server, ca_pem, cert_pem, key_pem, user=user, cluster=cluster_name,
        context=f"{user}@{cluster_name}",
    )  # fmt: skip


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
