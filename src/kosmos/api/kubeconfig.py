"""A kubeconfig document for one credential (a client certificate or a token): one cluster,
one user, one context.

Credentials are inline (``*-data``), so the one file (or Secret entry) is the whole access.
The local environment's real nodes and kubenest's tenants both hand such files out.
"""

from __future__ import annotations

import base64

import yaml


def b64(data: str | bytes) -> str:
    """Standard base64 text of ``data`` (str encoded as UTF-8), as kubeconfigs carry it."""
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode()


def with_client_certificate(
    server: str,
    ca_pem: bytes,
    cert_pem: bytes,
    key_pem: bytes,
    *,
    user: str,
    cluster: str,
    context: str,
) -> str:
    """The kubeconfig, ``context`` current, as YAML in the order kubectl writes it."""
    credentials = {"client-certificate-data": b64(cert_pem), "client-key-data": b64(key_pem)}
    return _document(server, ca_pem, credentials, user=user, cluster=cluster, context=context)


def with_token(
    server: str, ca_pem: bytes, token: str, *, user: str, cluster: str, context: str
) -> str:
    """The same with a bearer token (a ServiceAccount's) as the user's credential."""
    return _document(server, ca_pem, {"token": token}, user=user, cluster=cluster, context=context)


def _document(
    server: str,
    ca_pem: bytes,
    credentials: dict[str, str],
    *,
    user: str,
    cluster: str,
    context: str,
) -> str:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster,
                "cluster": {"server": server, "certificate-authority-data": b64(ca_pem)},
            }
        ],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": context, "context": {"cluster": cluster, "user": user}}],
        "current-context": context,
    }
    return yaml.safe_dump(config, sort_keys=False)
