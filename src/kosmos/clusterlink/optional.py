"""Informers for resources a member may or may not serve, started and stopped with their CRD.

The manager's shared informers live as long as their cluster, and an informer on a resource
that is not served retries forever. Calico's IPPools and BlockAffinities exist only where
Calico is installed, and a CRD can be installed or removed at any time, so these informers
are owned here: started when the CRD becomes Established, cancelled when it goes away or
the member leaves.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from kosmos.api.resources import Resource
from kosmos.kube.client import Client
from kosmos.kube.informer import EventHandler, Informer

log = logging.getLogger("kosmos.clusterlink.optional")

Key = tuple[str, str]  # (cluster, plural)


class OptionalInformers:
    def __init__(self) -> None:
        self._running: dict[Key, tuple[Informer, asyncio.Task[None]]] = {}

    def get(self, cluster: str, plural: str) -> Informer | None:
        entry = self._running.get((cluster, plural))
        return entry[0] if entry else None

    def ensure(
        self,
        client: Client,
        resource: Resource,
        handler: EventHandler,
        **options: Any,
    ) -> bool:
        """Start the informer unless it runs; True if it was started now."""
        key = (client.cluster, resource.plural)
        if key in self._running:
            return False
        informer = Informer(client, resource, **options)
        informer.add_handler(handler)
        task = asyncio.create_task(informer.run(), name=f"informer-{key[0]}-{key[1]}")
        self._running[key] = (informer, task)
        log.info("%s: watching %s", client.cluster, resource)
        return True

    def stop(self, cluster: str, plural: str) -> bool:
        """Cancel the informer; True if one was running."""
        entry = self._running.pop((cluster, plural), None)
        if entry is None:
            return False
        entry[1].cancel()
        log.info("%s: stopped watching %s", cluster, plural)
        return True

    def stop_cluster(self, cluster: str) -> None:
        for key in [k for k in self._running if k[0] == cluster]:
            self.stop(*key)

    def stop_all(self) -> None:
        for key in list(self._running):
            self.stop(*key)
