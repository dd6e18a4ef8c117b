"""The records of the ``clusterset.local`` zone, from ServiceImports and their EndpointSlices.

Pure: the MCS DNS specification (schema 1.0.0) applied to one snapshot of the local cluster's
ServiceImports and the EndpointSlices labelled ``multicluster.kubernetes.io/service-name``.

- ``dns-version.<zone> TXT "1.0.0"``;
- ClusterSetIP: ``<svc>.<ns>.svc.<zone>`` A/AAAA per clusterset IP (``spec.ips``); SRV per
  named port at ``_<port>._<proto>.<svc>...`` pointing at the service name;
- Headless: ``<svc>.<ns>.svc.<zone>`` A/AAAA per address of every ready endpoint (all of them:
  A and AAAA are the same subset by construction), no name at all without a ready endpoint;
  ``<hostname>.<clusterid>.<svc>.<ns>.svc.<zone>`` per endpoint (its ``hostname``, else its
  first address with ``.``/``:`` turned into ``-``, as CoreDNS names endpoints); SRV per
  endpoint and named port to that name;
- both: SRV at the bare service name too (conformance queries it), identical answers merged;
- never ``<clusterid>.<svc>.<ns>.svc.<zone>`` as a name of its own (reserved by the spec).

A name with a label over 63 characters or over 253 in all cannot be served: it is left out
and reported in :attr:`Records.skipped`, never truncated into another name.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kosmos.api import names

__all__ = [
    "DNS_VERSION",
    "Record",
    "Records",
    "build",
    "endpoint_hostname",
    "valid_name",
]

Obj = Mapping[str, Any]
DNS_VERSION = "1.0.0"
SRV_PRIORITY = 0
SRV_WEIGHT = 10
MAX_LABEL = 63
MAX_NAME = 253


@dataclass(frozen=True, order=True)
class Record:
    """One resource record: owner name (absolute, lowercase, no trailing dot), type, rdata.

    SRV rdata is ``(priority, weight, port, target)`` in RFC 2782 wire order; TXT rdata the
    bare string; A/AAAA the address in its canonical text form.
    """

    name: str
    type: str
    data: str


@dataclass
class Records:
    """The zone's records, sorted and unique, plus the names that could not be served."""

    records: list[Record]
    skipped: list[str] = field(default_factory=list)


def valid_name(name: str) -> bool:
    """Every label 1..63 characters, the whole name at most 253."""
    labels = name.split(".")
    return len(name) <= MAX_NAME and all(0 < len(label) <= MAX_LABEL for label in labels)


def endpoint_hostname(endpoint: Obj) -> str:
    """The endpoint's ``hostname``, else its first address with ``.`` and ``:`` as ``-``."""
    hostname = endpoint.get("hostname")
    if hostname:
        return str(hostname).lower()
    address = str((endpoint.get("addresses") or [""])[0])
    return address.replace(".", "-").replace(":", "-").lower()


def build(imports: Iterable[Obj], slices: Iterable[Obj], zone: str = names.MCS_ZONE) -> Records:
    """Every record of ``zone`` for these ServiceImports and EndpointSlices."""
    by_service: dict[tuple[str, str], list[Obj]] = {}
    for eps in slices:
        meta = eps.get("metadata") or {}
        service = (meta.get("labels") or {}).get(names.LABEL_MCS_SERVICE_NAME)
        if service:
            by_service.setdefault((meta.get("namespace", ""), service), []).append(eps)
    out: set[Record] = {Record(f"dns-version.{zone}", "TXT", DNS_VERSION)}
    skipped: set[str] = set()
    for imp in imports:
        meta = imp.get("metadata") or {}
        ns, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
        base = f"{name}.{ns}.svc.{zone}".lower()
        spec = imp.get("spec") or {}
        if spec.get("type") == "Headless":
            records = _headless(base, spec, by_service.get((ns, name), []))
        else:
            records = _cluster_set_ip(base, spec)
        for record in records:
            targets_ok = record.type != "SRV" or valid_name(record.data.rsplit(" ", 1)[1])
            if valid_name(record.name) and targets_ok:
                out.add(record)
            else:
                skipped.add(record.name)
    return Records(sorted(out), sorted(skipped))


def _cluster_set_ip(base: str, spec: Obj) -> list[Record]:
    records = [r for ip in spec.get("ips") or [] if (r := _address(base, ip)) is not None]
    if not records:
        return []
    for port in spec.get("ports") or []:
        records += _srv(base, port, int(port.get("port", 0)), base)
    return records


def _headless(base: str, spec: Obj, slices: list[Obj]) -> list[Record]:
    """Per ready endpoint: its addresses under the service name and under its own name."""
    records: list[Record] = []
    import_ports = {str(p.get("name") or ""): p for p in spec.get("ports") or []}
    for eps in slices:
        cluster = str(
            ((eps.get("metadata") or {}).get("labels") or {}).get(
                names.LABEL_MCS_SOURCE_CLUSTER, ""
            )
        ).lower()
        if not cluster:
            continue
        ports = _slice_ports(eps, import_ports)
        for endpoint in eps.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready") is False:
                continue
            addresses = [_address(base, a) for a in endpoint.get("addresses") or []]
            own = [r for r in addresses if r is not None]
            if not own:
                continue
            target = f"{endpoint_hostname(endpoint)}.{cluster}.{base}"
            records += own
            records += [Record(target, r.type, r.data) for r in own]
            for port, number in ports:
                records += _srv(base, port, number, target)
    return records


def _slice_ports(eps: Obj, import_ports: Mapping[str, Obj]) -> list[tuple[Obj, int]]:
    """The slice's ports the import knows (by name), with the endpoint port number."""
    known: list[tuple[Obj, int]] = []
    for port in eps.get("ports") or []:
        name = str(port.get("name") or "")
        if name in import_ports and port.get("port"):
            merged = {**import_ports[name], "protocol": port.get("protocol") or "TCP"}
            known.append((merged, int(port["port"])))
    return known


def _srv(base: str, port: Obj, number: int, target: str) -> list[Record]:
    """SRV at ``_<port>._<proto>.<base>`` for a named port, and at the bare name for any."""
    if not 0 < number < 65536:
        return []
    data = f"{SRV_PRIORITY} {SRV_WEIGHT} {number} {target}"
    records = [Record(base, "SRV", data)]
    name = str(port.get("name") or "").lower()
    if name:
        proto = str(port.get("protocol") or "TCP").lower()
        records.append(Record(f"_{name}._{proto}.{base}", "SRV", data))
    return records


def _address(name: str, text: Any) -> Record | None:
    """An A or AAAA record for a valid address; anything else is no record at all."""
    try:
        address = ipaddress.ip_address(str(text))
    except ValueError:
        return None
    return Record(name, "A" if address.version == 4 else "AAAA", str(address))
