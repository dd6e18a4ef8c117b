"""ClusterNode (a member node as ClusterLink sees it) and NodeConfig (what its agent programs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kosmos.api import names
from kosmos.api.common import (
    CIDR_ITEM,
    CIDR_MAX,
    IP_MAX,
    IS_CIDR,
    IS_IP,
    Condition,
    conditions,
    kosmos_kind,
)
from kosmos.api.schema import PrinterColumn, Rule, kind, prop, rules

MAC = r"^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$"
IFNAME = r"^[^\s/:]{1,15}$"  # Linux IFNAMSIZ - 1, no whitespace, '/' or ':'
_LIST = 4096


def _ip(**kw: object) -> str:
    return prop(max_length=IP_MAX, rules=[IS_IP], **kw)  # type: ignore[no-any-return,arg-type]


def _cidr(**kw: object) -> str:
    return prop(max_length=CIDR_MAX, rules=[IS_CIDR], **kw)  # type: ignore[no-any-return,arg-type]


@dataclass
class ClusterNodeSpec:
    cluster_name: str = prop(required=True, min_length=1, max_length=63)
    node_name: str = prop(required=True, min_length=1, max_length=253)
    pod_cidrs: list[str] = prop("podCIDRs", max_items=32, items=CIDR_ITEM)
    ip: str = _ip()
    ip6: str = _ip()
    elastic_ip: str = _ip(json_name="elasticIP", description="Public IP for encrypted tunnels")
    roles: list[Literal["gateway"]] = prop(max_items=4, list_type="set")
    interface_name: str = prop(pattern=IFNAME)


@dataclass
class ClusterNodeStatus:
    conditions: list[Condition] = conditions()


@kind(
    kosmos_kind(
        "ClusterNode",
        "clusternodes",
        "Cluster",
        printer_columns=(
            PrinterColumn("ROLES", ".spec.roles"),
            PrinterColumn("INTERFACE", ".spec.interfaceName"),
            PrinterColumn("IP", ".spec.ip"),
        ),
        description="A member node as ClusterLink sees it (name <cluster>-<node>).",
    )
)
@dataclass
class ClusterNode:
    spec: ClusterNodeSpec = prop(required=True)
    status: ClusterNodeStatus = prop()


@dataclass
class Device:
    type: Literal["vxlan"] = prop(required=True)
    name: str = prop(required=True, pattern=IFNAME)
    addr: str = _cidr(description="Address of the device, ip/prefix")
    mac: str = prop(pattern=MAC)
    bind_dev: str = prop(pattern=IFNAME)
    id: int = prop(minimum=0, maximum=16777215, description="VXLAN network identifier")
    port: int = prop(minimum=1, maximum=65535)
    mtu: int = prop(minimum=576, maximum=65535)


@dataclass
class Route:
    cidr: str = _cidr(required=True)
    gw: str = _ip()
    dev: str = prop(pattern=IFNAME)


@dataclass
class Iptables:
    table: Literal["filter", "nat", "mangle", "raw"] = prop(required=True)
    chain: str = prop(required=True, max_length=64)
    rule: str = prop(required=True, max_length=1024)


@dataclass
class Neighbor:
    """An FDB entry (MAC -> remote VTEP ip) or an ARP/NDP entry (ip -> MAC) on a device."""

    ip: str = _ip(required=True)
    mac: str = prop(required=True, pattern=MAC)
    dev: str = prop(required=True, pattern=IFNAME)


@dataclass
class IPSet:
    name: str = prop(required=True, max_length=31)
    type: Literal["hash:net", "hash:ip"] = prop(default="hash:net")
    entries: list[str] = prop(max_items=_LIST, items={"maxLength": CIDR_MAX})


@dataclass
class KeySecretRef:
    """Where the tunnel's key material lives; the key itself is never in a CR."""

    name: str = prop(required=True, min_length=1)
    namespace: str = prop(default=names.SYSTEM_NAMESPACE)
    key: str = prop(default="psk")


@rules(
    Rule(
        "self.localSubnets.all(c, isCIDR(c)) && self.remoteSubnets.all(c, isCIDR(c))",
        "traffic selectors must be CIDRs",
        field_path=".localSubnets",
    )
)
@dataclass
class Tunnel:
    """An encrypted tunnel to a peer node, negotiated by an IKE daemon or WireGuard."""

    name: str = prop(required=True, max_length=63)
    type: Literal["ipsec", "wireguard"] = prop(default="ipsec")
    local_address: str = _ip(required=True)
    remote_address: str = _ip(required=True)
    local_subnets: list[str] = prop(
        required=True, min_items=1, max_items=32, items={"maxLength": CIDR_MAX}
    )
    remote_subnets: list[str] = prop(
        required=True, min_items=1, max_items=32, items={"maxLength": CIDR_MAX}
    )
    local_id: str = prop(
        "localID", max_length=253, description="IKE identity; default localAddress"
    )
    remote_id: str = prop(
        "remoteID", max_length=253, description="Peer identity; default remoteAddress"
    )
    key_secret_ref: KeySecretRef = prop(required=True)
    remote_public_key: str = prop(max_length=64, description="WireGuard peer public key")


@dataclass
class NodeConfigSpec:
    devices: list[Device] = prop(max_items=256)
    routes: list[Route] = prop(max_items=_LIST)
    iptables: list[Iptables] = prop(max_items=_LIST)
    fdbs: list[Neighbor] = prop(max_items=_LIST)
    arps: list[Neighbor] = prop(max_items=_LIST)
    ipsets: list[IPSet] = prop(max_items=64)
    tunnels: list[Tunnel] = prop(max_items=256)


@dataclass
class NodeConfigStatus:
    last_change_time: str = prop(fmt="date-time")
    last_sync_time: str = prop(fmt="date-time")
    observed_generation: int = prop(minimum=0)
    conditions: list[Condition] = conditions()


@kind(
    kosmos_kind(
        "NodeConfig",
        "nodeconfigs",
        "Cluster",
        description="The network configuration ClusterLink's agent programs on one node.",
    )
)
@dataclass
class NodeConfig:
    spec: NodeConfigSpec = prop()
    status: NodeConfigStatus = prop()
