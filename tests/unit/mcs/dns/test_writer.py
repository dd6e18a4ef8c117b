"""The zone writer writes only when the records change, always with a larger SOA serial."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import dns.zone

from kosmos.api import names
from kosmos.kube.store import Store
from kosmos.mcs.dns.writer import ZoneWriter


def informer(*objects):
    store = Store()
    for obj in objects:
        store.upsert(obj)
    return SimpleNamespace(store=store)


def service_import(name, ip):
    return {
        "metadata": {"namespace": "default", "name": name},
        "spec": {"type": "ClusterSetIP", "ips": [ip], "ports": [{"port": 80}]},
    }


def serial(path: Path) -> int:
    zone = dns.zone.from_text(path.read_text(), origin=names.MCS_ZONE, relativize=False)
    return int(zone.find_rdataset(names.MCS_ZONE + ".", "SOA")[0].serial)


def test_writes_on_change_only_with_growing_serials(tmp_path: Path):
    imports = informer(service_import("a", "10.0.0.1"))
    clock = iter([100.0, 100.0, 100.0, 50.0])
    path = tmp_path / "zone.db"
    writer = ZoneWriter(imports, informer(), path, clock=lambda: next(clock))
    assert writer.flush()
    assert serial(path) == 100
    assert not writer.flush()  # nothing changed: no write, no serial
    imports.store.upsert(service_import("b", "10.0.0.2"))
    assert writer.flush()
    assert serial(path) == 101  # same second: previous + 1
    assert "b.default.svc.clusterset.local. 5 IN A 10.0.0.2" in path.read_text()
    imports.store.delete("default/b")
    assert writer.flush()
    assert serial(path) == 102  # a clock going back never lowers it
    assert [p.name for p in tmp_path.iterdir()] == ["zone.db"]  # no temporary file left
