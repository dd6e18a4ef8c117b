"""Kubeconfigs of a tenant: inline credentials, one context, the component's identity."""

from __future__ import annotations

import base64

import yaml

from kosmos.kubenest import pki
from kosmos.kubenest.kubeconfig import admin_kubeconfig, b64, component_kubeconfig
from kosmos.kubenest.pki import TenantPKI


def test_b64() -> None:
    assert b64("a: b\n") == base64.b64encode(b"a: b\n").decode()
    assert b64(b"\x00\xff") == "AP8="


def test_admin_kubeconfig() -> None:
    config = yaml.safe_load(
        admin_kubeconfig("https://192.0.2.1:20000", b"CA", b"CRT", b"KEY", "ns-vc")
    )
    assert config["current-context"] == "kosmos:tenant-admin@ns-vc"
    (cluster,) = config["clusters"]
    assert cluster == {
        "name": "ns-vc",
        "cluster": {"server": "https://192.0.2.1:20000", "certificate-authority-data": b64(b"CA")},
    }
    (user,) = config["users"]
    assert user["name"] == "kosmos:tenant-admin"
    assert base64.b64decode(user["user"]["client-certificate-data"]) == b"CRT"
    assert base64.b64decode(user["user"]["client-key-data"]) == b"KEY"
    (context,) = config["contexts"]
    assert context["context"] == {"cluster": "ns-vc", "user": "kosmos:tenant-admin"}


def test_component_kubeconfig_uses_its_own_certificate() -> None:
    tenant = TenantPKI.create("ns/vc", [])
    config = yaml.safe_load(component_kubeconfig("https://127.0.0.1:1", tenant, pki.SCHEDULER, "c"))
    assert config["users"][0]["name"] == "system:kube-scheduler"
    cert = base64.b64decode(config["users"][0]["user"]["client-certificate-data"])
    assert cert == tenant.files["scheduler.crt"]
    ca = base64.b64decode(config["clusters"][0]["cluster"]["certificate-authority-data"])
    assert ca == tenant.files["ca.crt"]
