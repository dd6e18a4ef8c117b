"""``kosmos scheduler-extender``: the Kosmos extender of the kosmos-scheduler profile.

One process: caches of the host and of every member (``cache``, ``members``), the HTTPS
filter/prioritize endpoint kube-scheduler calls (``server``, which also serves the health
endpoints), and the deletion-cost controller (``deletioncost``) that runs only while holding
the Lease ``kosmos-system/kosmos-scheduler-extender``. The manager itself is not elected:
serving never waits for that Lease, because each kube-scheduler replica calls the extender
next to it, and only the leading scheduler calls at all.
"""

from __future__ import annotations

import functools
import gc
import logging
from collections.abc import Callable
from pathlib import Path

import click

from kosmos.api import names
from kosmos.kube import builder, component, tls
from kosmos.kube.builder import Watch, by_name
from kosmos.kube.controller import Controller
from kosmos.kube.informer import EnqueueHandler
from kosmos.kube.leader import LeaderElectionConfig, LeaderElector
from kosmos.kube.manager import Manager
from kosmos.scheduler.cache import Caches
from kosmos.scheduler.deletioncost import CostReconciler, CostTrigger, run_elected
from kosmos.scheduler.ledger import Ledger
from kosmos.scheduler.members import registry
from kosmos.scheduler.server import COMPONENT, Extender, Server

log = logging.getLogger("kosmos.scheduler")

NAME = "scheduler-extender"
LEASE = "kosmos-scheduler-extender"
#: health is served on the HTTPS port (``server``); kube-scheduler's calls go before cache upkeep
EXTENDER = component.Component(COMPONENT, event_source=COMPONENT, serve_health=False, gate=True)


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


def build(runtime: component.Runtime, *, port: int, cert: tuple[bytes, bytes]) -> None:
    """The caches, the member set, the deletion costs and the HTTPS endpoint."""
    manager, common = runtime.manager, runtime.common
    ledger = Ledger()
    caches = Caches(manager, ledger)
    members = registry(
        manager, caches.clusters, runtime.recorder, (common.member_qps, common.member_burst)
    )
    builder.controller(
        manager,
        "scheduler-members",
        members,
        workers=2,
        watches=[Watch(caches.clusters, by_name(component.HOST))],
    )
    _deletion_costs(runtime, caches)
    _serve(runtime, Extender(caches, ledger, _not_ready(caches), manager.gate), port, cert)
    tune_gc()
    runtime.alongside(functools.partial(_calm_gc, manager))


def _deletion_costs(runtime: component.Runtime, caches: Caches) -> None:
    """A fresh controller per term of the Lease (or one for the process without
    ``--leader-elect``), woken by host pod and policy events once the caches are synced."""
    manager = runtime.manager

    def cost_controller() -> Controller:
        reconcile = CostReconciler(manager, caches)
        return builder.standalone("scheduler-deletion-costs", reconcile, workers=2)

    first = cost_controller()
    trigger = CostTrigger(first, caches)
    caches.pods.add_handler(trigger)
    for informer in (caches.namespaced, caches.cluster_scoped):
        informer.add_handler(EnqueueHandler(trigger.policy_changed))
    if runtime.common.leader_elect:
        config = LeaderElectionConfig(names.SYSTEM_NAMESPACE, LEASE, runtime.identity)
        elector = LeaderElector(runtime.host, config)
        runtime.alongside(
            functools.partial(run_elected, cost_controller, trigger, elector, manager.wait_for_sync)
        )
    else:
        runtime.alongside(functools.partial(_after_sync, manager, first))


def _not_ready(caches: Caches) -> Callable[[], list[str]]:
    def not_ready() -> list[str]:
        waiting = caches.not_synced()
        return [f"host caches not synced yet: {', '.join(waiting)}"] if waiting else []

    return not_ready


def _serve(
    runtime: component.Runtime, extender: Extender, port: int, cert: tuple[bytes, bytes]
) -> None:
    """Open the HTTPS port before the manager starts; close it at shutdown."""
    bind = runtime.common.bind_address
    server = Server(extender, bind, port, tls.server_ssl_context(*cert))

    async def start() -> None:
        await server.start()
        log.info("serving filter/prioritize on https://%s:%d", bind, port)

    runtime.on_start(start)
    runtime.on_stop(server.stop)


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
@component.common_options(
    LEASE,
    health_port=None,
    kube_qps=100.0,
    kube_burst=200,
    member_qps=50.0,
    member_burst=100,
    leader_elect_help=(
        f"Write deletion costs only while holding Lease {names.SYSTEM_NAMESPACE}/{LEASE}."
    ),
)
def command(
    common: component.Common, secure_port: int, cert_dir: str | None, cert_hosts: tuple[str, ...]
) -> None:
    """Serve kube-scheduler's extender verbs: distribution policies, per-cluster placement,
    true capacity and volume pinning for the kosmos-scheduler profile."""
    cert = serving_pair(cert_dir, list(cert_hosts))
    build_extender = functools.partial(build, port=secure_port, cert=cert)
    component.main(
        COMPONENT,
        common.verbose,
        component.run_component(EXTENDER, common, build_extender),
        log_format=common.log_format,
    )
