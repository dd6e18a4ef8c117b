"""``kosmos eps-probe``: marks the imported endpoints this cluster cannot reach.

The seed's eps-probe-plugin as a Kosmos component. It runs as a pod of the importing cluster,
because reachability is a property of that vantage point: a member's pod network may lose its
route to another member's pod CIDR while the host still reaches both. Every ``--interval`` it
TCP-connects to each address of each local ServiceImport's ``kosmos.io/address`` on the
import's first TCP port. A completed handshake and a refusal (RST) both prove the address
answers: the port may differ from the pod's (an import carries service ports, no target
ports), but a host that refuses is up and routed. A timeout, EHOSTUNREACH or ENETUNREACH is a
failure. The decisions (hysteresis, annotation value) are in :mod:`kosmos.mcs.probeplan`.

A plain TCP connect is ordinary socket use, not kernel configuration, so it lives here rather
than in ``kosmos.net``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import logging
import time
from typing import Literal

import click
from prometheus_client import Counter, Gauge, Histogram

from kosmos.api.objects import Obj
from kosmos.api.resources import SERVICE_IMPORTS
from kosmos.kube import builder
from kosmos.kube.client import Client
from kosmos.kube.component import (
    HOST,
    Common,
    Component,
    Runtime,
    common_options,
    main,
    run_component,
)
from kosmos.kube.controller import Request, Result
from kosmos.kube.informer import ChangeHandler
from kosmos.kube.metrics import REGISTRY
from kosmos.kube.store import Store
from kosmos.mcs import probeplan
from kosmos.mcs.probeplan import Hysteresis

log = logging.getLogger("kosmos.mcs.probe")

NAME = "eps-probe"
Outcome = Literal["connected", "refused", "timeout", "unreachable", "error"]
#: outcomes that prove the address answers
REACHABLE: frozenset[Outcome] = frozenset({"connected", "refused"})
#: the least wait before the next probe of an import (a slow probe: at once, but not busy)
MIN_REQUEUE = 0.05
_UNREACHABLE_ERRNOS = frozenset({errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN})

probes = Counter(
    "kosmos_mcs_probe_total",
    "TCP probes of imported endpoints, by result.",
    ["result"],
    registry=REGISTRY,
)
disconnected_addresses = Gauge(
    "kosmos_mcs_probe_disconnected_addresses",
    "Addresses this cluster's prober currently marks disconnected, over all ServiceImports.",
    registry=REGISTRY,
)
probe_seconds = Histogram(
    "kosmos_mcs_probe_duration_seconds",
    "Seconds one TCP probe took, by result.",
    ["result"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5),
    registry=REGISTRY,
)


async def reach(address: str, port: int, timeout: float) -> Outcome:
    """One TCP connect to ``address:port`` within ``timeout`` seconds, classified."""
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(address, port)
    except TimeoutError:
        return "timeout"
    except ConnectionRefusedError:
        return "refused"
    except OSError as exc:
        return "unreachable" if exc.errno in _UNREACHABLE_ERRNOS else "error"
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return "connected"


async def reachable(address: str, port: int, timeout: float) -> bool:
    """``reach`` as a yes/no, with the probe metrics recorded."""
    started = time.monotonic()
    outcome = await reach(address, port, timeout)
    probes.labels(outcome).inc()
    probe_seconds.labels(outcome).observe(time.monotonic() - started)
    return outcome in REACHABLE


class Prober:
    """The reconciler: probe one ServiceImport's addresses, patch the annotation if it changes,
    and look again after ``interval`` (level-based: a restart resumes from the annotation)."""

    def __init__(
        self, client: Client, store: Store, *, interval: float, timeout: float, threshold: int
    ) -> None:
        self.client = client
        self.store = store
        self.interval = interval
        self.timeout = timeout
        self.threshold = threshold
        self._state: dict[str, Hysteresis] = {}

    async def __call__(self, request: Request) -> Result | None:
        key = f"{request.namespace}/{request.name}"
        started = time.monotonic()
        obj = self.store.get_by_name(request.name, request.namespace)
        if obj is None:
            self._state.pop(key, None)
            self._count()
            return None
        current = probeplan.current_disconnected(obj)
        state = self._state.get(key)
        if state is None:
            state = self._state[key] = Hysteresis.resumed(self.threshold, current)
        tgt = probeplan.target(obj)
        if tgt is None:  # no TCP port or no address: never marks anything
            state.record({})
        else:
            probes = (reachable(a, tgt.port, self.timeout) for a in tgt.addresses)
            state.record(dict(zip(tgt.addresses, await asyncio.gather(*probes), strict=True)))
        self._count()
        patch = probeplan.annotation_patch(current, state.disconnected())
        if patch is not None:
            await self.client.patch(
                SERVICE_IMPORTS, request.name, patch, namespace=request.namespace
            )
            log.info(
                "serviceimport %s: disconnected %s", key, ",".join(state.disconnected()) or "none"
            )
        # every ``interval`` from the start of this probe, so a timeout does not stretch it
        return Result(requeue_after=max(MIN_REQUEUE, self.interval - (time.monotonic() - started)))

    def _count(self) -> None:
        disconnected_addresses.set(sum(len(h.disconnected()) for h in self._state.values()))


def build(
    runtime: Runtime, *, interval: float, timeout: float, threshold: int, workers: int
) -> None:
    """One informer on the local ServiceImports; a controller that probes each of them.

    Only what changes the probe (ports, ``kosmos.io/address``) wakes an import early: its
    own annotation write must not, or failures would be counted faster than ``interval``.
    """
    informer = runtime.manager.informer(HOST, SERVICE_IMPORTS)
    reconcile = Prober(
        runtime.host, informer.store, interval=interval, timeout=timeout, threshold=threshold
    )
    controller = builder.controller(runtime.manager, NAME, reconcile, workers=workers)

    def changed(old: Obj | None, new: Obj | None) -> None:
        if old is None or new is None or probeplan.inputs(old) != probeplan.inputs(new):
            meta = (new or old or {})["metadata"]
            controller.enqueue(Request(HOST, meta.get("namespace") or "", meta["name"]))

    informer.add_handler(ChangeHandler(changed))


@click.command(NAME)
@common_options(None, member_qps=None, kube_qps=20.0, kube_burst=40)
@click.option("--interval", default=1.0, show_default=True, help="Seconds between probe rounds.")
@click.option("--timeout", default=1.0, show_default=True, help="Seconds one TCP connect may take.")
@click.option("--workers", default=16, show_default=True, help="ServiceImports probed at once.")
@click.option(
    "--failure-threshold",
    default=2,
    show_default=True,
    type=click.IntRange(min=1),
    help="Consecutive failures that mark an address disconnected (one success clears it).",
)
def command(
    common: Common, interval: float, timeout: float, workers: int, failure_threshold: int
) -> None:
    """Probe imported endpoints from this cluster; list the unreachable ones on the
    ServiceImport (kosmos.io/disconnected-address)."""
    run = functools.partial(
        build, interval=interval, timeout=timeout, threshold=failure_threshold, workers=workers
    )
    main(
        NAME,
        common.verbose,
        run_component(Component(NAME), common, run),
        log_format=common.log_format,
    )
