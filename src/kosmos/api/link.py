"""Well-known names and numbers of ClusterLink: devices, VNIs, ports, tables, leases.

The device names, VNIs, UDP ports and table 200 are the ones Kosmos nodes have always used,
so a node's state reads the same to someone who knows Kosmos (docs/clusterlink.md lists them).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

Family = int  # 4 or 6


@dataclass(frozen=True)
class DeviceKind:
    name: str
    vni: int
    port: int
    family: Family


VX_BRIDGE = DeviceKind("vx-bridge", 54, 4876, 4)  # between clusters
VX_LOCAL = DeviceKind("vx-local", 55, 4877, 4)  # internal node -> its cluster's gateway
VX_BRIDGE6 = DeviceKind("vx-bridge-6", 64, 4866, 6)
VX_LOCAL6 = DeviceKind("vx-local-6", 65, 4867, 6)
DEVICES = (VX_BRIDGE, VX_LOCAL, VX_BRIDGE6, VX_LOCAL6)


def bridge(family: Family) -> DeviceKind:
    return VX_BRIDGE if family == 4 else VX_BRIDGE6


def local(family: Family) -> DeviceKind:
    return VX_LOCAL if family == 4 else VX_LOCAL6


#: Encapsulation overhead of VXLAN over an IPv4 / IPv6 underlay (outer IP + UDP + VXLAN + L2).
VXLAN_OVERHEAD = {4: 50, 6: 70}
ROUTE_TABLE = 200
RULE_PRIORITY = 200
ROLE_GATEWAY = "gateway"

#: On a ClusterNode: the lease transition that made it its cluster's gateway (newest wins).
ANNOTATION_GATEWAY_EPOCH = "kosmos.io/gateway-epoch"
#: On a ClusterNode: the node's WireGuard public key (base64), published by its agent.
ANNOTATION_WIREGUARD_KEY = "kosmos.io/wireguard-public-key"
#: Lease (in kosmos-system of the host) that elects a cluster's gateway: name prefix + cluster.
GATEWAY_LEASE_PREFIX = "clusterlink-gateway-"
#: Label on NodeConfigs and ClusterNodes: the cluster they belong to.
LABEL_CLUSTER = "kosmos.io/cluster"
#: Master key of encrypted tunnels when a Cluster names none (created by the network-manager).
DEFAULT_KEY_SECRET = "clusterlink-tunnel-key"
DEFAULT_KEY_FIELD = "psk"
#: Agent-side names in the kernel: ipsets of remote CIDRs, chains.
IPSET_REMOTE = {4: "kosmos-remote", 6: "kosmos-remote6"}
FIELD_MANAGER_PLANNER = "kosmos-network-manager"
FIELD_MANAGER_AGENT = "kosmos-agent"
FIELD_MANAGER_ELECTOR = "kosmos-elector"


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def seen(cidr: Network, global_map: Mapping[str, str]) -> Network:
    """``cidr`` as other clusters reach it: inside a mapped real CIDR, moved to its global one.

    ``global_map`` is a Cluster's ``spec.clusterLinkOptions.globalCIDRsMap`` (real -> global).
    ClusterLink routes and pools with it; the MCS controller translates endpoint addresses
    with it (a /32 or /128), so both agree on where a pod is reached.
    """
    for real_text, global_text in global_map.items():
        try:
            real = ipaddress.ip_network(real_text, strict=False)
            glob = ipaddress.ip_network(global_text, strict=False)
        except ValueError:
            continue  # the CRD validates the map; an unparsable entry maps nothing
        if cidr.version == real.version == glob.version and cidr.subnet_of(real):  # type: ignore[arg-type]
            offset = int(cidr.network_address) - int(real.network_address)
            base = ipaddress.ip_address(int(glob.network_address) + offset)
            return ipaddress.ip_network(f"{base}/{cidr.prefixlen}")
    return cidr
