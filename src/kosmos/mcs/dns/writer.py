"""Keep the ``clusterset.local`` zone file in step with the local cluster's imports and slices.

Every watch event only marks the zone dirty; one task renders it at most every ``debounce``
seconds (a burst of slice updates for one rollout becomes one write), from one snapshot of
both caches, and writes it only when the records changed, with a larger SOA serial so
CoreDNS's ``file`` plugin reloads it. Nothing is written before both caches synced: a zone
from half a list would make names vanish and come back.
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
from kosmos.kube.informer import ChangeHandler, Informer
from kosmos.kube.manager import Manager
from kosmos.kube.metrics import REGISTRY
from kosmos.mcs.dns import records, zone

__all__ = ["DEBOUNCE", "ZoneWriter"]

log = logging.getLogger("kosmos.mcs.dns")

DEBOUNCE = 0.1

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
        self._dirty = asyncio.Event()
        for informer in (imports, slices):
            informer.add_handler(ChangeHandler(self._changed))

    @classmethod
    def on_manager(cls, manager: Manager, cluster: str, path: Path, **options: Any) -> ZoneWriter:
        """A writer over ``cluster``'s ServiceImports and MCS EndpointSlices (all namespaces)."""
        imports = manager.informer(cluster, resources.SERVICE_IMPORTS)
        slices = manager.informer(
            cluster, resources.ENDPOINTSLICES, label_selector=names.LABEL_MCS_SERVICE_NAME
        )
        return cls(imports, slices, path, **options)

    def _changed(self, _old: object, _new: object) -> None:
        self._dirty.set()

    async def run(self) -> None:
        """Write once both caches synced, then after every burst of changes; until cancelled."""
        await asyncio.gather(self.imports.wait_for_sync(), self.slices.wait_for_sync())
        self._dirty.set()
        while True:
            await self._dirty.wait()
            await asyncio.sleep(self.debounce)
            self._dirty.clear()
            try:
                self.flush()
            except OSError as exc:
                log.error("cannot write zone %s: %s; retrying", self.path, exc)
                await asyncio.sleep(1.0)
                self._dirty.set()

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
