"""Command lines of a local tenant's components (pure: paths and ports in, argv out).

The flags follow what kwokctl's binary runtime passes the same binaries in the local
environment (``~/.kosmos/local/kwok/clusters/host/kwok.yaml``), with TLS everywhere a
tenant's identity matters: etcd only talks TLS with client certificates of the tenant's own
etcd CA, and the apiserver has its own serving certificate and front-proxy CA instead of
kwokctl's single admin pair. Every path is under the tenant directory, which is also how
:mod:`kosmos.kubenest.processes` recognises a tenant's processes.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from kosmos.kubenest import pki

ETCD = "etcd"
ETCD_PEER = "etcd-peer"
APISERVER = "apiserver"
CONTROLLER_MANAGER = "controller-manager"
SCHEDULER = "scheduler"
KWOK = "kwok"
COREDNS = "coredns"
#: every port a tenant needs, in allocation order
PORTS = (APISERVER, ETCD, ETCD_PEER, CONTROLLER_MANAGER, SCHEDULER, KWOK, COREDNS)
#: processes in start order (the later ones retry until the apiserver answers)
PROCESSES = (ETCD, APISERVER, CONTROLLER_MANAGER, SCHEDULER, KWOK, COREDNS)
BINARIES = {
    ETCD: "etcd",
    APISERVER: "kube-apiserver",
    CONTROLLER_MANAGER: "kube-controller-manager",
    SCHEDULER: "kube-scheduler",
    KWOK: "kwok",
    COREDNS: "coredns",
}
CLUSTER_CIDR = "10.244.0.0/16"
KWOK_SELECTOR = "kwok.x-k8s.io/node=fake"
HEALTH_PATHS = "/healthz,/readyz,/livez,/metrics"
#: k8s-in-k8s: the tenant's ClusterTree, a Kosmos process (its port: the leaf nodes' kubelet
#: endpoint); not in PORTS, only a tenant with the plugin allocates it
CLUSTER_MANAGER = "cluster-manager"
LAUNCHER = "kosmos.launcher"


@dataclass(frozen=True)
class Layout:
    """Where a tenant's files are: ``dir`` holds ``pki/``, ``etcd/``, the kubeconfigs..."""

    dir: Path

    def pki(self, name: str) -> Path:
        return self.dir / "pki" / name

    def crt(self, base: str) -> Path:
        return self.pki(f"{base}.crt")

    def key(self, base: str) -> Path:
        return self.pki(f"{base}.key")

    def kubeconfig(self, component: str) -> Path:
        return self.dir / f"{component}.kubeconfig"

    @property
    def etcd_data(self) -> Path:
        return self.dir / "etcd"

    @property
    def kwok_config(self) -> Path:
        return self.dir / "kwok.yaml"

    @property
    def corefile(self) -> Path:
        return self.dir / "Corefile"


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def etcd(
    layout: Layout,
    binary: Path,
    ports: dict[str, int],
    listen: str = "127.0.0.1",
    advertise: str = "",
) -> list[str]:
    """``listen``: where clients connect (a pod: every address); ``advertise``: the address
    clients are told (a pod: its Service's), ``listen`` by default. Peers stay on loopback:
    one member."""
    client = f"https://{listen}:{ports[ETCD]}"
    peer = f"https://127.0.0.1:{ports[ETCD_PEER]}"
    server_crt, server_key = layout.crt(pki.ETCD_SERVER), layout.key(pki.ETCD_SERVER)
    ca = layout.crt(pki.ETCD_CA)
    return [
        str(binary),
        "--name=node0",
        f"--data-dir={layout.etcd_data}",
        "--auto-compaction-retention=1",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls=https://{advertise or listen}:{ports[ETCD]}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=node0={peer}",
        f"--cert-file={server_crt}",
        f"--key-file={server_key}",
        f"--trusted-ca-file={ca}",
        "--client-cert-auth=true",
        f"--peer-cert-file={server_crt}",
        f"--peer-key-file={server_key}",
        f"--peer-trusted-ca-file={ca}",
        "--peer-client-cert-auth=true",
    ]


def apiserver(
    layout: Layout,
    binary: Path,
    ports: dict[str, int],
    advertise: str,
    *,
    bind: str = "",
    etcd_host: str = "127.0.0.1",
) -> list[str]:
    """Loopback advertise addresses are left to the apiserver's own choice (the host's
    default-route address): it refuses to publish a loopback address as the ``kubernetes``
    Service's endpoint. ``bind`` (default: ``advertise``) and ``etcd_host`` differ in a pod
    (every address; etcd's Service)."""
    argv = [
        str(binary),
        f"--bind-address={bind or advertise}",
        f"--secure-port={ports[APISERVER]}",
        f"--etcd-servers=https://{etcd_host}:{ports[ETCD]}",
        "--etcd-prefix=/registry",
        f"--etcd-cafile={layout.crt(pki.ETCD_CA)}",
        f"--etcd-certfile={layout.crt(pki.ETCD_CLIENT)}",
        f"--etcd-keyfile={layout.key(pki.ETCD_CLIENT)}",
        f"--tls-cert-file={layout.crt(pki.APISERVER)}",
        f"--tls-private-key-file={layout.key(pki.APISERVER)}",
        f"--client-ca-file={layout.crt(pki.CA)}",
        f"--service-account-key-file={layout.pki(pki.SA_PUB)}",
        f"--service-account-signing-key-file={layout.pki(pki.SA_KEY)}",
        f"--service-account-issuer=https://kubernetes.default.svc.{pki.CLUSTER_DOMAIN}",
        f"--service-cluster-ip-range={pki.SERVICE_CIDR}",
        "--authorization-mode=Node,RBAC",
        "--allow-privileged=true",
        "--enable-aggregator-routing=true",
        "--event-ttl=30m",
        "--profiling=false",
        f"--kubelet-client-certificate={layout.crt(pki.KUBELET_CLIENT)}",
        f"--kubelet-client-key={layout.key(pki.KUBELET_CLIENT)}",
        "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
        f"--proxy-client-cert-file={layout.crt(pki.FRONT_PROXY_CLIENT)}",
        f"--proxy-client-key-file={layout.key(pki.FRONT_PROXY_CLIENT)}",
        f"--requestheader-client-ca-file={layout.crt(pki.FRONT_PROXY_CA)}",
        "--requestheader-allowed-names=front-proxy-client",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-username-headers=X-Remote-User",
    ]
    if not is_loopback(advertise):
        argv.append(f"--advertise-address={advertise}")
    return argv


def _served(layout: Layout, component: str, ports: dict[str, int]) -> list[str]:
    """A component's own kubeconfig for everything, and its health port on loopback."""
    kubeconfig = layout.kubeconfig(component)
    return [
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        f"--authorization-always-allow-paths={HEALTH_PATHS}",
        "--bind-address=127.0.0.1",
        f"--secure-port={ports[component]}",
    ]


def controller_manager(layout: Layout, binary: Path, ports: dict[str, int]) -> list[str]:
    return [
        str(binary),
        *_served(layout, CONTROLLER_MANAGER, ports),
        f"--root-ca-file={layout.crt(pki.CA)}",
        f"--service-account-private-key-file={layout.pki(pki.SA_KEY)}",
        f"--cluster-signing-cert-file={layout.crt(pki.CA)}",
        f"--cluster-signing-key-file={layout.key(pki.CA)}",
        "--use-service-account-credentials=true",
        "--allocate-node-cidrs=true",
        f"--cluster-cidr={CLUSTER_CIDR}",
        "--node-cidr-mask-size=24",
        f"--service-cluster-ip-range={pki.SERVICE_CIDR}",
        # kwok renews node leases every 200 s (below), so the grace period must outlast that
        "--node-monitor-period=25s",
        "--node-monitor-grace-period=3m20s",
        "--leader-elect=false",
        "--profiling=false",
    ]


def scheduler(layout: Layout, binary: Path, ports: dict[str, int]) -> list[str]:
    return [
        str(binary),
        *_served(layout, SCHEDULER, ports),
        "--leader-elect=false",
        "--profiling=false",
    ]


def kwok(layout: Layout, binary: Path, ports: dict[str, int]) -> list[str]:
    """kwok serves the nodes' kubelet API (logs/exec) with the apiserver's serving pair:
    v0.8 never asks clients for a certificate, as in the local environment."""
    return [
        str(binary),
        f"--kubeconfig={layout.kubeconfig(KWOK)}",
        f"--config={layout.kwok_config}",
        f"--tls-cert-file={layout.crt(pki.APISERVER)}",
        f"--tls-private-key-file={layout.key(pki.APISERVER)}",
        "--node-ip=",
        "--node-name=localhost",
        f"--node-port={ports[KWOK]}",
        f"--server-address=127.0.0.1:{ports[KWOK]}",
        "--node-lease-duration-seconds=200",
        "--manage-all-nodes=false",
        f"--manage-nodes-with-label-selector={KWOK_SELECTOR}",
    ]


def cluster_manager(layout: Layout, python: str, port: int, address: str, owner: str) -> list[str]:
    """The tenant's ClusterTree: the tenant is its host (the admin kubeconfig), the real host
    its member (the Cluster the operator writes there). The multi-cluster services stay off
    (they would need CRDs and Services in the host); ``--owner`` keeps it to its own pods in
    the host, which other tenants share."""
    return [
        python,
        "-m",
        LAUNCHER,
        CLUSTER_MANAGER,
        "--kubeconfig",
        str(layout.kubeconfig("admin")),
        "--listen-port",
        str(port),
        "--health-port",
        "0",
        "--bind-address",
        "127.0.0.1",
        "--node-address",
        address,
        "--kubelet-bind-address",
        address,
        "--no-multi-cluster-service",
        "--owner",
        owner,
    ]


def coredns(layout: Layout, binary: Path) -> list[str]:
    return [str(binary), f"-conf={layout.corefile}"]


def corefile(layout: Layout, ports: dict[str, int]) -> str:
    """The tenant's cluster DNS: ``cluster.local`` from the tenant's apiserver, nothing
    forwarded (a tenant's kwok pods have no resolver to forward to). It listens on every
    address: the toolchain's CoreDNS (``kosmos.local`` gotools) has no ``bind`` plugin."""
    return (
        f".:{ports[COREDNS]} {{\n"
        "    errors\n"
        f"    kubernetes {pki.CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{\n"
        f"        kubeconfig {layout.kubeconfig(COREDNS)}\n"
        "        pods insecure\n"
        "        fallthrough in-addr.arpa ip6.arpa\n"
        "    }\n"
        "    cache 30\n"
        "}\n"
    )


def argv(
    component: str, layout: Layout, bin_dir: Path, ports: dict[str, int], advertise: str
) -> list[str]:
    """The command line of ``component`` (one of :data:`PROCESSES`)."""
    if component not in BINARIES:
        raise ValueError(f"unknown tenant component {component!r}")
    binary = bin_dir / BINARIES[component]
    builders = {
        ETCD: lambda: etcd(layout, binary, ports),
        APISERVER: lambda: apiserver(layout, binary, ports, advertise),
        CONTROLLER_MANAGER: lambda: controller_manager(layout, binary, ports),
        SCHEDULER: lambda: scheduler(layout, binary, ports),
        KWOK: lambda: kwok(layout, binary, ports),
        COREDNS: lambda: coredns(layout, binary),
    }
    return builders[component]()
