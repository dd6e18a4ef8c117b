"""Lease-based leader election (coordination.k8s.io/v1), client-go's algorithm.

Expiry is judged on *our* clock from when we last saw the lease record change, never by
comparing the holder's timestamps with ours, so clock skew between hosts cannot cause two
leaders. Defaults (10 s lease, 7 s renew deadline, 2 s retry) bound failover after a leader
dies without releasing to about lease + 2 retries (~14 s); a clean shutdown releases the lease
so a standby takes over at its next retry.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from kosmos.api.objects import Obj, micro_now
from kosmos.api.resources import LEASES
from kosmos.kube import metrics
from kosmos.kube.client import Client
from kosmos.kube.clock import Clock, RealClock
from kosmos.kube.errors import AlreadyExists, KubeError, NotFound

log = logging.getLogger("kosmos.kube.leader")


class LeadershipLost(Exception):
    """The lease could not be renewed within the renew deadline."""


@dataclass(frozen=True)
class LeaderElectionConfig:
    namespace: str
    name: str
    identity: str
    lease_duration: float = 10.0
    renew_deadline: float = 7.0
    retry_period: float = 2.0
    #: extra seconds this candidate waits before taking an expired or released lease, so
    #: candidates without it (preferred ones) win when both are alive
    acquire_grace: float = 0.0


class LeaderElector:
    def __init__(
        self, client: Client, config: LeaderElectionConfig, *, clock: Clock | None = None
    ) -> None:
        self.client = client
        self.config = config
        self.clock = clock or RealClock()
        self.is_leader = False
        self.transitions = 0  # leaseTransitions of the lease as we last wrote it
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0

    async def run(self, lead: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Wait for the lease, run ``lead()`` while holding it; release on the way out.

        Raises ``LeadershipLost`` if renewal fails: the caller should exit (like client-go's
        components do) rather than keep acting on stale leadership.
        """
        await self._acquire()
        lease = f"{self.config.namespace}/{self.config.name}"
        log.info("%s: became leader of %s", self.config.identity, lease)
        self.is_leader = True
        metrics.leader.labels(lease).set(1)
        leading: asyncio.Task[None] = asyncio.create_task(lead())
        renewing = asyncio.create_task(self._renew_loop())
        try:
            done, _ = await asyncio.wait({leading, renewing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (leading, renewing):
                task.cancel()
            await asyncio.gather(leading, renewing, return_exceptions=True)
            self.is_leader = False
            metrics.leader.labels(lease).set(0)
            await asyncio.shield(self._release())
        if renewing in done:
            raise LeadershipLost(f"{self.config.identity} lost the lease {lease}")
        leading.result()

    async def _acquire(self) -> None:
        while not await self._try_acquire_or_renew():
            await self.clock.sleep(self.config.retry_period * random.uniform(1.0, 1.2))

    async def _renew_loop(self) -> None:
        """Returns (leadership lost) when no renewal succeeds within the renew deadline."""
        while True:
            await self.clock.sleep(self.config.retry_period)
            deadline = self.clock.now() + self.config.renew_deadline
            while True:
                remaining = deadline - self.clock.now()
                if remaining <= 0:
                    return
                try:
                    if await asyncio.wait_for(self._try_acquire_or_renew(), remaining):
                        break
                except TimeoutError:
                    return
                await self.clock.sleep(min(self.config.retry_period, max(remaining, 0)))

    async def _try_acquire_or_renew(self) -> bool:
        cfg = self.config
        try:
            lease = await self.client.get(LEASES, cfg.name, cfg.namespace)
        except NotFound:
            return await self._create()
        except KubeError as exc:
            log.warning("%s: reading lease failed: %s", cfg.identity, exc)
            return False
        spec = lease.get("spec", {})
        record = (spec.get("holderIdentity"), spec.get("renewTime"), spec.get("acquireTime"))
        if record != self._observed:
            self._observed, self._observed_at = record, self.clock.now()
        holder = spec.get("holderIdentity")
        duration = float(spec.get("leaseDurationSeconds") or cfg.lease_duration)
        if holder != cfg.identity:
            wait = (duration if holder else 0.0) + cfg.acquire_grace
            if self._observed_at + wait > self.clock.now():
                return False
        now = micro_now()
        new_spec = dict(spec, holderIdentity=cfg.identity, renewTime=now)
        new_spec["leaseDurationSeconds"] = int(cfg.lease_duration)
        if holder != cfg.identity:
            new_spec["acquireTime"] = now
            new_spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        lease["spec"] = new_spec
        return await self._write(lease)

    async def _create(self) -> bool:
        now = micro_now()
        cfg = self.config
        body: Obj = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": cfg.name, "namespace": cfg.namespace},
            "spec": {
                "holderIdentity": cfg.identity,
                "leaseDurationSeconds": int(cfg.lease_duration),
                "acquireTime": now,
                "renewTime": now,
                "leaseTransitions": 0,
            },
        }
        try:
            created = await self.client.create(LEASES, body)
        except AlreadyExists:
            return False
        except KubeError as exc:
            log.warning("%s: creating lease failed: %s", cfg.identity, exc)
            return False
        self._remember(created)
        return True

    async def _write(self, lease: Obj) -> bool:
        """Compare-and-swap on resourceVersion: a concurrent writer makes this fail."""
        try:
            written = await self.client.replace(LEASES, lease)
        except KubeError as exc:
            log.debug("%s: lease update lost: %s", self.config.identity, exc)
            return False
        self._remember(written)
        return True

    def _remember(self, lease: Obj) -> None:
        spec = lease["spec"]
        self.transitions = int(spec.get("leaseTransitions") or 0)
        self._observed = (
            spec.get("holderIdentity"),
            spec.get("renewTime"),
            spec.get("acquireTime"),
        )
        self._observed_at = self.clock.now()

    async def _release(self) -> None:
        """Hand the lease back so a standby need not wait for it to expire."""
        cfg = self.config
        try:
            lease = await self.client.get(LEASES, cfg.name, cfg.namespace)
            if lease.get("spec", {}).get("holderIdentity") != cfg.identity:
                return
            now = micro_now()
            lease["spec"].update(
                holderIdentity=None, leaseDurationSeconds=1, renewTime=now, acquireTime=now
            )
            await self.client.replace(LEASES, lease)
            log.info("%s: released lease %s/%s", cfg.identity, cfg.namespace, cfg.name)
        except KubeError as exc:
            log.warning("%s: releasing lease failed: %s", cfg.identity, exc)
