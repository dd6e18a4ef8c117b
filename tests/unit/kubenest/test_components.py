"""Tenant command lines: TLS between the parts, the tenant's own files, loopback advertise."""

from __future__ import annotations

from pathlib import Path

import pytest

from kosmos.kubenest import components
from kosmos.kubenest.components import Layout

PORTS = {name: 21000 + i for i, name in enumerate(components.PORTS)}
LAYOUT = Layout(Path("/state/ns_vc"))
BIN = Path("/bin-dir")


def flags(component: str, advertise: str = "127.0.0.1") -> dict[str, str]:
    argv = components.argv(component, LAYOUT, BIN, PORTS, advertise)
    assert argv[0] == str(BIN / components.BINARIES[component])
    return dict(arg.lstrip("-").split("=", 1) for arg in argv[1:])


def test_etcd_is_tls_only_with_its_own_ca() -> None:
    etcd = flags("etcd")
    assert etcd["listen-client-urls"] == f"https://127.0.0.1:{PORTS['etcd']}"
    assert etcd["listen-peer-urls"] == f"https://127.0.0.1:{PORTS['etcd-peer']}"
    assert etcd["trusted-ca-file"] == etcd["peer-trusted-ca-file"] == "/state/ns_vc/pki/etcd-ca.crt"
    assert etcd["client-cert-auth"] == etcd["peer-client-cert-auth"] == "true"


def test_apiserver_flags() -> None:
    api = flags("apiserver")
    assert api["secure-port"] == str(PORTS["apiserver"])
    assert api["etcd-servers"] == f"https://127.0.0.1:{PORTS['etcd']}"
    assert api["etcd-certfile"] == "/state/ns_vc/pki/apiserver-etcd-client.crt"
    assert api["client-ca-file"] == "/state/ns_vc/pki/ca.crt"
    assert api["service-cluster-ip-range"] == "10.96.0.0/16"
    assert api["authorization-mode"] == "Node,RBAC"
    assert api["requestheader-client-ca-file"] == "/state/ns_vc/pki/front-proxy-ca.crt"
    assert "advertise-address" not in api  # loopback: the apiserver picks its own
    assert flags("apiserver", "192.0.2.4")["advertise-address"] == "192.0.2.4"
    assert flags("apiserver", "192.0.2.4")["bind-address"] == "192.0.2.4"


def test_controller_manager_and_scheduler() -> None:
    kcm = flags("controller-manager")
    assert kcm["kubeconfig"] == "/state/ns_vc/controller-manager.kubeconfig"
    assert kcm["cluster-cidr"] == "10.244.0.0/16" and kcm["allocate-node-cidrs"] == "true"
    assert kcm["service-account-private-key-file"] == "/state/ns_vc/pki/sa.key"
    assert kcm["root-ca-file"] == "/state/ns_vc/pki/ca.crt"
    assert kcm["leader-elect"] == "false" == flags("scheduler")["leader-elect"]
    assert flags("scheduler")["kubeconfig"] == "/state/ns_vc/scheduler.kubeconfig"


def test_kwok_and_coredns() -> None:
    kwok = flags("kwok")
    assert kwok["manage-nodes-with-label-selector"] == "kwok.x-k8s.io/node=fake"
    assert kwok["config"] == "/state/ns_vc/kwok.yaml"
    assert flags("coredns") == {"conf": "/state/ns_vc/Corefile"}
    corefile = components.corefile(LAYOUT, PORTS)
    assert corefile.startswith(f".:{PORTS['coredns']} {{")
    assert "kubeconfig /state/ns_vc/coredns.kubeconfig" in corefile


def test_unknown_component() -> None:
    with pytest.raises(ValueError, match="unknown tenant component"):
        components.argv("kubelet", LAYOUT, BIN, PORTS, "127.0.0.1")
