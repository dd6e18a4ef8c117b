"""A certificate authority of our own: make one, load one, issue client and serving pairs.

Tenant control planes (kubenest), the local environment's node-agents and its kubelets all
need X.509 pairs signed by a CA they hold; one implementation serves them, with what
OpenSSL's strict verification wants (key usage, subject and authority key identifiers).
Keys are ECDSA P-256: quick to make, which counts when a tenant starts.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kosmos.kube.tls import san

CA_DAYS = 3650
Key = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def pem_key(key: Key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def name(common_name: str, organization: str = "") -> x509.Name:
    parts = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization)] if organization else []
    return x509.Name([*parts, x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=not ca,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _builder(subject: x509.Name, issuer: x509.Name, key: Key, days: int) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))  # clock skew between machines
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )


@dataclass(frozen=True)
class Authority:
    cert: x509.Certificate
    key: Key

    @classmethod
    def create(cls, common_name: str, days: int = CA_DAYS) -> Authority:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = name(common_name)
        cert = (
            _builder(subject, subject, key, days)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_usage(ca=True), critical=True)
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key)

    @classmethod
    def from_pem(cls, cert: x509.Certificate, key_pem: bytes) -> Authority:
        """The CA of a loaded certificate and its PEM key (ValueError for another key type)."""
        key = serialization.load_pem_private_key(key_pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise ValueError(f"unsupported CA key type {type(key).__name__}")
        return cls(cert, key)

    def issue(
        self,
        common_name: str,
        organization: str = "",
        *,
        days: int,
        server_sans: Sequence[str] = (),
        client: bool = True,
    ) -> tuple[bytes, bytes]:
        """``(cert_pem, key_pem)``: a serving certificate for ``server_sans`` when given, a
        client certificate when ``client`` (both, e.g. for etcd's peers)."""
        key = ec.generate_private_key(ec.SECP256R1())
        usages = [ExtendedKeyUsageOID.SERVER_AUTH] if server_sans else []
        usages += [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
        builder = (
            _builder(name(common_name, organization), self.cert.subject, key, days)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(ca=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        if server_sans:
            sans = [san(host) for host in server_sans]
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return pem_cert(builder.sign(self.key, hashes.SHA256())), pem_key(key)

    def pair(self) -> tuple[bytes, bytes]:
        return pem_cert(self.cert), pem_key(self.key)
