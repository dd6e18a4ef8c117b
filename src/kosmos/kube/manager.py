"""The manager: clusters, shared informers and controllers under one lifecycle.

Start-up order: health server -> leader election (optional, on the host) -> informers of every
cluster -> wait for their caches -> controllers. Clusters join and leave at runtime: a
component registers a *cluster hook* that wires informers and handlers for one cluster; the
manager calls it for every cluster present at start and for each one added later, and cancels
that cluster's informers when it is removed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kosmos.api.resources import Resource
from kosmos.kube.client import Client
from kosmos.kube.controller import Controller
from kosmos.kube.gate import Gate
from kosmos.kube.informer import Informer
from kosmos.kube.leader import LeaderElectionConfig, LeaderElector
from kosmos.kube.serving import HealthServer

log = logging.getLogger("kosmos.kube.manager")

InformerKey = tuple[str, str | None, str | None, str | None]
ClusterHook = Callable[["Manager", str], None]


class ClusterNotFound(KeyError):
    """The cluster is not (or no longer) managed; requests for it should be dropped."""


@dataclass
class _Cluster:
    client: Client
    informers: dict[InformerKey, Informer] = field(default_factory=dict)
    tasks: dict[InformerKey, asyncio.Task[None]] = field(default_factory=dict)


class Manager:
    def __init__(
        self,
        name: str,
        *,
        leader_election: tuple[Client, LeaderElectionConfig] | None = None,
        health_address: tuple[str, int] | None = ("127.0.0.1", 0),
        sync_timeout: float = 120.0,
        gate: Gate | None = None,
    ) -> None:
        self.name = name
        #: given to every informer: request handlers of this process go before cache upkeep
        self.gate = gate
        self._clusters: dict[str, _Cluster] = {}
        self._controllers: list[Controller] = []
        self._added_hooks: list[ClusterHook] = []
        self._removed_hooks: list[ClusterHook] = []
        self._elector = LeaderElector(*leader_election) if leader_election else None
        self._sync_timeout = sync_timeout
        self._running = False
        self._synced = False
        self.health = HealthServer(*health_address, self._not_ready) if health_address else None

    # -- clusters ------------------------------------------------------------------------

    @property
    def cluster_names(self) -> list[str]:
        return list(self._clusters)

    def client(self, cluster: str) -> Client:
        try:
            return self._clusters[cluster].client
        except KeyError:
            raise ClusterNotFound(cluster) from None

    def on_cluster_added(self, hook: ClusterHook) -> None:
        self._added_hooks.append(hook)
        for name in self._clusters:
            hook(self, name)

    def on_cluster_removed(self, hook: ClusterHook) -> None:
        self._removed_hooks.append(hook)

    def add_cluster(self, name: str, client: Client) -> None:
        if name in self._clusters:
            raise ValueError(f"cluster {name} is already managed")
        self._clusters[name] = _Cluster(client)
        log.info("%s: cluster %s added", self.name, name)
        for hook in self._added_hooks:
            hook(self, name)

    async def remove_cluster(self, name: str) -> None:
        """Stop the cluster's informers and close its client; hooks see it go."""
        cluster = self._clusters.pop(name, None)
        if cluster is None:
            return
        for task in cluster.tasks.values():
            task.cancel()
        await asyncio.gather(*cluster.tasks.values(), return_exceptions=True)
        for hook in self._removed_hooks:
            hook(self, name)
        await cluster.client.close()
        log.info("%s: cluster %s removed", self.name, name)

    # -- informers and controllers ---------------------------------------------------------

    def informer(
        self,
        cluster: str,
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        **options: Any,
    ) -> Informer:
        """The shared informer for this cluster/resource/scope, created on first use."""
        entry = self._clusters.get(cluster)
        if entry is None:
            raise ClusterNotFound(cluster)
        key: InformerKey = (str(resource), namespace, label_selector, field_selector)
        if key not in entry.informers:
            entry.informers[key] = Informer(
                entry.client,
                resource,
                namespace=namespace,
                label_selector=label_selector,
                field_selector=field_selector,
                **{"gate": self.gate, **options},
            )
            if self._running:
                self._start_informer(entry, key)
        return entry.informers[key]

    def add_controller(self, controller: Controller) -> None:
        self._controllers.append(controller)

    def _start_informer(self, entry: _Cluster, key: InformerKey) -> None:
        entry.tasks[key] = asyncio.create_task(entry.informers[key].run())

    # -- lifecycle -----------------------------------------------------------------------

    async def run(self) -> None:
        """Run until cancelled; with leader election, only while holding the lease."""
        if self.health:
            await self.health.start()
        try:
            if self._elector:
                await self._elector.run(self._lead)
            else:
                await self._lead()
        finally:
            await self._shutdown()

    async def _lead(self) -> None:
        self._running = True
        for entry in self._clusters.values():
            for key in entry.informers:
                if key not in entry.tasks:
                    self._start_informer(entry, key)
        await self.wait_for_sync(self._sync_timeout)
        self._synced = True
        await asyncio.gather(*(c.run() for c in self._controllers))

    async def wait_for_sync(self, timeout: float | None = None) -> bool:
        informers = [i for e in self._clusters.values() for i in e.informers.values()]
        results = await asyncio.gather(*(i.wait_for_sync(timeout) for i in informers))
        unsynced = [
            f"{i.cluster}/{i.resource}" for i, ok in zip(informers, results, strict=True) if not ok
        ]
        if unsynced:
            log.warning("%s: caches not synced after %ss: %s", self.name, timeout, unsynced)
        return not unsynced

    async def _shutdown(self) -> None:
        self._running = False
        await asyncio.gather(*(c.stop() for c in self._controllers), return_exceptions=True)
        for name in list(self._clusters):
            entry = self._clusters[name]
            for task in entry.tasks.values():
                task.cancel()
            await asyncio.gather(*entry.tasks.values(), return_exceptions=True)
            entry.tasks.clear()
        if self.health:
            await self.health.stop()

    async def close(self) -> None:
        """Close every cluster's client (after ``run`` returned)."""
        for entry in self._clusters.values():
            await entry.client.close()

    @property
    def is_leader(self) -> bool:
        return self._elector.is_leader if self._elector else self._running

    def _not_ready(self) -> list[str]:
        if self._elector and not self._elector.is_leader:
            return []  # a standby is ready: it serves health and waits for the lease
        if not self._synced:
            return [
                f"cache {i.cluster}/{i.resource} not synced"
                for e in self._clusters.values()
                for i in e.informers.values()
                if not i.has_synced
            ] or ["starting"]
        return []
