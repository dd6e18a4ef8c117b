"""Kubernetes Events for the objects Kosmos acts on, aggregated like kubelet's recorder.

Repeats of the same (object, type, reason, message) bump ``count`` on one Event instead of
creating a new one each time, so a failing reconcile cannot flood etcd.
"""

from __future__ import annotations

import logging
import secrets
import socket
from collections import OrderedDict
from typing import Literal

from kosmos.api.objects import Obj, now
from kosmos.api.resources import EVENTS
from kosmos.kube.client import Client
from kosmos.kube.errors import KubeError, NotFound

log = logging.getLogger("kosmos.kube.events")
EventType = Literal["Normal", "Warning"]
_CACHE_SIZE = 4096


class EventRecorder:
    def __init__(self, client: Client, component: str, host: str | None = None) -> None:
        self.client = client
        self.component = component
        self.host = host or socket.gethostname()
        self._seen: OrderedDict[tuple[str, ...], tuple[str, str, int]] = OrderedDict()

    async def record(self, obj: Obj, type_: EventType, reason: str, message: str) -> None:
        """Record an Event about ``obj``; failures are logged, never raised."""
        meta = obj.get("metadata", {})
        namespace = meta.get("namespace") or "default"
        involved = {
            "apiVersion": obj.get("apiVersion", "v1"),
            "kind": obj.get("kind", ""),
            "name": meta.get("name", ""),
            "namespace": meta.get("namespace", ""),
            "uid": meta.get("uid", ""),
        }
        key = (involved["uid"] or involved["name"], involved["kind"], type_, reason, message)
        try:
            if key in self._seen and await self._bump(key):
                return
            await self._create(
                key,
                namespace=namespace,
                involved=involved,
                type_=type_,
                reason=reason,
                message=message,
            )
        except KubeError as exc:
            log.warning("recording event %s for %s failed: %s", reason, involved["name"], exc)

    async def _bump(self, key: tuple[str, ...]) -> bool:
        name, namespace, count = self._seen[key]
        try:
            await self.client.patch(
                EVENTS,
                name,
                {"count": count + 1, "lastTimestamp": now()},
                namespace=namespace,
            )
        except NotFound:  # expired (event TTL): start a new one
            del self._seen[key]
            return False
        self._seen[key] = (name, namespace, count + 1)
        self._seen.move_to_end(key)
        return True

    async def _create(
        self,
        key: tuple[str, ...],
        *,
        namespace: str,
        involved: dict[str, str],
        type_: EventType,
        reason: str,
        message: str,
    ) -> None:
        stamp = now()
        name = f"{involved['name'] or 'kosmos'}.{secrets.token_hex(8)}"
        await self.client.create(
            EVENTS,
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": name, "namespace": namespace},
                "involvedObject": involved,
                "type": type_,
                "reason": reason,
                "message": message[:1024],
                "source": {"component": self.component, "host": self.host},
                "reportingComponent": self.component,
                "reportingInstance": self.host,
                "firstTimestamp": stamp,
                "lastTimestamp": stamp,
                "count": 1,
            },
        )
        self._seen[key] = (name, namespace, 1)
        if len(self._seen) > _CACHE_SIZE:
            self._seen.popitem(last=False)
