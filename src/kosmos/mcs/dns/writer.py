"""Keep the ``clusterset.local`` zone file in step with the local cluster's imports and slices.

A controller with one request, the zone: every watch event enqueues it (the work queue folds
a burst into one pending request), and the reconcile waits ``debounce`` seconds first, so a
rollout's slice updates become one write. It renders from one snapshot of both caches and
writes only when the records changed, with a larger SOA serial so CoreDNS's ``file`` plugin
reloads it. The manager runs controllers only after every cache synced: a zone from half a
list would make names vanish and come back. A failed write is retried with backoff.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client import Counter, Gauge

from kosmos.api import names, resources
from kosmos.kube import builder
from kosmos.kube.builder import Watch
from kosmos.kube.controller import Request
from kosmos.kube.informer import Informer
from kosmos.kube.manager import Manager
from kosmos.kube.metrics import REGISTRY
from kosmos.mcs.dns import records, zone

__all__ = ["DEBOUNCE", "ZONE_REQUEST", "ZoneWriter"]

log = logging.getLogger("kosmos.mcs.dns")

DEBOUNCE = 0.1
#: the one request: the zone, whatever object changed
ZONE_REQUEST = Request("", "", "zone")

zone_records = Gauge(
    "kosmos_mcs_dns_records",
    "Records in the clusterset.local zone, by type.",
    ["type"],
    registry=REGISTRY,
)
zone_writes = Counter(
    "kosmos_mcs_dns_zone_writes_total",
    "Zone files written (each with a new SOA serial).",
    registry=REGISTRY,
)
skipped_names = Gauge(
    "kosmos_mcs_dns_skipped_names",
    "Names left out of the zone because a label is over 63 or the name over 253 characters.",
    registry=REGISTRY,
)


class ZoneWriter:
    """Renders the zone from two informers' caches into ``path`` whenever they change."""

    def __init__(
        self,
        imports: Informer,
        slices: Informer,
        path: Path,
        *,
        zone_name: str = names.MCS_ZONE,
        debounce: float = DEBOUNCE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.imports, self.slices = imports, slices
        self.path, self.zone_name, self.debounce, self.clock = path, zone_name, debounce, clock
        self.serial = 0
        self.current: list[records.Record] | None = None

    @classmethod
    def on_manager(cls, manager: Manager, cluster: str, path: Path, **options: Any) -> ZoneWriter:
        """A writer over ``cluster``'s ServiceImports and MCS EndpointSlices (all namespaces),
        run by ``manager`` as the controller ``mcs-dns-zone``."""
        imports = manager.informer(cluster, resources.SERVICE_IMPORTS)
        slices = manager.informer(
            cluster, resources.ENDPOINTSLICES, label_selector=names.LABEL_MCS_SERVICE_NAME
        )
        writer = cls(imports, slices, path, **options)
        controller = builder.controller(
            manager,
            "mcs-dns-zone",
            writer.reconcile,
            watches=[Watch(i, lambda _obj: (ZONE_REQUEST,)) for i in (imports, slices)],
        )
        controller.enqueue(ZONE_REQUEST)  # the first zone, even with no object at all
        return writer

    async def reconcile(self, _request: Request) -> None:
        """Let the burst settle, then write the zone if it changed (OSError: retried)."""
        await asyncio.sleep(self.debounce)
        self.flush()

    def flush(self) -> bool:
        """Render the caches now; write the zone if its records changed. True if written."""
        built = records.build(self.imports.store.list(), self.slices.store.list(), self.zone_name)
        if built.records == self.current and self.path.exists():
            return False
        self.serial = zone.next_serial(self.serial, self.clock())
        text = zone.render(built.records, self.zone_name, self.serial)
        zone.write_atomically(self.path, text)
        self.current = built.records
        self._observe(built)
        log.info(
            "zone %s serial %d: %d records%s",
            self.path,
            self.serial,
            len(built.records),
            f", skipped (name too long): {', '.join(built.skipped)}" if built.skipped else "",
        )
        return True

    def _observe(self, built: records.Records) -> None:
        zone_writes.inc()
        counts: dict[str, int] = dict.fromkeys(("A", "AAAA", "SRV", "TXT"), 0)
        for record in built.records:
            counts[record.type] = counts.get(record.type, 0) + 1
        for kind, count in counts.items():
            zone_records.labels(kind).set(count)
        skipped_names.set(len(built.skipped))
