"""A tenant control plane's certificates: three CAs of its own and what they sign.

Every tenant gets fresh CAs, so no certificate (and no key) is shared between tenants: a
tenant's admin certificate means nothing to another tenant's apiserver. etcd has a CA of its
own, so a certificate that lets a client into the apiserver never opens etcd, and the
front-proxy CA (the aggregation layer's request-header authentication) is separate again, as
kubeadm lays it out. Keys are ECDSA P-256 (fast to make, which counts for a tenant's start),
except the service-account signing key: RSA 2048, the algorithm every token consumer accepts.

The PKI travels as a Secret ``<vc>-cert`` (one PEM string per entry, :meth:`to_secret_data`),
so a restarted operator (or another provider) finds the same identities.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from kosmos.kube.authority import Authority, pem_key

LEAF_DAYS = 365 * 5
#: the tenant's service CIDR; its first address is the ``kubernetes`` Service's ClusterIP
SERVICE_CIDR = "10.96.0.0/16"
#: the tenant's cluster DNS ClusterIP (kubeadm's choice: the service CIDR's tenth address)
CLUSTER_DNS = "10.96.0.10"
CLUSTER_DOMAIN = "cluster.local"
ADMIN_USER = "kosmos:tenant-admin"
MASTERS_GROUP = "system:masters"

#: base names of the certificate/key pairs (``<base>.crt`` + ``<base>.key``)
CA = "ca"
ETCD_CA = "etcd-ca"
FRONT_PROXY_CA = "front-proxy-ca"
APISERVER = "apiserver"
ADMIN = "admin"
CONTROLLER_MANAGER = "controller-manager"
SCHEDULER = "scheduler"
KUBELET_CLIENT = "apiserver-kubelet-client"
ETCD_SERVER = "etcd-server"
ETCD_CLIENT = "apiserver-etcd-client"
FRONT_PROXY_CLIENT = "front-proxy-client"
PAIRS = (
    CA,
    ETCD_CA,
    FRONT_PROXY_CA,
    APISERVER,
    ADMIN,
    CONTROLLER_MANAGER,
    SCHEDULER,
    KUBELET_CLIENT,
    ETCD_SERVER,
    ETCD_CLIENT,
    FRONT_PROXY_CLIENT,
)
#: the service-account key pair (``sa.key`` private, ``sa.pub`` public)
SA_KEY = "sa.key"
SA_PUB = "sa.pub"
FILES = (*(f"{base}.{ext}" for base in PAIRS for ext in ("crt", "key")), SA_KEY, SA_PUB)


class PkiError(ValueError):
    """A Secret's data is not a complete tenant PKI; the message names what is missing."""


def apiserver_sans(sans: Sequence[str]) -> list[str]:
    """What the apiserver's serving certificate names: loopback, the in-cluster names of the
    ``kubernetes`` Service, its ClusterIP and ``sans`` (the advertise address, the VC's
    externalIP/externalIps), without duplicates, in that order."""
    service_ip = str(next(ipaddress.ip_network(SERVICE_CIDR).hosts()))
    base = ["127.0.0.1", "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"]
    wanted = [*base, f"kubernetes.default.svc.{CLUSTER_DOMAIN}", service_ip, *sans]
    return list(dict.fromkeys(host.strip() for host in wanted if host.strip()))


@dataclass(frozen=True)
class TenantPKI:
    """One tenant's PEM files by name (:data:`FILES`): ``ca.crt``, ``admin.key``, ``sa.pub``..."""

    files: Mapping[str, bytes]

    @classmethod
    def create(cls, vc_key: str, sans: Sequence[str], etcd_sans: Sequence[str] = ()) -> TenantPKI:
        """Fresh CAs and certificates for the tenant ``vc_key`` (``<namespace>/<name>``, named
        in the CAs' common names so a certificate says whose it is); ``sans`` are extra names
        of the apiserver (advertise address, external IPs), ``etcd_sans`` of etcd beyond
        loopback (its Service, when it runs in a pod)."""
        ca = Authority.create(f"kosmos-tenant-ca {vc_key}")
        etcd_ca = Authority.create(f"kosmos-tenant-etcd-ca {vc_key}")
        proxy_ca = Authority.create(f"kosmos-tenant-front-proxy-ca {vc_key}")
        loopback = ["127.0.0.1", "localhost"]
        pairs = {
            CA: ca.pair(),
            ETCD_CA: etcd_ca.pair(),
            FRONT_PROXY_CA: proxy_ca.pair(),
            APISERVER: ca.issue(
                "kube-apiserver", server_sans=apiserver_sans(sans), client=False, days=LEAF_DAYS
            ),
            ADMIN: ca.issue(ADMIN_USER, MASTERS_GROUP, days=LEAF_DAYS),
            CONTROLLER_MANAGER: ca.issue("system:kube-controller-manager", days=LEAF_DAYS),
            SCHEDULER: ca.issue("system:kube-scheduler", days=LEAF_DAYS),
            KUBELET_CLIENT: ca.issue(
                "kube-apiserver-kubelet-client", MASTERS_GROUP, days=LEAF_DAYS
            ),
            ETCD_SERVER: etcd_ca.issue(
                "kube-etcd", server_sans=[*loopback, *etcd_sans], days=LEAF_DAYS
            ),
            ETCD_CLIENT: etcd_ca.issue("kube-apiserver-etcd-client", days=LEAF_DAYS),
            FRONT_PROXY_CLIENT: proxy_ca.issue("front-proxy-client", days=LEAF_DAYS),
        }
        files = {
            f"{base}.{ext}": pem
            for base, pair in pairs.items()
            for ext, pem in zip(("crt", "key"), pair, strict=True)
        }
        sa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        files[SA_KEY] = pem_key(sa)
        files[SA_PUB] = sa.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return cls(files)

    def to_secret_data(self) -> dict[str, str]:
        """PEM strings by file name, for a Secret's ``stringData`` (or, base64ed, ``data``)."""
        return {name: pem.decode() for name, pem in self.files.items()}

    @classmethod
    def from_secret_data(cls, data: Mapping[str, str | bytes]) -> TenantPKI:
        """The PKI back from :meth:`to_secret_data`'s output (PEM as str or bytes); a
        :class:`PkiError` names the entries missing or not PEM."""
        missing = [name for name in FILES if name not in data]
        if missing:
            raise PkiError(f"tenant PKI lacks {', '.join(missing)}")
        files = {name: _as_bytes(data[name]) for name in FILES}
        bad = [name for name, pem in files.items() if not pem.lstrip().startswith(b"-----BEGIN")]
        if bad:
            raise PkiError(f"tenant PKI entries are not PEM: {', '.join(bad)}")
        return cls(files)

    @classmethod
    def from_secret(cls, secret: Mapping[str, Any]) -> TenantPKI:
        """The PKI a Secret ``<name>-cert`` holds (its base64 ``data``)."""
        data = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
        return cls.from_secret_data(data)

    def issue(self, common_name: str, organization: str = "") -> tuple[bytes, bytes]:
        """A new client ``(cert_pem, key_pem)`` from the tenant's CA: a node's kubelet
        (``system:node:<node>``, ``system:nodes``) or kube-proxy joining the tenant."""
        ca_cert, ca_key = self.pair(CA)
        try:
            authority = Authority.from_pem(x509.load_pem_x509_certificate(ca_cert), ca_key)
        except ValueError as exc:
            raise PkiError(f"the tenant CA: {exc}") from exc
        return authority.issue(common_name, organization, days=LEAF_DAYS)

    def pair(self, base: str) -> tuple[bytes, bytes]:
        """``(cert_pem, key_pem)`` of one of :data:`PAIRS`."""
        return self.files[f"{base}.crt"], self.files[f"{base}.key"]

    def certificate(self, base: str) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.files[f"{base}.crt"])

    def common_name(self, base: str) -> str:
        """The subject CN of ``base``'s certificate: the user it authenticates as."""
        value = self.certificate(base).subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        return value if isinstance(value, str) else value.decode()


def _as_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode()
