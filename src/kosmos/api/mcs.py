"""The upstream Multi-Cluster Services API (multicluster.x-k8s.io/v1alpha1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kosmos.api import names
from kosmos.api.common import IP_ITEM, Condition, conditions
from kosmos.api.schema import Embedded, KindInfo, PrinterColumn, kind, prop


@dataclass
class ServiceExportStatus:
    conditions: list[Condition] = conditions()


@kind(
    KindInfo(
        group=names.MCS_GROUP,
        version="v1alpha1",
        kind="ServiceExport",
        plural="serviceexports",
        singular="serviceexport",
        scope="Namespaced",
        short_names=("svcex",),
        description="Declares that the Service of the same name is exported to the clusterset.",
    )
)
@dataclass
class ServiceExport:
    status: ServiceExportStatus = prop()


@dataclass
class ServicePort:
    name: str = prop(max_length=63)
    protocol: Literal["TCP", "UDP", "SCTP"] = prop(default="TCP")
    app_protocol: str = prop(max_length=256)
    port: int = prop(required=True, minimum=1, maximum=65535)


@dataclass
class ServiceImportSpec:
    ips: list[str] = prop(max_items=1, items=IP_ITEM)
    ports: list[ServicePort] = prop(required=True, max_items=64, list_type="atomic")
    session_affinity: Literal["None", "ClientIP"] = prop()
    session_affinity_config: Embedded = prop(embedded=True)
    type: Literal["ClusterSetIP", "Headless"] = prop(required=True)


@dataclass
class ClusterStatus:
    cluster: str = prop(required=True)


@dataclass
class ServiceImportStatus:
    clusters: list[ClusterStatus] = prop(list_type="map", list_map_keys=["cluster"], max_items=256)


@kind(
    KindInfo(
        group=names.MCS_GROUP,
        version="v1alpha1",
        kind="ServiceImport",
        plural="serviceimports",
        singular="serviceimport",
        scope="Namespaced",
        short_names=("svcim",),
        printer_columns=(
            PrinterColumn("TYPE", ".spec.type"),
            PrinterColumn("IP", ".spec.ips"),
        ),
        description="A service imported from the clusterset.",
    )
)
@dataclass
class ServiceImport:
    spec: ServiceImportSpec = prop(required=True)
    status: ServiceImportStatus = prop()
