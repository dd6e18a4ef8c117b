"""Serving certificates and server TLS contexts for the HTTPS endpoints we expose.

Why self-signed by default: the host kube-apiserver reaches a node's "kubelet" endpoint
without verifying its serving certificate unless ``--kubelet-certificate-authority`` is set,
so a generated certificate is enough for ``kubectl logs/exec`` to work out of the box; a
deployment that sets that flag supplies its own cert/key files instead.

Client authentication mirrors the kubelet's ``--client-ca-file``: with a CA, every client
must present a certificate signed by it (the apiserver presents its
``--kubelet-client-certificate``); without one any client is accepted. The local kwok
environment's apiservers present no kubelet client certificate, so they need the latter.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import tempfile
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PemOrPath = str | bytes | Path
_PEM_MARKER = "-----BEGIN"


def san(host: str) -> x509.GeneralName:
    """An IP SAN for an address (clients match IPs only against IP SANs), else a DNS SAN."""
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def serving_certificate(hosts: list[str], *, days: int = 365) -> tuple[bytes, bytes]:
    """A self-signed ECDSA P-256 serving certificate for ``hosts``: ``(cert_pem, key_pem)``.

    ``hosts`` become the subject alternative names (IP addresses as IP SANs, anything else
    as DNS names); the first one is also the common name. Valid from one hour ago (clock
    skew between nodes) for ``days`` days.
    """
    if not hosts:
        raise ValueError("serving_certificate needs at least one host name or IP")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    now = datetime.datetime.now(datetime.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([san(h) for h in hosts]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _is_pem(value: PemOrPath) -> bool:
    if isinstance(value, bytes):
        return True
    return isinstance(value, str) and value.lstrip().startswith(_PEM_MARKER)


def _as_bytes(value: PemOrPath) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def _load_chain(context: ssl.SSLContext, cert: PemOrPath, key: PemOrPath) -> None:
    """``load_cert_chain`` only reads files: PEM given in memory goes through a private
    temporary directory that is removed as soon as OpenSSL has read it."""
    if not _is_pem(cert) and not _is_pem(key):
        context.load_cert_chain(str(cert), str(key))
        return
    with tempfile.TemporaryDirectory(prefix="kosmos-tls-") as tmp:
        paths = []
        for label, value in (("cert", cert), ("key", key)):
            if _is_pem(value):
                path = Path(tmp) / f"{label}.pem"
                path.touch(mode=0o600)
                path.write_bytes(_as_bytes(value))
                paths.append(str(path))
            else:
                paths.append(str(value))
        context.load_cert_chain(paths[0], paths[1])


def server_ssl_context(
    cert: PemOrPath,
    key: PemOrPath,
    client_ca: PemOrPath | None = None,
    *,
    optional: bool = False,
) -> ssl.SSLContext:
    """A TLS ≥ 1.2 server context; ``cert``/``key`` are file paths or PEM (str or bytes).

    ``client_ca`` (a file path or PEM) makes client certificates mandatory and verified
    against it (``optional``: verified when presented, a client without one is let in for
    another check, such as a bearer token); ``None`` accepts any client, certificate or not.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_chain(context, cert, key)
    if client_ca is None:
        context.verify_mode = ssl.CERT_NONE
        return context
    if _is_pem(client_ca):
        context.load_verify_locations(cadata=_as_bytes(client_ca).decode())
    else:
        context.load_verify_locations(cafile=str(client_ca))
    context.verify_mode = ssl.CERT_OPTIONAL if optional else ssl.CERT_REQUIRED
    return context


def client_ssl_context(ca: PemOrPath, cert: PemOrPath, key: PemOrPath) -> ssl.SSLContext:
    """A TLS >= 1.2 client context that verifies the server against ``ca`` only (not the
    system's roots) and presents ``cert``/``key``; each a file path or PEM."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if _is_pem(ca):
        context.load_verify_locations(cadata=_as_bytes(ca).decode())
    else:
        context.load_verify_locations(cafile=str(ca))
    _load_chain(context, cert, key)
    return context


#: TLS alerts a client sends when it does not accept the certificate we presented.
REFUSAL_ALERTS = frozenset(
    {
        "TLSV1_ALERT_UNKNOWN_CA",
        "SSLV3_ALERT_BAD_CERTIFICATE",
        "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
        "SSLV3_ALERT_CERTIFICATE_EXPIRED",
        "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
    }
)


def observe_refusals(context: ssl.SSLContext, refused: Callable[[str], None]) -> None:
    """Call ``refused(alert)`` (e.g. ``tlsv1_alert_unknown_ca``) each time a client aborts
    the handshake because it does not trust our certificate.

    asyncio's servers drop failed handshakes silently (only its debug mode logs them), so a
    kube-apiserver that verifies kubelet certificates and refuses ours would leave no trace
    on our side; the handshake runs in the context's ``sslobject_class``, which we wrap.
    """

    class Observed(ssl.SSLObject):
        def do_handshake(self) -> None:
            try:
                super().do_handshake()
            except ssl.SSLError as exc:  # SSLWantReadError and the like have no reason
                if exc.reason in REFUSAL_ALERTS:
                    refused(str(exc.reason).lower())
                raise

    context.sslobject_class = Observed
