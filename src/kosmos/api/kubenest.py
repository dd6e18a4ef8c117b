"""kubenest: VirtualCluster (a tenant control plane hosted in the host cluster) and GlobalNode
(a host node in the pool that virtual clusters borrow whole nodes from).

Fields no controller acts on yet (pluginSet, promoteResources.resources) are kept so
existing manifests apply; their descriptions say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kosmos.api.common import (
    CIDR_MAX,
    IP_ITEM,
    IP_MAX,
    IS_CIDR,
    IS_IP,
    Condition,
    conditions,
    kosmos_kind,
)
from kosmos.api.schema import Embedded, PrinterColumn, Rule, kind, prop

_NODE = 253  # node names are DNS subdomains
_PORT_ITEM = {"minimum": 1, "maximum": 65535}

# -- VirtualCluster -----------------------------------------------------------------------


@dataclass
class TenantEntrypoint:
    """Addresses tenants reach the virtual apiserver on (added to its certificate)."""

    external_ips: list[str] = prop(max_items=16, list_type="set", items=IP_ITEM)
    external_vips: list[str] = prop(
        max_items=16,
        list_type="set",
        items=IP_ITEM,
        description="Preferred VIPs; used when inside the operator's VIP pool",
    )


@dataclass
class KubeInKubeConfig:
    """Per-VirtualCluster override of the operator's kube-in-kube settings.

    No defaults here on purpose: a field left unset falls back to the operator's configuration
    instead of being forced to a built-in default by the apiserver.
    """

    force_destroy: bool = prop(description="Delete the control plane even if cleanup fails")
    anp_mode: Literal["tcp", "uds"] = prop(
        description="How the apiserver reaches the konnectivity server"
    )
    admission_plugins: bool = prop()
    api_server_replicas: int = prop(minimum=1, maximum=16)
    cluster_cidr: str = prop(
        "clusterCIDR", max_length=CIDR_MAX, rules=[IS_CIDR], description="Pod CIDR of the VC"
    )
    etcd_storage_class: str = prop(max_length=_NODE)
    etcd_unit_size: str = prop(
        max_length=64,
        rules=[Rule("isQuantity(self)", "must be a quantity such as 1Gi")],
        description="etcd volume size, used as-is for this VirtualCluster",
    )
    tenant_entrypoint: TenantEntrypoint = prop()
    api_server_service_type: Literal["nodePort", "hostNetwork"] = prop()
    use_tenant_dns: bool = prop("useTenantDNS")
    external_port: int = prop(minimum=1, maximum=65535, description="Pinned apiserver port")
    use_node_local_dns: bool = prop("useNodeLocalDNS")


@dataclass
class NodePromotePolicy:
    """Borrow ``nodeCount`` free GlobalNodes whose labels match ``labelSelector``."""

    label_selector: Embedded = prop(
        embedded=True, description="metav1.LabelSelector over GlobalNode spec.labels; unset = all"
    )
    node_count: int = prop(required=True, minimum=0, maximum=2147483647)


@dataclass
class NodeInfo:
    node_name: str = prop(required=True, min_length=1, max_length=_NODE)


@dataclass
class PromoteResources:
    """What the VirtualCluster holds. ``nodeInfos`` is written by the controller."""

    node_infos: list[NodeInfo] = prop(
        max_items=4096,
        list_type="map",
        list_map_keys=["nodeName"],
        description="GlobalNodes assigned to this VirtualCluster (controller-owned)",
    )
    resources: Embedded = prop(
        embedded=True,
        max_properties=64,
        description="corev1.ResourceList; accepted for compatibility, not acted upon",
    )
    nodes: list[str] = prop(
        max_items=4096,
        items={"maxLength": _NODE},
        description="Node names in the k8s-in-k8s proposal's form; accepted for compatibility, "
        "not acted upon (promotePolicies choose nodes, nodeInfos records them)",
    )


@dataclass
class Plugin:
    name: str = prop(required=True, min_length=1, max_length=_NODE)


@dataclass
class PluginSet:
    """Reserved for VirtualClusterPlugin selection; not acted upon."""

    enabled: list[Plugin] = prop(max_items=64)
    disabled: list[Plugin] = prop(max_items=64)


@dataclass
class PluginOption:
    """A template variable for the control-plane manifests (``{{ .name }}``)."""

    name: str = prop(required=True, min_length=1, max_length=_NODE)
    value: str = prop(required=True)


@dataclass
class VirtualClusterSpec:
    kubeconfig: str = prop(
        description="Base64 admin kubeconfig of the virtual control plane; written by the "
        "controller once the control plane is up"
    )
    external_ip: str = prop(
        "externalIP",
        max_length=IP_MAX,
        rules=[IS_IP],
        description="Extra address for the apiserver certificate, for access from outside",
    )
    external_ips: list[str] = prop(max_items=16, list_type="set", items=IP_ITEM)
    kube_in_kube_config: KubeInKubeConfig = prop()
    promote_policies: list[NodePromotePolicy] = prop(max_items=64)
    promote_resources: PromoteResources = prop()
    plugin_set: PluginSet = prop()
    plugin_options: list[PluginOption] = prop(
        max_items=256, list_type="map", list_map_keys=["name"]
    )


Phase = Literal[
    "Preparing",
    "Initialized",
    "Completed",
    "AllNodeReady",
    "AllNodeDeleted",
    "Deleting",
    "Updating",
    "Pending",
    "Failed",
]


@dataclass
class VirtualClusterStatus:
    phase: Phase = prop()
    reason: str = prop(max_length=32768)
    update_time: str = prop(fmt="date-time")
    port: int = prop(minimum=0, maximum=65535, description="Legacy apiserver port")
    port_map: dict[str, int] = prop(
        max_properties=16, items=_PORT_ITEM, description="Component port name -> host port"
    )
    vip_map: dict[str, str] = prop(max_properties=16, items=IP_ITEM)
    conditions: list[Condition] = conditions()


@kind(
    kosmos_kind(
        "VirtualCluster",
        "virtualclusters",
        "Namespaced",
        short_names=("vc",),
        printer_columns=(
            PrinterColumn("STATUS", ".status.phase"),
            PrinterColumn("UPDATE-TIME", ".status.updateTime"),
        ),
        description="A tenant Kubernetes control plane hosted in this namespace, with whole "
        "host nodes borrowed from the GlobalNode pool.",
    )
)
@dataclass
class VirtualCluster:
    spec: VirtualClusterSpec = prop(required=True)
    status: VirtualClusterStatus = prop()


# -- GlobalNode ---------------------------------------------------------------------------


@dataclass
class GlobalNodeSpec:
    node_ip: str = prop("nodeIP", max_length=IP_MAX, rules=[IS_IP])
    state: Literal["free", "occupied", "reserved"] = prop(
        default="free",
        description="free: may be borrowed; occupied: in a VirtualCluster; reserved: kept",
    )
    labels: dict[str, str] = prop(max_properties=256, description="The host node's labels")


@dataclass
class NodeCondition:
    """corev1.NodeCondition; readiness is ``type: Ready`` with a True/False/Unknown status."""

    type: str = prop(required=True, max_length=316)
    status: Literal["True", "False", "Unknown"] = prop(required=True)
    last_heartbeat_time: str = prop(fmt="date-time")
    last_transition_time: str = prop(fmt="date-time")
    reason: str = prop(max_length=1024)
    message: str = prop(max_length=32768)


@dataclass
class GlobalNodeStatus:
    virtual_cluster: str = prop(max_length=_NODE, description="The VirtualCluster using it")
    conditions: list[NodeCondition] = prop(max_items=16, list_type="map", list_map_keys=["type"])


@kind(
    kosmos_kind(
        "GlobalNode",
        "globalnodes",
        "Cluster",
        printer_columns=(
            PrinterColumn("NODE_IP", ".spec.nodeIP"),
            PrinterColumn("STATE", ".spec.state"),
            PrinterColumn("VIRTUAL_CLUSTER", ".status.virtualCluster"),
        ),
        description="A host node in the pool VirtualClusters borrow nodes from (same name).",
    )
)
@dataclass
class GlobalNode:
    spec: GlobalNodeSpec = prop(required=True)
    status: GlobalNodeStatus = prop()
