"""List+watch reflector feeding an indexed cache and key-enqueuing handlers.

Guarantees: after ``wait_for_sync`` the cache holds a consistent LIST; every change after it
reaches the handlers as add/update/delete, including across dropped connections (resume from
the last resourceVersion, bookmarks keep it fresh), apiserver restarts and compaction (410
Gone -> relist and diff against the cache, emitting deletes for what vanished meanwhile).
A stream that goes silent past ``stall_timeout`` is torn down and re-opened.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import Any, Protocol

from kosmos.api.objects import Obj
from kosmos.api.resources import Resource
from kosmos.kube import metrics
from kosmos.kube.client import Client
from kosmos.kube.errors import ApiError, ConnectError, Gone
from kosmos.kube.gate import Gate
from kosmos.kube.store import IndexFunc, Store, object_key

log = logging.getLogger("kosmos.kube.informer")

Transform = Callable[[Obj], Obj]
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
#: Events handled between two yields to the event loop during a burst.
YIELD_EVERY = 4


def strip_bulk(obj: Obj) -> Obj:
    """Default transform: drop what no controller reads but every object carries."""
    meta = obj.get("metadata")
    if meta:
        meta.pop("managedFields", None)
        annotations = meta.get("annotations")
        if annotations and LAST_APPLIED in annotations:
            del annotations[LAST_APPLIED]
    return obj


class EventHandler(Protocol):
    """Handlers must be quick and never block: enqueue keys, do the work in reconcile."""

    def on_add(self, obj: Obj) -> None: ...
    def on_update(self, old: Obj, new: Obj) -> None: ...
    def on_delete(self, obj: Obj) -> None: ...


class EnqueueHandler:
    """Adapts a single ``enqueue(obj)`` callback to add, update (new object) and delete."""

    def __init__(self, enqueue: Callable[[Obj], None]) -> None:
        self._enqueue = enqueue

    def on_add(self, obj: Obj) -> None:
        self._enqueue(obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        self._enqueue(new)

    def on_delete(self, obj: Obj) -> None:
        self._enqueue(obj)


class ChangeHandler:
    """Adapts one ``changed(old, new)`` callback to add (old None), update and delete (new
    None), for handlers that compare what an event changed before they enqueue."""

    def __init__(self, changed: Callable[[Obj | None, Obj | None], None]) -> None:
        self._changed = changed

    def on_add(self, obj: Obj) -> None:
        self._changed(None, obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        self._changed(old, new)

    def on_delete(self, obj: Obj) -> None:
        self._changed(obj, None)


class UpsertHandler:
    """Adapts ``upsert(obj)`` (add, and update with the new object) and ``delete(obj)``, for
    state derived per object that follows its latest version and forgets it when it goes."""

    def __init__(self, upsert: Callable[[Obj], None], delete: Callable[[Obj], None]) -> None:
        self._upsert = upsert
        self._delete = delete

    def on_add(self, obj: Obj) -> None:
        self._upsert(obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        self._upsert(new)

    def on_delete(self, obj: Obj) -> None:
        self._delete(obj)


class Informer:
    """Keeps ``store`` in step with one resource (optionally one namespace/selector)."""

    def __init__(
        self,
        client: Client,
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        transform: Transform | None = strip_bulk,
        indexers: dict[str, IndexFunc] | None = None,
        page_size: int = 500,
        watch_timeout: int = 300,
        stall_timeout: float | None = None,
        backoff_cap: float = 30.0,
        gate: Gate | None = None,
    ) -> None:
        self.client = client
        self.resource = resource
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.transform = transform
        self.store = Store(indexers)
        self.page_size = page_size
        self.watch_timeout = watch_timeout
        self.stall_timeout = stall_timeout
        self.backoff_cap = backoff_cap
        self.gate = gate
        self.resource_version = ""
        self._handlers: list[EventHandler] = []
        self._synced = asyncio.Event()
        self._labels = (client.cluster, str(resource))

    @property
    def cluster(self) -> str:
        return self.client.cluster

    @property
    def has_synced(self) -> bool:
        return self._synced.is_set()

    def add_handler(self, handler: EventHandler) -> None:
        """Register a handler; it first receives an add for every object already cached."""
        self._handlers.append(handler)
        for obj in self.store.list():
            self._call(handler.on_add, obj)

    async def wait_for_sync(self, timeout: float | None = None) -> bool:
        try:
            await asyncio.wait_for(self._synced.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def run(self) -> None:
        """List, then watch forever; returns only when cancelled."""
        failures = 0
        while True:
            try:
                if not self.resource_version:
                    await self._relist()
                await self._watch()
                failures = 0
            except Gone as exc:
                log.info("%s %s: %s; relisting", *self._labels, exc.api_message)
                metrics.watch_relists.labels(*self._labels).inc()
                self.resource_version = ""
            except (ConnectError, ApiError) as exc:
                failures += 1
                delay = random.uniform(0, min(self.backoff_cap, 0.5 * 2**failures))
                log.warning("%s; retrying in %.1fs", exc, delay)
                metrics.watch_restarts.labels(*self._labels).inc()
                await asyncio.sleep(delay)

    async def _relist(self) -> None:
        fresh: dict[str, Obj] = {}
        version = ""
        async for page in self.client.list_pages(
            self.resource,
            self.namespace,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            limit=self.page_size,
        ):
            for item in page.items:
                obj = self.transform(item) if self.transform else item
                fresh[object_key(obj)] = obj
            version = page.resource_version
        self._replace(fresh)
        self.resource_version = version
        self._synced.set()

    def _replace(self, fresh: dict[str, Obj]) -> None:
        """Apply a full list: deletes for vanished keys, adds and real updates for the rest."""
        for key in self.store.keys():
            if key not in fresh:
                old = self.store.delete(key)
                if old is not None:
                    self._dispatch("delete", None, old)
        for obj in fresh.values():
            old = self.store.upsert(obj)
            if old is None:
                self._dispatch("add", None, obj)
            elif _version(old) != _version(obj):
                self._dispatch("update", old, obj)
        metrics.cache_objects.labels(*self._labels).set(len(self.store))

    async def _watch(self) -> None:
        handled = 0
        async for event in self.client.watch(
            self.resource,
            namespace=self.namespace,
            resource_version=self.resource_version,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            timeout_seconds=self.watch_timeout,
            stall_timeout=self.stall_timeout,
        ):
            kind, obj = event["type"], event["object"]
            metrics.watch_events.labels(*self._labels, kind).inc()
            self.resource_version = _version(obj) or self.resource_version
            if kind == "BOOKMARK":
                continue
            if self.transform:
                obj = self.transform(obj)
            if kind == "DELETED":
                self.store.delete(object_key(obj))
                self._dispatch("delete", None, obj)
            else:
                old = self.store.upsert(obj)
                self._dispatch("add" if old is None else "update", old, obj)
            metrics.cache_objects.labels(*self._labels).set(len(self.store))
            handled += 1
            if handled % YIELD_EVERY == 0:
                # One read can hold hundreds of events, and handling them never suspends:
                # let request handlers sharing the loop (an extender's) run in between.
                await asyncio.sleep(0)
                if self.gate is not None:
                    await self.gate.pause()

    def _dispatch(self, kind: str, old: Obj | None, obj: Obj) -> None:
        for handler in self._handlers:
            if kind == "add":
                self._call(handler.on_add, obj)
            elif kind == "update" and old is not None:
                self._call(handler.on_update, old, obj)
            else:
                self._call(handler.on_delete, obj)

    def _call(self, func: Callable[..., None], *args: Any) -> None:
        try:
            func(*args)
        except Exception:  # a broken handler must not stop the cache
            log.exception("%s %s: event handler failed", *self._labels)


def _version(obj: Obj) -> str:
    return str(obj.get("metadata", {}).get("resourceVersion", ""))
