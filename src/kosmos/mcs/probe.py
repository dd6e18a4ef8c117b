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
from collections.abc import Iterable
from typing import Literal

import click
from prometheus_client import Counter, Gauge, Histogram

from kosmos.api.objects import Obj
from kosmos.api.resources import SERVICE_IMPORTS
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
from kosmos.kube.errors import KubeError
from kosmos.kube.informer import Informer
from kosmos.kube.metrics import REGISTRY
from kosmos.kube.store import object_key
from kosmos.mcs import probeplan
from kosmos.mcs.probeplan import Hysteresis

log = logging.getLogger("kosmos.mcs.probe")

NAME = "eps-probe"
Outcome = Literal["connected", "refused", "timeout", "unreachable", "error"]
#: outcomes that prove the address answers
REACHABLE: frozenset[Outcome] = frozenset({"connected", "refused"})
_UNREACHABLE_ERRNOS = frozenset({errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN})
#: connects in flight at once: a few hundred endpoints are probed within one interval
CONCURRENCY = 256

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
    """Probes every ServiceImport in ``informer``'s cache each round; patches what changed."""

    def __init__(
        self, client: Client, informer: Informer, *, timeout: float, threshold: int
    ) -> None:
        self.client = client
        self.informer = informer
        self.timeout = timeout
        self.threshold = threshold
        self._state: dict[str, Hysteresis] = {}
        self._limit = asyncio.Semaphore(CONCURRENCY)

    async def run(self, interval: float) -> None:
        """Round after round, one every ``interval`` seconds (a slow round starts the next)."""
        await self.informer.wait_for_sync()
        while True:
            started = time.monotonic()
            await self.round()
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))

    async def round(self) -> None:
        imports = self.informer.store.list()
        targets = {object_key(i): (i, probeplan.target(i)) for i in imports}
        pairs = {(a, t.port) for _, t in targets.values() if t for a in t.addresses}
        results = dict(zip(pairs, await self._probe_all(pairs), strict=True))
        for key in set(self._state) - set(targets):
            del self._state[key]
        for key, (obj, tgt) in targets.items():
            await self._settle(key, obj, tgt, results)
        disconnected_addresses.set(sum(len(h.disconnected()) for h in self._state.values()))

    async def _probe_all(self, pairs: Iterable[tuple[str, int]]) -> list[bool]:
        async def one(address: str, port: int) -> bool:
            async with self._limit:
                return await reachable(address, port, self.timeout)

        return list(await asyncio.gather(*(one(a, p) for a, p in pairs)))

    async def _settle(
        self,
        key: str,
        obj: Obj,
        tgt: probeplan.Target | None,
        results: dict[tuple[str, int], bool],
    ) -> None:
        """Update the import's hysteresis and write the annotation if its value changes."""
        current = probeplan.current_disconnected(obj)
        state = self._state.get(key)
        if state is None:
            state = self._state[key] = Hysteresis.resumed(self.threshold, current)
        if tgt is None:  # no TCP port or no address: never marks anything
            state.record({})
        else:
            state.record({a: results[(a, tgt.port)] for a in tgt.addresses})
        patch = probeplan.annotation_patch(current, state.disconnected())
        if patch is None:
            return
        meta = obj["metadata"]
        try:
            await self.client.patch(
                SERVICE_IMPORTS, meta["name"], patch, namespace=meta.get("namespace")
            )
        except KubeError as exc:  # deleted meanwhile, or the apiserver is away: next round
            log.warning("serviceimport %s: %s", key, exc)
            return
        log.info("serviceimport %s: disconnected %s", key, state.disconnected() or "none")


def build(runtime: Runtime, *, interval: float, timeout: float, threshold: int) -> None:
    """One informer on the local ServiceImports and the probing loop next to the manager."""
    informer = runtime.manager.informer(HOST, SERVICE_IMPORTS)
    prober = Prober(runtime.host, informer, timeout=timeout, threshold=threshold)
    runtime.alongside(functools.partial(prober.run, interval))


@click.command(NAME)
@common_options(None, member_qps=None, kube_qps=20.0, kube_burst=40)
@click.option("--interval", default=1.0, show_default=True, help="Seconds between probe rounds.")
@click.option("--timeout", default=1.0, show_default=True, help="Seconds one TCP connect may take.")
@click.option(
    "--failure-threshold",
    default=2,
    show_default=True,
    type=click.IntRange(min=1),
    help="Consecutive failures that mark an address disconnected (one success clears it).",
)
def command(common: Common, interval: float, timeout: float, failure_threshold: int) -> None:
    """Probe imported endpoints from this cluster; list the unreachable ones on the
    ServiceImport (kosmos.io/disconnected-address)."""
    run = functools.partial(build, interval=interval, timeout=timeout, threshold=failure_threshold)
    main(NAME, common.verbose, run_component(Component(NAME), common, run))
