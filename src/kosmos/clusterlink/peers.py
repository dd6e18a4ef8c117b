"""Who is who in the link, by address: the index ``kosmos.clusterlink.diagnose`` names peers with.

Built from the raw Clusters, ClusterNodes and NodeConfigs (pure). A node is known by its
underlay addresses (the VTEPs other nodes' FDB entries point at), its VXLAN device addresses
and MACs (what neighbour entries and routes name) and its pod CIDRs -- both as its cluster
sees them and as other clusters reach them through ``globalCIDRsMap``. A node whose
ClusterNode lists no pod CIDRs is taken to hold its cluster's (a gateway-mode cluster
routes them all through its gateway anyway).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kosmos.api import link

Obj = Mapping[str, Any]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(values: Iterable[str]) -> tuple[Network, ...]:
    found: list[Network] = []
    for value in values:
        try:
            found.append(ipaddress.ip_network(value, strict=False))
        except ValueError:
            continue  # the planner reports it; a diagnosis just cannot use it
    return tuple(found)


@dataclass(frozen=True)
class ClusterInfo:
    name: str
    mode: str  # p2p | gateway
    pod_cidrs: tuple[Network, ...]
    service_cidrs: tuple[Network, ...]  # as other clusters reach them
    global_map: Mapping[str, str] = field(default_factory=dict)

    def seen(self, cidrs: Iterable[Network]) -> tuple[Network, ...]:
        """``cidrs`` and, where mapped, their global counterparts."""
        out = list(cidrs)
        out += [link.seen(c, self.global_map) for c in out]
        return tuple(dict.fromkeys(out))


@dataclass(frozen=True)
class Peer:
    name: str  # ClusterNode name
    cluster: str
    node: str  # the node's name in its cluster
    underlay: frozenset[str]  # ip, ip6, elastic IP
    pod_cidrs: tuple[Network, ...]  # real and global
    device_ips: frozenset[str]  # addresses of its VXLAN devices
    macs: frozenset[str]  # MACs of its VXLAN devices

    @property
    def label(self) -> str:
        return f"{self.cluster}/{self.node}"


@dataclass
class Link:
    clusters: dict[str, ClusterInfo] = field(default_factory=dict)
    peers: dict[str, Peer] = field(default_factory=dict)  # by ClusterNode name

    def by_underlay(self, ip: str) -> list[Peer]:
        return [p for p in self.peers.values() if ip in p.underlay]

    def by_device_ip(self, ip: str) -> list[Peer]:
        return [p for p in self.peers.values() if ip in p.device_ips]

    def by_mac(self, mac: str) -> list[Peer]:
        return [p for p in self.peers.values() if mac in p.macs]

    def covered(self, cidr: Network, exclude: str = "") -> list[Peer]:
        """Peers with a pod CIDR overlapping ``cidr``."""
        return [
            p
            for p in self.peers.values()
            if p.name != exclude and any(_overlap(cidr, c) for c in p.pod_cidrs)
        ]

    def services_of(self, cidr: Network) -> list[str]:
        """Clusters with a service CIDR overlapping ``cidr``."""
        return sorted(
            c.name
            for c in self.clusters.values()
            if any(_overlap(cidr, s) for s in c.service_cidrs)
        )


def _overlap(a: Network, b: Network) -> bool:
    return a.version == b.version and a.overlaps(b)


def read_cluster(obj: Obj) -> ClusterInfo | None:
    options = (obj.get("spec") or {}).get("clusterLinkOptions") or {}
    if not options or options.get("enable") is False:
        return None
    status = (obj.get("status") or {}).get("clusterLinkStatus") or {}
    mapping = dict(options.get("globalCIDRsMap") or {})
    services = _networks(status.get("serviceCIDRs") or [])
    return ClusterInfo(
        name=obj["metadata"]["name"],
        mode=options.get("networkType", "p2p"),
        pod_cidrs=_networks(options.get("clusterPodCIDRs") or status.get("podCIDRs") or []),
        service_cidrs=tuple(link.seen(s, mapping) for s in services),
        global_map=mapping,
    )


def _ip(value: object) -> str | None:
    try:
        return str(ipaddress.ip_interface(str(value)).ip) if value else None
    except ValueError:
        return None


def _devices(config: Obj | None) -> tuple[frozenset[str], frozenset[str]]:
    devices = ((config or {}).get("spec") or {}).get("devices") or []
    ips = {_ip(d.get("addr")) for d in devices} - {None}
    macs = frozenset(str(d.get("mac", "")).lower() for d in devices if d.get("mac"))
    return frozenset(ip for ip in ips if ip), macs


def build(clusters: Iterable[Obj], clusternodes: Iterable[Obj], nodeconfigs: Iterable[Obj]) -> Link:
    out = Link()
    for obj in clusters:
        info = read_cluster(obj)
        if info is not None:
            out.clusters[info.name] = info
    configs = {c["metadata"]["name"]: c for c in nodeconfigs}
    for obj in clusternodes:
        spec = obj.get("spec") or {}
        cluster = out.clusters.get(spec.get("clusterName", ""))
        if cluster is None:
            continue
        name = obj["metadata"]["name"]
        own = _networks(spec.get("podCIDRs") or [])
        ips, macs = _devices(configs.get(name))
        out.peers[name] = Peer(
            name=name,
            cluster=cluster.name,
            node=spec.get("nodeName") or name,
            underlay=frozenset(
                ip for ip in (_ip(spec.get(k)) for k in ("ip", "ip6", "elasticIP")) if ip
            ),
            pod_cidrs=cluster.seen(own or cluster.pod_cidrs),
            device_ips=ips,
            macs=macs,
        )
    return out
