"""The endpoint prober's decisions, as pure functions (no sockets, no apiserver).

A ServiceImport lists every candidate endpoint address of its cluster in ``kosmos.io/address``;
the prober connects to each and keeps, per address, how many probes in a row failed. Hysteresis
keeps one lost SYN from pulling an endpoint: ``threshold`` consecutive failures mark it
disconnected, a single success marks it connected again (a reachable endpoint is what clients
need back as soon as possible). What is marked goes to ``kosmos.io/disconnected-address``, which
the MCS controller leaves out of that cluster's EndpointSlices; the prober writes it only when
its value changes, so a steady state costs no apiserver writes.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from kosmos.api import names
from kosmos.api.objects import Obj


@dataclass(frozen=True)
class Target:
    """What one ServiceImport asks to probe: its addresses on one TCP port."""

    namespace: str
    name: str
    port: int
    addresses: tuple[str, ...]


def split_addresses(text: str | None) -> tuple[str, ...]:
    """The comma-joined annotation value as valid IPs, sorted and without duplicates.

    Anything that is not an IP is skipped: a typo in one entry must not stop the others
    from being probed.
    """
    out = set()
    for item in (text or "").split(","):
        try:
            out.add(str(ipaddress.ip_address(item.strip())))
        except ValueError:
            continue
    return tuple(sorted(out))


def join_addresses(addresses: Iterable[str]) -> str:
    return ",".join(sorted(set(addresses)))


def first_tcp_port(service_import: Obj) -> int | None:
    """The import's first TCP port (protocol defaults to TCP), or None: nothing to connect to."""
    for port in (service_import.get("spec") or {}).get("ports") or []:
        if (port.get("protocol") or "TCP") == "TCP" and isinstance(port.get("port"), int):
            return int(port["port"])
    return None


def target(service_import: Obj) -> Target | None:
    """What to probe for this import; None when it has no TCP port or no address."""
    meta = service_import["metadata"]
    port = first_tcp_port(service_import)
    addresses = split_addresses((meta.get("annotations") or {}).get(names.ANNOTATION_ADDRESS))
    if port is None or not addresses:
        return None
    return Target(meta.get("namespace") or "", meta["name"], port, addresses)


def inputs(service_import: Obj) -> tuple[object, ...]:
    """What a probe depends on: an update that leaves these alone needs no early probe."""
    annotations = service_import["metadata"].get("annotations") or {}
    ports = (service_import.get("spec") or {}).get("ports")
    return (repr(ports), annotations.get(names.ANNOTATION_ADDRESS))


def current_disconnected(service_import: Obj) -> str | None:
    """The annotation as written now (None when absent)."""
    annotations = service_import["metadata"].get("annotations") or {}
    value = annotations.get(names.ANNOTATION_DISCONNECTED)
    return None if value is None else str(value)


@dataclass
class Hysteresis:
    """Consecutive failures per address of one import."""

    threshold: int
    failures: dict[str, int] = field(default_factory=dict)

    @classmethod
    def resumed(cls, threshold: int, annotated: str | None) -> Hysteresis:
        """State that keeps what an earlier prober marked (a restart must not flap them back
        into the slices before they answer once)."""
        return cls(threshold, dict.fromkeys(split_addresses(annotated), threshold))

    def record(self, results: Mapping[str, bool]) -> None:
        """One probe round (address -> reachable); addresses no longer probed are forgotten."""
        self.failures = {
            address: 0 if ok else min(self.failures.get(address, 0) + 1, self.threshold)
            for address, ok in results.items()
        }

    def disconnected(self) -> tuple[str, ...]:
        return tuple(sorted(a for a, n in self.failures.items() if n >= self.threshold))


def annotation_patch(current: str | None, disconnected: Iterable[str]) -> Obj | None:
    """The merge patch that makes the annotation say ``disconnected``; None if it already does.

    An empty set removes the annotation rather than writing an empty string.
    """
    value = join_addresses(disconnected) or None
    if value == current:
        return None
    return {"metadata": {"annotations": {names.ANNOTATION_DISCONNECTED: value}}}
