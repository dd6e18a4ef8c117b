"""The upstream Multi-Cluster Services API (``multicluster.x-k8s.io``, sigs.k8s.io/mcs-api v0.5.0).

``v1beta1`` is the storage version and ``v1alpha1`` (the seed tutorial's manifests) is served
with the identical schema, as the upstream CRDs do, so either spelling reads and writes the
same objects. ServiceImport keeps its service properties under ``spec``, as in both upstream
versions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kosmos.api import names
from kosmos.api.common import IP_ITEM, Condition, conditions
from kosmos.api.schema import Embedded, KindInfo, PrinterColumn, kind, prop

#: the upstream release whose schema these models follow (a label on the CRDs, as upstream)
RELEASE = "v0.5.0"
_CRD_LABELS = ((f"{names.MCS_GROUP}/release-version", RELEASE),)


@dataclass
class ServiceExportSpec:
    exported_labels: dict[str, str] = prop(
        description="Labels put on the ServiceImport (never copied from the Service)."
    )
    exported_annotations: dict[str, str] = prop(
        description="Annotations put on the ServiceImport (never copied from the Service)."
    )


@dataclass
class ServiceExportStatus:
    conditions: list[Condition] = conditions()


@kind(
    KindInfo(
        group=names.MCS_GROUP,
        version="v1beta1",
        served_versions=("v1alpha1",),
        kind="ServiceExport",
        plural="serviceexports",
        singular="serviceexport",
        scope="Namespaced",
        short_names=("svcex", "svcexport"),
        description="Declares that the Service of the same name is exported to the clusterset.",
        crd_labels=_CRD_LABELS,
    )
)
@dataclass
class ServiceExport:
    spec: ServiceExportSpec = prop()
    status: ServiceExportStatus = prop()


@dataclass
class ServicePort:
    name: str = prop(max_length=63)
    protocol: Literal["TCP", "UDP", "SCTP"] = prop(default="TCP")
    app_protocol: str = prop(max_length=256)
    port: int = prop(required=True, minimum=1, maximum=65535)


@dataclass
class ServiceImportSpec:
    ips: list[str] = prop(max_items=2, items=IP_ITEM)
    ip_families: list[Literal["IPv4", "IPv6"]] = prop(max_items=2, list_type="atomic")
    ports: list[ServicePort] = prop(required=True, max_items=64, list_type="atomic")
    session_affinity: Literal["None", "ClientIP"] = prop()
    session_affinity_config: Embedded = prop(embedded=True)
    internal_traffic_policy: Literal["Cluster", "Local"] = prop()
    traffic_distribution: str = prop(max_length=256)
    type: Literal["ClusterSetIP", "Headless"] = prop(required=True)


@dataclass
class ClusterStatus:
    cluster: str = prop(required=True)


@dataclass
class ServiceImportStatus:
    clusters: list[ClusterStatus] = prop(list_type="map", list_map_keys=["cluster"], max_items=256)
    conditions: list[Condition] = conditions()


@kind(
    KindInfo(
        group=names.MCS_GROUP,
        version="v1beta1",
        served_versions=("v1alpha1",),
        kind="ServiceImport",
        plural="serviceimports",
        singular="serviceimport",
        scope="Namespaced",
        short_names=("svcim", "svcimport"),
        printer_columns=(
            PrinterColumn("TYPE", ".spec.type"),
            PrinterColumn("IP", ".spec.ips"),
        ),
        description="A service imported from the clusterset.",
        crd_labels=_CRD_LABELS,
    )
)
@dataclass
class ServiceImport:
    spec: ServiceImportSpec = prop(required=True)
    status: ServiceImportStatus = prop()
