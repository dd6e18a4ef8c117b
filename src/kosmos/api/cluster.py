"""Cluster: a member cluster joined to the host (and the host itself, marked root)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kosmos.api import names
from kosmos.api.common import (
    CIDR_ITEM,
    CIDR_MAX,
    IP_ITEM,
    IS_CIDR,
    Condition,
    conditions,
    kosmos_kind,
)
from kosmos.api.schema import Embedded, PrinterColumn, Rule, kind, prop, rules

_MAP_LIMIT = 16  # keeps the CEL cost of pairwise checks within the apiserver's budget


@dataclass
class VxlanCIDRs:
    """Address space (IPv4 and IPv6) from which ClusterLink numbers a device on every node."""

    ip: str = prop(required=True, max_length=CIDR_MAX, rules=[IS_CIDR])
    ip6: str = prop(required=True, max_length=CIDR_MAX, rules=[IS_CIDR])


@dataclass
class NICNodeNames:
    """Use ``interfaceName`` as the tunnel NIC on the listed nodes."""

    interface_name: str = prop(required=True, min_length=1)
    node_name: list[str] = prop(required=True, min_items=1)


@dataclass
class KeyRef:
    """A key of a Secret in the host's kosmos-system namespace."""

    name: str = prop(required=True, min_length=1, max_length=253)
    key: str = prop(default="psk", max_length=253)


@dataclass
class Encryption:
    """Whether traffic between this cluster and others is encrypted, and with what key."""

    mode: Literal["auto", "ipsec", "wireguard", "none"] = prop(
        default="auto",
        description=(
            "auto: IPsec between nodes that both have elastic IPs (Kosmos's default); "
            "ipsec/wireguard: always, to every cluster that does not say none; none: never"
        ),
    )
    key_secret_ref: KeyRef = prop(
        description="Master key; default Secret clusterlink-tunnel-key (created if missing)"
    )


@dataclass
class ClusterLinkOptions:
    """Cross-cluster networking for this cluster."""

    enable: bool = prop(default=True)
    cni: str = prop(default="calico", description="calico, flannel, cilium, or another CNI")
    default_nic_name: str = prop(
        "defaultNICName", default="*", description="Tunnel NIC on every node; * = autodetect"
    )
    network_type: Literal["p2p", "gateway"] = prop(default="p2p")
    ip_family: Literal["all", "ipv4", "ipv6"] = prop("ipFamily", default="all")
    use_ip_pool: bool = prop("useIPPool", default=False)
    local_cidrs: VxlanCIDRs = prop("localCIDRs", default={"ip": "210.0.0.0/8", "ip6": "9480::/16"})
    bridge_cidrs: VxlanCIDRs = prop(
        "bridgeCIDRs", default={"ip": "220.0.0.0/8", "ip6": "9470::/16"}
    )
    nic_node_names: list[NICNodeNames] = prop("nicNodeNames", max_items=256)
    autodetection_method: str = prop(
        pattern=r"^can-reach=\S+$", description="Only can-reach=<ip> is supported"
    )
    global_cidrs_map: dict[str, str] = prop(
        "globalCIDRsMap",
        max_properties=_MAP_LIMIT,
        description="Real pod/service CIDR -> globally unique CIDR of the same size",
        items=CIDR_ITEM,
        rules=[
            Rule(
                "self.all(k, size(k) <= 43 && isCIDR(k))",
                "keys must be CIDRs such as 10.0.0.0/16",
            ),
            Rule(
                "self.all(a, self.all(b, a == b || "
                "(!cidr(self[a]).containsCIDR(cidr(self[b])) && "
                "!cidr(self[b]).containsCIDR(cidr(self[a])))))",
                "global CIDRs must not overlap each other",
            ),
            Rule(
                "self.all(k, size(k) > 43 || !isCIDR(k) || "
                "cidr(k).prefixLength() == cidr(self[k]).prefixLength())",
                "a global CIDR must have the same prefix length as the CIDR it maps",
            ),
        ],
    )
    node_elastic_ip_map: dict[str, str] = prop(
        "nodeElasticIPMap",
        max_properties=1024,
        description="Node name -> its elastic (public) IP, for encrypted tunnels",
        items=IP_ITEM,
    )
    cluster_pod_cidrs: list[str] = prop(
        "clusterPodCIDRs",
        max_items=32,
        description="Pod CIDRs to use instead of discovering them from the CNI",
        items=CIDR_ITEM,
    )
    use_external_apiserver: bool = prop(
        default=False,
        description="Discover the service CIDR by asking the apiserver, not its pod flags",
    )
    encryption: Encryption = prop()
    direct_routing: bool = prop(
        default=False,
        description=(
            "Gateway mode: internal nodes route remote traffic to their gateway's node address"
            " over their own NIC instead of over vx-local; needs the nodes on one L2 segment"
            " that forwards pod addresses (docs/clusterlink.md)"
        ),
    )


@rules(
    Rule(
        "!(has(self.nodeName) && has(self.labelSelector))",
        "set nodeName or labelSelector, not both",
        field_path=".nodeName",
    )
)
@dataclass
class NodeSelector:
    """Which member nodes a leaf node stands for: one node by name, or a label selector."""

    node_name: str = prop()
    label_selector: Embedded = prop(embedded=True)


@dataclass
class LeafModel:
    """One leaf node in the host and the member nodes it represents."""

    leaf_node_name: str = prop(max_length=63)
    labels: dict[str, str] = prop(max_properties=64)
    taints: list[Embedded] = prop(max_items=32)
    node_selector: NodeSelector = prop()


@dataclass
class ClusterTreeOptions:
    """Member nodes as leaf nodes of the host."""

    enable: bool = prop(default=True)
    leaf_models: list[LeafModel] = prop(
        max_items=1024, description="Empty: the whole cluster is one leaf node kosmos-<name>"
    )


@dataclass
class SecretRef:
    """A key of a Secret in the host."""

    name: str = prop(required=True, min_length=1)
    namespace: str = prop(default=names.SYSTEM_NAMESPACE)
    key: str = prop(default=names.KUBECONFIG_SECRET_KEY)


@rules(
    Rule(
        "!(has(self.kubeconfig) && has(self.kubeconfigSecretRef))",
        "set kubeconfigSecretRef or kubeconfig (deprecated, inline), not both",
        field_path=".kubeconfig",
    )
)
@dataclass
class ClusterSpec:
    kubeconfig_secret_ref: SecretRef = prop(
        description="Secret holding the member's kubeconfig (preferred)"
    )
    kubeconfig: str = prop(
        fmt="byte", description="Inline base64 kubeconfig, accepted for compatibility"
    )
    namespace: str = prop(default=names.SYSTEM_NAMESPACE, max_length=63)
    image_repository: str = prop()
    cluster_link_options: ClusterLinkOptions = prop()
    cluster_tree_options: ClusterTreeOptions = prop()


@dataclass
class ClusterLinkStatus:
    pod_cidrs: list[str] = prop("podCIDRs")
    service_cidrs: list[str] = prop("serviceCIDRs")


@dataclass
class LeafNodeItem:
    leaf_node_name: str = prop(required=True)


@dataclass
class ClusterTreeStatus:
    leaf_node_items: list[LeafNodeItem] = prop()


@dataclass
class ClusterStatus:
    cluster_link_status: ClusterLinkStatus = prop()
    cluster_tree_status: ClusterTreeStatus = prop()
    conditions: list[Condition] = conditions()


@kind(
    kosmos_kind(
        "Cluster",
        "clusters",
        "Cluster",
        printer_columns=(
            PrinterColumn("NETWORK_TYPE", ".spec.clusterLinkOptions.networkType"),
            PrinterColumn("IP_FAMILY", ".spec.clusterLinkOptions.ipFamily"),
            PrinterColumn("READY", '.status.conditions[?(@.type=="Ready")].status'),
        ),
        description="A Kubernetes cluster joined to Kosmos.",
    )
)
@dataclass
class Cluster:
    spec: ClusterSpec = prop(required=True)
    status: ClusterStatus = prop()
