"""Tenant PKI: separate CAs per tenant and per role, the apiserver's names, the identities."""

from __future__ import annotations

import ipaddress

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kosmos.kubenest import pki
from kosmos.kubenest.pki import PkiError, TenantPKI


@pytest.fixture(scope="module")
def tenant() -> TenantPKI:
    return TenantPKI.create("ns1/vc1", ["192.0.2.10", "203.0.113.7", "vc1.example.com"])


def sans(cert: x509.Certificate) -> set[str]:
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    ips = {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}
    return ips | set(names.get_values_for_type(x509.DNSName))


def usages(cert: x509.Certificate) -> set[x509.ObjectIdentifier]:
    return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def subject(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> list[str]:
    return [str(a.value) for a in cert.subject.get_attributes_for_oid(oid)]


def test_apiserver_names_loopback_service_and_given_addresses(tenant: TenantPKI) -> None:
    names = sans(tenant.certificate(pki.APISERVER))
    assert {"127.0.0.1", "localhost", "10.96.0.1", "192.0.2.10", "203.0.113.7"} <= names
    assert {"kubernetes", "kubernetes.default", "kubernetes.default.svc"} <= names
    assert {"kubernetes.default.svc.cluster.local", "vc1.example.com"} <= names
    assert "::1" not in names
    ip_sans = (
        tenant.certificate(pki.APISERVER)
        .extensions.get_extension_for_class(x509.SubjectAlternativeName)
        .value.get_values_for_type(x509.IPAddress)
    )
    assert ipaddress.ip_address("192.0.2.10") in ip_sans  # an IP SAN, not a DNS name


def test_apiserver_sans_deduplicated_and_blank_dropped() -> None:
    names = pki.apiserver_sans(["127.0.0.1", " ", "::1", "10.96.0.1"])
    assert names.count("127.0.0.1") == 1 and names.count("10.96.0.1") == 1
    assert "::1" in names and "" not in names


@pytest.mark.parametrize(
    ("base", "issuer"),
    [
        (pki.APISERVER, pki.CA),
        (pki.ADMIN, pki.CA),
        (pki.CONTROLLER_MANAGER, pki.CA),
        (pki.SCHEDULER, pki.CA),
        (pki.KUBELET_CLIENT, pki.CA),
        (pki.ETCD_SERVER, pki.ETCD_CA),
        (pki.ETCD_CLIENT, pki.ETCD_CA),
        (pki.FRONT_PROXY_CLIENT, pki.FRONT_PROXY_CA),
    ],
)
def test_chains(tenant: TenantPKI, base: str, issuer: str) -> None:
    tenant.certificate(base).verify_directly_issued_by(tenant.certificate(issuer))
    others = {pki.CA, pki.ETCD_CA, pki.FRONT_PROXY_CA} - {issuer}
    for other in others:
        with pytest.raises(ValueError):  # a different issuer name
            tenant.certificate(base).verify_directly_issued_by(tenant.certificate(other))


def test_cas_are_distinct_and_ten_years(tenant: TenantPKI) -> None:
    cas = [tenant.certificate(base) for base in (pki.CA, pki.ETCD_CA, pki.FRONT_PROXY_CA)]
    assert len({ca.public_key().public_numbers() for ca in cas}) == 3  # type: ignore[union-attr]
    for ca in cas:
        assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert (ca.not_valid_after_utc - ca.not_valid_before_utc).days >= 3650
        assert "ns1/vc1" in subject(ca, NameOID.COMMON_NAME)[0]


@pytest.mark.parametrize(
    ("base", "user", "group"),
    [
        (pki.ADMIN, "kosmos:tenant-admin", ["system:masters"]),
        (pki.CONTROLLER_MANAGER, "system:kube-controller-manager", []),
        (pki.SCHEDULER, "system:kube-scheduler", []),
        (pki.FRONT_PROXY_CLIENT, "front-proxy-client", []),
    ],
)
def test_client_identities(tenant: TenantPKI, base: str, user: str, group: list[str]) -> None:
    cert = tenant.certificate(base)
    assert subject(cert, NameOID.COMMON_NAME) == [user]
    assert subject(cert, NameOID.ORGANIZATION_NAME) == group
    assert usages(cert) == {ExtendedKeyUsageOID.CLIENT_AUTH}
    assert tenant.common_name(base) == user


def test_server_and_peer_usages(tenant: TenantPKI) -> None:
    assert usages(tenant.certificate(pki.APISERVER)) == {ExtendedKeyUsageOID.SERVER_AUTH}
    etcd = tenant.certificate(pki.ETCD_SERVER)  # also etcd's peer certificate
    assert usages(etcd) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert sans(etcd) == {"127.0.0.1", "localhost"}


def test_no_certificate_or_key_shared_between_tenants(tenant: TenantPKI) -> None:
    other = TenantPKI.create("ns2/vc2", ["192.0.2.10"])
    shared = [name for name in pki.FILES if other.files[name] == tenant.files[name]]
    assert shared == []
    with pytest.raises(ValueError):
        other.certificate(pki.ADMIN).verify_directly_issued_by(tenant.certificate(pki.CA))


def test_secret_data_round_trip(tenant: TenantPKI) -> None:
    data = tenant.to_secret_data()
    assert set(data) == set(pki.FILES) and all(isinstance(v, str) for v in data.values())
    assert TenantPKI.from_secret_data(data) == tenant
    as_bytes = {k: v.encode() for k, v in data.items()}
    assert TenantPKI.from_secret_data(as_bytes) == tenant


def test_secret_data_incomplete_or_garbage(tenant: TenantPKI) -> None:
    data = tenant.to_secret_data()
    del data["sa.key"], data["etcd-ca.crt"]
    with pytest.raises(PkiError, match=r"lacks etcd-ca\.crt, sa\.key"):
        TenantPKI.from_secret_data(data)
    data = {**tenant.to_secret_data(), "admin.key": "not a key"}
    with pytest.raises(PkiError, match=r"not PEM: admin\.key"):
        TenantPKI.from_secret_data(data)
