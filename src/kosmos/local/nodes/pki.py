"""Credentials of a real node: its kubelet's client certificate and the kubeconfigs.

The kubelet authenticates as ``system:node:<name>`` in group ``system:nodes`` with a
certificate signed by the cluster's CA (kwokctl's ``pki/ca.key``), so the apiserver's Node
authorizer treats it as a real cluster would. kube-proxy and flanneld use kwokctl's admin
certificate: they run for the environment, not as tenants of it. Every kubeconfig points at
the relay on the cluster network (the apiserver itself binds loopback, which a node's
namespace cannot reach) and carries its certificates inline, so a node directory is complete.
"""

from __future__ import annotations

import base64
import datetime
import warnings
from collections.abc import Sequence
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.utils import CryptographyDeprecationWarning

from kosmos.api.kubeconfig import with_client_certificate
from kosmos.kube.authority import Authority
from kosmos.local.nodes.layout import put

NODES_GROUP = "system:nodes"
VALID_DAYS = 365
#: a certificate this close to expiry is replaced on the next ``up``
RENEW_BEFORE = datetime.timedelta(days=30)


class PkiError(RuntimeError):
    """The cluster's CA cannot be read or used; the message names the file."""


def _certificate(pem: bytes) -> x509.Certificate:
    """kwokctl's CA has a serial number of zero, which cryptography loads with a warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        return x509.load_pem_x509_certificate(pem)


def _load_ca(pki: Path) -> tuple[x509.Certificate, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey]:
    try:
        cert = _certificate((pki / "ca.crt").read_bytes())
        key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise PkiError(f"cannot read the cluster CA in {pki}: {exc}") from exc
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise PkiError(f"{pki / 'ca.key'}: unsupported key type {type(key).__name__}")
    return cert, key


def client_certificate(pki: Path, common_name: str, group: str) -> tuple[bytes, bytes]:
    """A client certificate ``(cert_pem, key_pem)`` for ``common_name`` in ``group``, signed
    by the CA in ``pki`` (``ca.crt``, ``ca.key``)."""
    return issue(pki, common_name, group)


def issue(
    pki: Path, common_name: str, group: str = "", *, server_sans: Sequence[str] = ()
) -> tuple[bytes, bytes]:
    """``(cert_pem, key_pem)`` signed by the CA in ``pki``: a client certificate, also a
    serving one for ``server_sans`` when given."""
    ca_cert, ca_key = _load_ca(pki)
    return Authority(ca_cert, ca_key).issue(
        common_name, group, days=VALID_DAYS, server_sans=server_sans
    )


def create_authority(directory: Path, common_name: str) -> bool:
    """A CA (``ca.crt``, ``ca.key``) in ``directory`` unless one is there; True if made."""
    if (directory / "ca.crt").exists() and (directory / "ca.key").exists():
        return False
    cert_pem, key_pem = Authority.create(common_name).pair()
    put(directory / "ca.key", key_pem.decode())
    put(directory / "ca.crt", cert_pem.decode(), 0o644)
    return True


def still_valid(cert_pem: bytes, ca_pem: bytes) -> bool:
    """Issued by this CA (a re-created cluster has a new one) and not about to expire."""
    try:
        cert = _certificate(cert_pem)
        ca = _certificate(ca_pem)
    except ValueError:
        return False
    if cert.issuer != ca.subject:
        return False
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, Exception):  # InvalidSignature is not a ValueError
        return False
    return cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC) > RENEW_BEFORE


def kubeconfig(server: str, ca_pem: bytes, cert_pem: bytes, key_pem: bytes, user: str) -> str:
    return with_client_certificate(
        server, ca_pem, cert_pem, key_pem, user=user, cluster="local", context="local"
    )


def _user_credentials(path: Path) -> tuple[bytes, bytes] | None:
    try:
        user = yaml.safe_load(path.read_text())["users"][0]["user"]
        return (
            base64.b64decode(user["client-certificate-data"]),
            base64.b64decode(user["client-key-data"]),
        )
    except (OSError, KeyError, IndexError, TypeError, ValueError, yaml.YAMLError):
        return None


def ensure_kubeconfigs(pki: Path, node: str, server: str, kubelet: Path, admin: Path) -> bool:
    """Write the kubelet's and the admin kubeconfig of one node; True when either changed.

    The kubelet certificate is kept while the CA that issued it is the cluster's, so a
    restarted kubelet keeps its identity; a file that would not change is not rewritten.
    """
    ca_pem = (pki / "ca.crt").read_bytes()
    current = _user_credentials(kubelet)
    if current is None or not still_valid(current[0], ca_pem):
        current = client_certificate(pki, f"system:node:{node}", NODES_GROUP)
    changed = put(kubelet, kubeconfig(server, ca_pem, *current, f"system:node:{node}"))
    try:
        admin_pair = ((pki / "admin.crt").read_bytes(), (pki / "admin.key").read_bytes())
    except OSError as exc:
        raise PkiError(f"cannot read kwokctl's admin certificate in {pki}: {exc}") from exc
    return put(admin, kubeconfig(server, ca_pem, *admin_pair, "admin")) or changed
