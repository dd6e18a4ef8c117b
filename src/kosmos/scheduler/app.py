"""``kosmos scheduler-extender``: the Kosmos extender of the kosmos-scheduler profile.

One process: caches of the host and of every member (``cache``, ``members``), the HTTPS
filter/prioritize endpoint kube-scheduler calls (``server``), and the deletion-cost
controller (``deletioncost``) that runs only while holding the Lease
``kosmos-system/kosmos-scheduler-extender``. Serving never waits for that Lease: each
kube-scheduler replica calls the extender next to it, and only the leading scheduler calls
at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
from pathlib import Path

import click

from kosmos.api import names
from kosmos.kube import config as kube_config
from kosmos.kube import diagnostics, tls
from kosmos.kube.client import Client
from kosmos.kube.component import HOST
from kosmos.kube.controller import Controller, Request
from kosmos.kube.events import EventRecorder
from kosmos.kube.gate import Gate
from kosmos.kube.informer import EnqueueHandler
from kosmos.kube.leader import LeaderElectionConfig, LeaderElector
from kosmos.kube.manager import Manager
from kosmos.kube.metrics import PrometheusQueueMetrics, PrometheusReconcileObserver
from kosmos.scheduler.cache import Caches
from kosmos.scheduler.deletioncost import CostReconciler, CostTrigger, run_elected
from kosmos.scheduler.ledger import Ledger
from kosmos.scheduler.members import MemberReconciler
from kosmos.scheduler.server import COMPONENT, Extender, Server

log = logging.getLogger("kosmos.scheduler")

NAME = "scheduler-extender"
LEASE = "kosmos-scheduler-extender"


def serving_pair(cert_dir: str | None, hosts: list[str]) -> tuple[bytes, bytes]:
    """``tls.crt``/``tls.key`` from ``cert_dir``, made there first if missing.

    Writing a generated pair lets the kube-scheduler next to us trust exactly this
    certificate (its ``tlsConfig.caFile`` points at ``tls.crt``).
    """
    if cert_dir is None:
        return tls.serving_certificate(hosts)
    directory = Path(cert_dir)
    cert, key = directory / "tls.crt", directory / "tls.key"
    if not (cert.exists() and key.exists()):
        directory.mkdir(parents=True, exist_ok=True)
        cert_pem, key_pem = tls.serving_certificate(hosts)
        key.touch(mode=0o600)
        key.write_bytes(key_pem)
        cert.write_bytes(cert_pem)
        log.info("wrote a self-signed serving certificate for %s to %s", hosts, directory)
    return cert.read_bytes(), key.read_bytes()


def _controller(
    name: str, reconcile: CostReconciler | MemberReconciler, workers: int
) -> Controller:
    return Controller(
        name,
        reconcile,
        workers=workers,
        queue_metrics=PrometheusQueueMetrics(),
        observer=PrometheusReconcileObserver(),
    )


async def run(
    *,
    kubeconfig: str | None,
    context: str | None,
    bind: str,
    port: int,
    cert: tuple[bytes, bytes],
    leader_elect: bool,
    qps: tuple[float, int],
    member_qps: tuple[float, int],
) -> None:
    config = await kube_config.for_component(HOST, kubeconfig, context)
    config.qps, config.burst = qps
    host = Client(config)
    gate = Gate()  # kube-scheduler waits on every filter/prioritize: they go first
    manager = Manager(COMPONENT, health_address=None, gate=gate)
    manager.add_cluster(HOST, host)
    ledger = Ledger()
    caches = Caches(manager, ledger)
    identity = f"{socket.gethostname()}_{os.getpid()}"
    recorder = EventRecorder(host, COMPONENT, identity)
    members = _controller(
        "scheduler-members", MemberReconciler(manager, caches, recorder, member_qps), 2
    )
    caches.clusters.add_handler(
        EnqueueHandler(lambda c: members.enqueue(Request(HOST, "", c["metadata"]["name"])))
    )
    manager.add_controller(members)

    def cost_controller() -> Controller:
        return _controller("scheduler-deletion-costs", CostReconciler(manager, caches), 2)

    first = cost_controller()
    trigger = CostTrigger(first, caches)
    caches.pods.add_handler(trigger)
    for informer in (caches.namespaced, caches.cluster_scoped):
        informer.add_handler(EnqueueHandler(trigger.policy_changed))

    def not_ready() -> list[str]:
        waiting = caches.not_synced()
        return [f"host caches not synced yet: {', '.join(waiting)}"] if waiting else []

    server = Server(
        Extender(caches, ledger, not_ready, gate), bind, port, tls.server_ssl_context(*cert)
    )
    await server.start()
    log.info("serving filter/prioritize on https://%s:%d", bind, port)
    if leader_elect:
        elector = LeaderElector(host, LeaderElectionConfig(names.SYSTEM_NAMESPACE, LEASE, identity))
        costs = run_elected(cost_controller, trigger, elector, manager.wait_for_sync)
    else:
        costs = _after_sync(manager, first)
    current = asyncio.current_task()
    if current is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, current.cancel)
    tune_gc()
    try:
        await asyncio.gather(manager.run(), costs, _calm_gc(manager))
    finally:
        await server.stop()
        await manager.close()


async def _after_sync(manager: Manager, controller: Controller) -> None:
    await manager.wait_for_sync()
    await controller.run()


async def _calm_gc(manager: Manager) -> None:
    """Keep the cycle collector off the cached objects (see ``tune_gc``)."""
    await manager.wait_for_sync()
    gc.collect()
    gc.freeze()


def tune_gc() -> None:
    """The caches are tens of thousands of JSON dicts and lists that never form cycles, yet
    the cycle collector rescans them as they grow (full collections every few thousand
    allocations with the default thresholds), which showed as a slow first minute of
    extender calls. A larger young generation and freezing what the first sync loaded keep
    kube-scheduler's calls flat."""
    gc.set_threshold(50_000, 20, 100)


@click.command(NAME)
@click.option("--kubeconfig", envvar="KUBECONFIG", help="Host kubeconfig (default: in-cluster).")
@click.option("--context", default=None, help="Context of --kubeconfig.")
@click.option("--bind-address", default="0.0.0.0", show_default=True)
@click.option(
    "--secure-port",
    default=10260,
    show_default=True,
    help="HTTPS port: filter/prioritize under /kosmos-scheduler-extender, /healthz, "
    "/readyz, /metrics.",
)
@click.option(
    "--cert-dir",
    default=None,
    help="Directory with tls.crt/tls.key; a self-signed pair is written there if missing "
    "(default: a self-signed pair in memory).",
)
@click.option(
    "--cert-host",
    "cert_hosts",
    multiple=True,
    default=("127.0.0.1", "localhost"),
    show_default=True,
    help="Names and IPs of a generated certificate (repeatable).",
)
@click.option(
    "--leader-elect/--no-leader-elect",
    default=False,
    show_default=True,
    help="Write deletion costs only while holding Lease kosmos-system/kosmos-scheduler-extender.",
)
@click.option("--kube-qps", default=100.0, show_default=True, help="Host client QPS.")
@click.option("--kube-burst", default=200, show_default=True, help="Host client burst.")
@click.option("--member-qps", default=50.0, show_default=True, help="QPS per member client.")
@click.option("--member-burst", default=100, show_default=True, help="Burst per member client.")
@click.option("-v", "--verbose", count=True)
def command(  # noqa: PLR0917 - click passes every option by name
    kubeconfig: str | None,
    context: str | None,
    bind_address: str,
    secure_port: int,
    cert_dir: str | None,
    cert_hosts: tuple[str, ...],
    leader_elect: bool,
    kube_qps: float,
    kube_burst: int,
    member_qps: float,
    member_burst: int,
    verbose: int,
) -> None:
    """Serve kube-scheduler's extender verbs: distribution policies, per-cluster placement,
    true capacity and volume pinning for the kosmos-scheduler profile."""
    diagnostics.configure_logging(verbose)
    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        asyncio.run(
            run(
                kubeconfig=kubeconfig,
                context=context,
                bind=bind_address,
                port=secure_port,
                cert=serving_pair(cert_dir, list(cert_hosts)),
                leader_elect=leader_elect,
                qps=(kube_qps, kube_burst),
                member_qps=(member_qps, member_burst),
            )
        )
