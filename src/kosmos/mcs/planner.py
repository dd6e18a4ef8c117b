"""What one exported service ``<ns>/<name>`` is across the clusterset: a pure merge.

Every cluster's ServiceExport of the name, with the Service next to it, goes in; out comes
the import spec (type, merged ports, session affinity, IP families) and each export's
verdict (``Valid``, ``Conflict``). The rules are the MCS API's (KEP-1645): the oldest export
(creationTimestamp; ties by cluster id, because timestamps have one-second resolution)
defines every service-wide property; ports are the union of all exports, merged by name
and then by (protocol, port), a clash keeping the older port; any disagreement is a
``Conflict`` set on *all* exports of the service, naming the field, the clusters and the
winner. Invalid exports (no Service, ExternalName, an unusable cluster id) take no part.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kosmos.api.objects import Obj

#: a label value (the source-cluster label, a DNS label) holds at most this many characters
MAX_CLUSTER_ID = 63


@dataclass(frozen=True)
class Port:
    """A port of the import (what clients use): no targetPort, no nodePort."""

    name: str
    protocol: str
    port: int
    app_protocol: str = ""

    def body(self) -> Obj:
        out: Obj = {"name": self.name, "protocol": self.protocol, "port": self.port}
        if self.app_protocol:
            out["appProtocol"] = self.app_protocol
        return out


@dataclass(frozen=True)
class Member:
    """One cluster's export of the service and its Service (None: missing)."""

    cluster: str
    export: Obj
    service: Obj | None


@dataclass(frozen=True)
class Verdict:
    """One export's conditions: why it is (in)valid, and the service-wide conflicts."""

    valid: bool
    reason: str
    message: str
    conflicts: tuple[str, ...] = ()
    conflict_message: str = ""


@dataclass(frozen=True)
class ImportSpec:
    type: str  # ClusterSetIP | Headless
    ports: tuple[Port, ...]
    ip_families: tuple[str, ...]
    session_affinity: str = "None"
    session_affinity_config: Obj | None = None
    internal_traffic_policy: str = ""
    traffic_distribution: str = ""
    #: exporting cluster ids that take part, sorted
    clusters: tuple[str, ...] = ()
    #: per exporting cluster: the names of its ports the import carries
    accepted: dict[str, frozenset[str]] = field(default_factory=dict)
    #: the oldest export's ``spec.exportedLabels``/``exportedAnnotations`` (for the import;
    #: never the Service's or the export's own metadata)
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)

    def body(self) -> Obj:
        """``spec`` of a ServiceImport (without ``ips``, which are per importing cluster)."""
        out: Obj = {
            "type": self.type,
            "ports": [p.body() for p in self.ports],
            "ipFamilies": list(self.ip_families),
            "sessionAffinity": self.session_affinity,
        }
        if self.session_affinity_config:
            out["sessionAffinityConfig"] = self.session_affinity_config
        if self.internal_traffic_policy:
            out["internalTrafficPolicy"] = self.internal_traffic_policy
        if self.traffic_distribution:
            out["trafficDistribution"] = self.traffic_distribution
        return out


@dataclass(frozen=True)
class Plan:
    spec: ImportSpec | None  # None: no valid export, nothing is imported
    verdicts: dict[str, Verdict]


def is_live(export: Obj) -> bool:
    return not export.get("metadata", {}).get("deletionTimestamp")


def validate(member: Member) -> Verdict:
    """Whether the export can take part, and if not the reason the ``Valid`` condition gives."""
    if len(member.cluster) > MAX_CLUSTER_ID or not member.cluster:
        return Verdict(
            False,
            "InvalidClusterID",
            f"cluster id {member.cluster!r} is longer than {MAX_CLUSTER_ID} characters: it "
            "cannot be the source-cluster label of imported EndpointSlices",
        )
    service = member.service
    if service is None:
        return Verdict(False, "NoService", "no Service of this name in this namespace")
    spec = service.get("spec") or {}
    if spec.get("type") == "ExternalName":
        return Verdict(
            False, "InvalidServiceType", "a Service of type ExternalName cannot be exported"
        )
    if not _service_ports(member):
        return Verdict(False, "NoPorts", "the Service has no port with a valid number")
    return Verdict(True, "Valid", "the export is valid")


def age_key(member: Member) -> tuple[str, str]:
    """Oldest first: creationTimestamp (RFC 3339, sorts as text), then cluster id."""
    return (member.export.get("metadata", {}).get("creationTimestamp") or "~", member.cluster)


def plan(members: Iterable[Member]) -> Plan:
    """Merge every cluster's export of one service (exports being deleted are left out)."""
    live = sorted((m for m in members if is_live(m.export)), key=age_key)
    verdicts = {m.cluster: validate(m) for m in live}
    valid = [m for m in live if verdicts[m.cluster].valid]
    if not valid:
        return Plan(None, verdicts)
    spec, conflicts = _merge(valid)
    if conflicts:
        reasons = tuple(reason for reason, _ in conflicts)
        message = "; ".join(text for _, text in conflicts)
        for m in valid:
            verdicts[m.cluster] = Verdict(True, "Valid", "the export is valid", reasons, message)
    return Plan(spec, verdicts)


# -- merging ---------------------------------------------------------------------------------

Conflict = tuple[str, str]  # (reason, message)


def _merge(valid: Sequence[Member]) -> tuple[ImportSpec, list[Conflict]]:
    winner = valid[0]
    conflicts: list[Conflict] = []
    properties: list[tuple[str, str, Callable[[Member], Any]]] = [
        ("TypeConflict", "type", _import_type),
        ("SessionAffinityConflict", "sessionAffinity", _affinity),
        ("SessionAffinityConfigConflict", "sessionAffinityConfig", _affinity_config),
        ("IPFamilyConflict", "ipFamilies", _families),
        ("InternalTrafficPolicyConflict", "internalTrafficPolicy", _traffic_policy),
        ("TrafficDistributionConflict", "trafficDistribution", _distribution),
        ("LabelsConflict", "exportedLabels", lambda m: _export_spec(m, "exportedLabels")),
        (
            "AnnotationsConflict",
            "exportedAnnotations",
            lambda m: _export_spec(m, "exportedAnnotations"),
        ),
    ]
    for reason, name, read in properties:
        disagree = _disagreeing(valid, read)
        if disagree:
            conflicts.append((reason, _conflict_text(name, valid, disagree)))
    ports, accepted, port_conflict = _merge_ports(valid)
    if port_conflict:
        conflicts.insert(0, ("PortConflict", _conflict_text("ports", valid, port_conflict)))
    spec = ImportSpec(
        type=_import_type(winner),
        ports=tuple(ports),
        ip_families=_families(winner),
        session_affinity=_affinity(winner),
        session_affinity_config=_affinity_config(winner),
        internal_traffic_policy=_traffic_policy(winner),
        traffic_distribution=_distribution(winner),
        clusters=tuple(sorted(m.cluster for m in valid)),
        accepted=accepted,
        labels={str(k): str(v) for k, v in _export_spec(winner, "exportedLabels").items()},
        annotations={
            str(k): str(v) for k, v in _export_spec(winner, "exportedAnnotations").items()
        },
    )
    return spec, conflicts


def _disagreeing(valid: Sequence[Member], read: Callable[[Member], Any]) -> list[str]:
    """Clusters whose value differs from the oldest export's ([] when all agree)."""
    first = read(valid[0])
    return [m.cluster for m in valid[1:] if read(m) != first]


def _conflict_text(name: str, valid: Sequence[Member], disagree: list[str]) -> str:
    winner = valid[0].cluster
    clusters = ", ".join(sorted({winner, *disagree}))
    count = f"{len(disagree)}/{len(valid)}"
    return (
        f"{name}: clusters {clusters} disagree ({count} differ from the oldest export); "
        f"cluster {winner}'s export (the oldest) wins"
    )


def _merge_ports(
    valid: Sequence[Member],
) -> tuple[list[Port], dict[str, frozenset[str]], list[str]]:
    """The union, oldest first: by name, then by (protocol, port); a clash keeps the older.

    Returns the ports, each cluster's accepted port names, and the clusters whose port set
    differs from the oldest export's or who lost a clash (both are a ``PortConflict``).
    """
    merged: list[Port] = []
    by_name: dict[str, Port] = {}
    by_number: dict[tuple[str, int], Port] = {}
    accepted: dict[str, frozenset[str]] = {}
    differing: set[str] = set()
    first = set(_service_ports(valid[0]))
    for member in valid:
        ports = _service_ports(member)
        if set(ports) != first:
            differing.add(member.cluster)
        kept: set[str] = set()
        for port in ports:
            same = by_name.get(port.name)
            other = by_number.get((port.protocol, port.port))
            if same is None and other is None:
                merged.append(port)
                by_name[port.name] = by_number[(port.protocol, port.port)] = port
                kept.add(port.name)
            elif same == port:
                kept.add(port.name)
            else:
                differing.add(member.cluster)
        accepted[member.cluster] = frozenset(kept)
    return merged, accepted, sorted(differing)


# -- reading a Service -------------------------------------------------------------------------


def _service_ports(member: Member) -> list[Port]:
    spec = (member.service or {}).get("spec") or {}
    out = []
    for raw in spec.get("ports") or []:
        number = raw.get("port")
        if not isinstance(number, int) or not 0 < number < 65536:
            continue
        out.append(
            Port(
                name=str(raw.get("name") or ""),
                protocol=str(raw.get("protocol") or "TCP"),
                port=number,
                app_protocol=str(raw.get("appProtocol") or ""),
            )
        )
    return out


def _spec(member: Member) -> Obj:
    return (member.service or {}).get("spec") or {}


def _import_type(member: Member) -> str:
    return "Headless" if _spec(member).get("clusterIP") == "None" else "ClusterSetIP"


def _affinity(member: Member) -> str:
    return str(_spec(member).get("sessionAffinity") or "None")


def _affinity_config(member: Member) -> Obj | None:
    if _affinity(member) != "ClientIP":
        return None
    config: Obj | None = _spec(member).get("sessionAffinityConfig")
    return config or None


def _families(member: Member) -> tuple[str, ...]:
    return tuple(_spec(member).get("ipFamilies") or ("IPv4",))


def _traffic_policy(member: Member) -> str:
    return str(_spec(member).get("internalTrafficPolicy") or "")


def _distribution(member: Member) -> str:
    return str(_spec(member).get("trafficDistribution") or "")


def _export_spec(member: Member, key: str) -> Obj:
    value: Obj = (member.export.get("spec") or {}).get(key) or {}
    return value
