"""When each pod of a run was first seen created, scheduled and Ready, by a watch per cluster.

The pod startup SLI is measured from the pod's ``creationTimestamp`` to the moment its Ready
condition turns true as a watch observes it. ``creationTimestamp`` has a resolution of one
second, so the time the watch first saw the pod (its ADDED event, milliseconds on this
machine's clock, the same clock the apiservers stamp with) is recorded too. Each cluster gets
one watch over all namespaces, narrowed by the run's label, so the recorder's own cost does
not grow with the number of namespaces.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime

from kosmos.api.resources import PODS
from kosmos.kube.client import Client
from kosmos.kube.errors import Gone, KubeError


@dataclass
class Seen:
    """One pod's times (seconds since the epoch); 0 for what was not seen yet."""

    created: float = 0.0  # creationTimestamp (1 s resolution)
    added: float = 0.0  # first watch event
    scheduled: float = 0.0  # first event with spec.nodeName
    ready: float = 0.0  # first event with condition Ready=True
    node: str = ""


def _stamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _ready(pod: dict[str, object]) -> bool:
    status = pod.get("status") or {}
    assert isinstance(status, dict)
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


@dataclass
class PodWatch:
    """Records ``Seen`` per ``namespace/name`` for the pods of one cluster with ``label``."""

    client: Client
    label: str
    pods: dict[str, Seen] = field(default_factory=dict)
    restarts: int = 0
    _task: asyncio.Task[None] | None = None

    def ready_count(self) -> int:
        return sum(1 for s in self.pods.values() if s.ready)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())
        await asyncio.sleep(0.5)  # the watch is open before the first create

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _record(self, pod: dict[str, object], now: float) -> None:
        meta = pod.get("metadata") or {}
        assert isinstance(meta, dict)
        key = f"{meta.get('namespace')}/{meta.get('name')}"
        seen = self.pods.get(key)
        if seen is None:
            seen = self.pods[key] = Seen(created=_stamp(meta["creationTimestamp"]), added=now)
        spec = pod.get("spec") or {}
        assert isinstance(spec, dict)
        if not seen.scheduled and spec.get("nodeName"):
            seen.scheduled, seen.node = now, spec["nodeName"]
        if not seen.ready and _ready(pod):
            seen.ready = now

    async def _run(self) -> None:
        version: str | None = None
        while True:
            try:
                async for event in self.client.watch(
                    PODS, label_selector=self.label, resource_version=version, timeout_seconds=600
                ):
                    now = time.time()
                    obj = event.get("object") or {}
                    version = (obj.get("metadata") or {}).get("resourceVersion") or version
                    if event.get("type") in ("ADDED", "MODIFIED"):
                        self._record(obj, now)
            except Gone:
                version = None
            except (KubeError, OSError):
                pass
            self.restarts += 1
            await asyncio.sleep(0.2)
