"""ClusterTree's part of ``kosmos cluster-manager``: controllers plus the kubelet endpoint.

One manager holds the host and every member; controllers run only while this replica
holds the ``cluster-manager`` Lease. The kubelet endpoint (logs/exec/port-forward through
leaf nodes) is served by every replica but answers only from the leader's caches, because
leaf nodes advertise the leader's address. ``--bind-address`` is where both the kubelet
endpoint and the health port listen. Start-up, signals and leader election are the shared
component runtime's (``kosmos.kube.component``). The command itself is composed by the
launcher (``kosmos.launcher.clustermanager``) from these flags and the other components'
that run in the same process.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from kosmos.api.resources import CONFIGMAPS
from kosmos.clustertree import metrics
from kosmos.clustertree.clusters import cluster_registry
from kosmos.clustertree.copies import CopyReconciler
from kosmos.clustertree.kubelet import KubeletServer, Resolve, Target
from kosmos.clustertree.kubeletauth import KubeletAuth
from kosmos.clustertree.leafcert import CertificateRefusals
from kosmos.clustertree.leafnodes import LeafNodeReconciler
from kosmos.clustertree.leafread import LeafReader
from kosmos.clustertree.pods import PodReconciler
from kosmos.clustertree.tree import Options, Tree
from kosmos.clustertree.volumes import VolumeReconciler
from kosmos.clustertree.watches import wire
from kosmos.kube import component, tls
from kosmos.kube.builder import controller
from kosmos.kube.client import Client
from kosmos.kube.controller import Reconciler, Request, Result
from kosmos.kube.errors import KubeError
from kosmos.kube.events import EventRecorder
from kosmos.kube.manager import ClusterNotFound, Manager

log = logging.getLogger("kosmos.clustertree")

COMPONENT = "cluster-manager"
F = TypeVar("F", bound=Callable[..., Any])
AUTHENTICATION_CONFIGMAP = "extension-apiserver-authentication"


def build_tree(manager: Manager, options: Options, recorder: EventRecorder) -> Tree:
    """The tree with its five controllers, wired to the host and every future member."""
    tree = Tree(manager, options, recorder)
    pods = PodReconciler(tree)
    reconcilers: dict[str, tuple[Reconciler, int]] = {
        "clusters": (cluster_registry(tree), 2),
        "leafnodes": (LeafNodeReconciler(tree), 2),
        "pods": (pods, options.workers),
        "copies": (CopyReconciler(tree), 2),
        "volumes": (VolumeReconciler(tree), 1),
    }
    for name, (reconcile, workers) in reconcilers.items():
        tree.controllers[name] = controller(
            manager, f"clustertree-{name}", _counting_errors(name, reconcile), workers=workers
        )
    wire(tree)
    manager.on_cluster_removed(lambda _m, cluster: _forget(tree, pods, cluster))
    return tree


def _forget(tree: Tree, pods: PodReconciler, cluster: str) -> None:
    """A member left (or changed credentials): drop what was remembered about it."""
    pods.forget_cluster(cluster)
    tree.foreign = {entry for entry in tree.foreign if entry[0] != cluster}


def _counting_errors(name: str, reconcile: Reconciler) -> Reconciler:
    """Count failed reconciles per member cluster (the queue metrics are per controller)."""

    async def counted(request: Request) -> Result | None:
        try:
            return await reconcile(request)
        except Exception:
            metrics.sync_errors.labels(request.cluster, name).inc()
            raise

    return counted


def resolver(tree: Tree) -> Resolve:
    """Host pod -> its member client and member pod name, for the kubelet endpoint."""

    async def resolve(namespace: str, name: str) -> Target | None:
        pod = tree.pods.store.get(f"{namespace}/{name}")
        cluster = tree.cluster_of_pod(pod) if pod else None
        if cluster is None:
            return None
        try:
            client = tree.manager.client(cluster)
        except ClusterNotFound:
            return None
        return Target(client=client, namespace=namespace, name=name)

    return resolve


def builder(
    options: Options, cert_dir: str | None, bind_address: str | None = None
) -> Callable[[component.Runtime], None]:
    """The component's ``build``: the tree's controllers, and the kubelet endpoint served
    from before the manager starts until after it stops."""

    def build(runtime: component.Runtime) -> None:
        tree = build_tree(runtime.manager, options, runtime.recorder)
        cert, key = _serving_pair(options, cert_dir)
        bind = bind_address or runtime.common.bind_address
        auth = KubeletAuth(runtime.host, tree.leaf_ports.leaf_of) if options.kubelet_auth else None
        server = KubeletServer(
            resolver(tree),
            host=bind,
            port=options.kubelet_port,
            ssl_context=None,
            reader=LeafReader(tree),
            middlewares=(auth.middleware,) if auth else (),
        )
        tree.leaf_ports.on_port = server.listen

        refusals = CertificateRefusals(tree.leaf_nodes.store, runtime.recorder)

        async def start() -> None:
            if auth is None:
                context = tls.server_ssl_context(cert, key, options.kubelet_client_ca)
            else:
                ca = await client_ca(runtime.host, options.kubelet_client_ca)
                context = tls.server_ssl_context(cert, key, ca, optional=True)
            tls.observe_refusals(context, refusals.refused)
            server.use_tls(context)
            await server.start()
            log.info(
                "kubelet endpoint on %s:%d (advertised %s)", bind, server.port, options.node_address
            )

        runtime.on_start(start)
        runtime.on_stop(server.stop)
        runtime.on_stop(tree.close)

    return build


async def client_ca(host: Client, path: str | None) -> str | bytes | None:
    """The CA that signs the callers' client certificates: ``--kubelet-client-ca``, else the
    host's own client CA from ConfigMap kube-system/extension-apiserver-authentication (key
    ``client-ca-file``, as aggregated apiservers read it). Without one, only bearer tokens
    authenticate (and the apiserver's kubelet client certificate is refused: logged)."""
    if path:
        return path  # a file: tls reads it
    try:
        configmap = await host.get(CONFIGMAPS, AUTHENTICATION_CONFIGMAP, "kube-system")
    except KubeError as exc:
        log.warning("no client CA for the kubelet endpoint (only tokens accepted): %s", exc)
        return None
    pem = (configmap.get("data") or {}).get("client-ca-file")
    if not pem:
        log.warning("configmap kube-system/%s has no client-ca-file", AUTHENTICATION_CONFIGMAP)
        return None
    return str(pem).encode()


def _serving_pair(options: Options, cert_dir: str | None) -> tuple[bytes, bytes]:
    if cert_dir:
        return (Path(cert_dir) / "tls.crt").read_bytes(), (Path(cert_dir) / "tls.key").read_bytes()
    return tls.serving_certificate([options.node_address, "localhost", socket.gethostname()])


def click_options(func: F) -> F:
    """ClusterTree's flags; the launcher composes them into ``kosmos cluster-manager``."""
    decorators = [
        click.option(
            "--listen-port",
            default=10250,
            show_default=True,
            help="Kubelet endpoint port (logs/exec/port-forward), advertised on leaf nodes.",
        ),
        click.option(
            "--node-address",
            envvar="LEAF_NODE_IP",
            default="127.0.0.1",
            show_default=True,
            help="Address leaf nodes advertise; the host apiserver must reach it.",
        ),
        click.option(
            "--kubelet-bind-address",
            default=None,
            help="Where the kubelet endpoint listens (default: --bind-address).",
        ),
        click.option(
            "--kubelet-client-ca",
            default=None,
            help="CA file of the callers' client certificates (default: the host's client CA, "
            "ConfigMap kube-system/extension-apiserver-authentication).",
        ),
        click.option(
            "--cert-dir",
            default=None,
            help="Directory with tls.crt/tls.key (default: a self-signed certificate for "
            "--node-address).",
        ),
        click.option(
            "--kubelet-auth/--no-kubelet-auth",
            default=True,
            show_default=True,
            help="Authenticate (client certificate signed by the client CA, or a bearer token "
            "by TokenReview) and authorize (SubjectAccessReview on "
            "nodes/proxy|stats|metrics|pods) every kubelet endpoint request, as a kubelet in "
            "webhook mode.",
        ),
        click.option(
            "--heartbeat", default=10.0, show_default=True, help="Seconds between probes."
        ),
        click.option(
            "--lease-renew-interval",
            default=20.0,
            show_default=True,
            help="Seconds between renewals of a leaf node's Lease (spread 90-100% per leaf); "
            "keep it under half the host's --node-monitor-grace-period.",
        ),
        click.option(
            "--node-status-report-interval",
            default=300.0,
            show_default=True,
            help="Seconds between leaf Node status writes when nothing changed (a kubelet's "
            "nodeStatusReportFrequency); changes are written at once.",
        ),
        click.option(
            "--node-qps",
            default=300.0,
            show_default=True,
            help="Host client QPS for leaf Node and Lease writes, apart from --kube-qps "
            "(N leaves renew N / --lease-renew-interval leases a second).",
        ),
        click.option("--node-burst", default=600, show_default=True, help="Burst of --node-qps."),
        click.option(
            "--unreachable-after",
            default=40.0,
            show_default=True,
            help="Seconds without a member answer before its leaf nodes turn NotReady.",
        ),
        click.option("--workers", default=16, show_default=True, help="Pod sync workers."),
        click.option(
            "--owner",
            default="",
            help="Label this cluster-manager's pods and copies in members with "
            "kosmos.io/tree-owner=<owner> and treat only those as its own (several control "
            "planes sharing a member: kubenest's k8s-in-k8s).",
        ),
        click.option(
            "--root-coredns-service-namespace",
            default="kube-system",
            show_default=True,
            help="Namespace of the host's DNS Service, which pods on leaf nodes use when the "
            "multi-cluster services are off (central DNS).",
        ),
        click.option(
            "--root-coredns-service-name",
            default="kube-dns",
            show_default=True,
            help="Name of the host's DNS Service (central DNS).",
        ),
    ]
    for decorate in reversed(decorators):
        func = decorate(func)
    return func


#: the shared flags' defaults of the cluster-manager (``component.common_options``). A pod
#: start costs one host write (its status) and one member write (the create), a deletion one
#: more each; the process itself starts ~140 pods/s per core (7 ms CPU per start, measured in
#: docs/clustertree.md "At scale"). 200/s lets the CPU, not the client, set the pace (at 100/s a
#: burst of 2000 starts waited >= 18 s for the host client alone); the burst covers 2 s of it.
COMMON_DEFAULTS: dict[str, Any] = {
    "kube_qps": 200.0,
    "kube_burst": 400,
    "member_qps": 200.0,
    "member_burst": 400,
}


@dataclass(frozen=True)
class Settings:
    """What ClusterTree's flags decide: its options and where its kubelet endpoint serves."""

    options: Options
    cert_dir: str | None
    kubelet_bind_address: str | None

    def builder(self) -> Callable[[component.Runtime], None]:
        return builder(self.options, self.cert_dir, self.kubelet_bind_address)


def settings_from(
    common: component.Common,
    kwargs: dict[str, Any],
    *,
    multi_cluster_service: bool = True,
    member_cleanups: tuple[Callable[[Client], Awaitable[None]], ...] = (),
) -> Settings:
    """Pop ClusterTree's flags out of a command's keyword arguments."""
    options = Options(
        node_address=kwargs.pop("node_address"),
        kubelet_port=kwargs.pop("listen_port"),
        kubelet_client_ca=kwargs.pop("kubelet_client_ca"),
        kubelet_auth=kwargs.pop("kubelet_auth"),
        heartbeat_seconds=kwargs.pop("heartbeat"),
        lease_renew_seconds=kwargs.pop("lease_renew_interval"),
        node_status_report_seconds=kwargs.pop("node_status_report_interval"),
        node_qps=kwargs.pop("node_qps"),
        node_burst=kwargs.pop("node_burst"),
        unreachable_seconds=kwargs.pop("unreachable_after"),
        workers=kwargs.pop("workers"),
        owner=kwargs.pop("owner"),
        member_qps=common.member_qps,
        member_burst=common.member_burst,
        multi_cluster_service=multi_cluster_service,
        member_cleanups=member_cleanups,
        root_dns_service=(
            kwargs.pop("root_coredns_service_namespace"),
            kwargs.pop("root_coredns_service_name"),
        ),
    )
    return Settings(options, kwargs.pop("cert_dir"), kwargs.pop("kubelet_bind_address"))
