"""Clusters and ClusterNodes as the planner sees them, read from raw API objects.

What cannot take part is left out with a reason (a Cluster without link options, a node whose
agent has not reported its NIC and address yet, ...); the reasons become conditions, so a
user sees why a node has no NodeConfig instead of guessing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kosmos.api import link

ReadOnlyObj = Mapping[str, Any]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_FAMILIES: dict[str, tuple[link.Family, ...]] = {"all": (4, 6), "ipv4": (4,), "ipv6": (6,)}


@dataclass(frozen=True)
class ClusterNet:
    name: str
    mode: str  # p2p | gateway
    families: tuple[link.Family, ...]
    pod_cidrs: tuple[Network, ...]
    service_cidrs: tuple[Network, ...]
    global_map: tuple[tuple[Network, Network], ...]  # (real, global)
    local_pools: Mapping[int, str]
    bridge_pools: Mapping[int, str]
    encryption: str = "auto"
    key_secret: str = link.DEFAULT_KEY_SECRET
    key_field: str = link.DEFAULT_KEY_FIELD
    direct_routing: bool = False  # gateway mode: internal nodes reach the gateway over the NIC

    @property
    def real_cidrs(self) -> tuple[Network, ...]:
        return self.pod_cidrs + self.service_cidrs

    def seen(self, cidr: Network) -> Network:
        """``cidr`` as other clusters see it: translated into its global CIDR if mapped."""
        for real, glob in self.global_map:
            if cidr.version == real.version and cidr.subnet_of(real):  # type: ignore[arg-type]
                offset = int(cidr.network_address) - int(real.network_address)
                base = int(glob.network_address) + offset
                return ipaddress.ip_network(f"{ipaddress.ip_address(base)}/{cidr.prefixlen}")
        return cidr


@dataclass(frozen=True)
class Member:
    """A ClusterNode that can take part: its agent has reported NIC and addresses."""

    name: str  # ClusterNode name
    cluster: str
    interface: str
    ip: str
    ip6: str
    elastic_ip: str
    pod_cidrs: tuple[Network, ...]
    gateway: bool
    epoch: int
    public_key: str = ""  # WireGuard, published by the node's agent

    def underlay(self, family: int) -> str:
        return self.ip if family == 4 else self.ip6

    def reachable(self, family: int) -> str:
        """The address other clusters send to: the elastic IP when it is of this family."""
        if self.elastic_ip and (":" in self.elastic_ip) == (family == 6):
            return self.elastic_ip
        return self.underlay(family)


@dataclass
class Inputs:
    clusters: dict[str, ClusterNet] = field(default_factory=dict)
    members: dict[str, Member] = field(default_factory=dict)
    problems: dict[str, list[str]] = field(default_factory=dict)  # cluster -> messages
    skipped: dict[str, str] = field(default_factory=dict)  # ClusterNode -> why

    def problem(self, cluster: str, message: str) -> None:
        messages = self.problems.setdefault(cluster, [])
        if message not in messages:
            messages.append(message)


def _networks(
    values: Iterable[str], where: str, inputs: Inputs, cluster: str
) -> tuple[Network, ...]:
    found: list[Network] = []
    for value in values:
        try:
            found.append(ipaddress.ip_network(value, strict=False))
        except ValueError:
            inputs.problem(cluster, f"{where}: {value!r} is not a CIDR; it is ignored")
    return tuple(found)


def read_cluster(obj: ReadOnlyObj, inputs: Inputs) -> ClusterNet | None:
    name = obj["metadata"]["name"]
    spec = obj.get("spec", {})
    options = spec.get("clusterLinkOptions")
    if not options or options.get("enable") is False:
        return None
    status = (obj.get("status") or {}).get("clusterLinkStatus") or {}
    override = options.get("clusterPodCIDRs") or []
    pods = _networks(override or status.get("podCIDRs") or [], "pod CIDRs", inputs, name)
    services = _networks(status.get("serviceCIDRs") or [], "service CIDRs", inputs, name)
    mapping = _global_map(options.get("globalCIDRsMap") or {}, inputs, name)
    local = _pools(options, "localCIDRs", {"ip": "210.0.0.0/8", "ip6": "9480::/16"}, inputs, name)
    bridge = _pools(options, "bridgeCIDRs", {"ip": "220.0.0.0/8", "ip6": "9470::/16"}, inputs, name)
    encryption = options.get("encryption") or {}
    key = encryption.get("keySecretRef") or {}
    mode = options.get("networkType", "p2p")
    return ClusterNet(
        name=name,
        mode=mode,
        families=_families(options.get("ipFamily", "all"), pods),
        pod_cidrs=pods,
        service_cidrs=services,
        global_map=mapping,
        local_pools={4: local["ip"], 6: local["ip6"]},
        bridge_pools={4: bridge["ip"], 6: bridge["ip6"]},
        encryption=encryption.get("mode", "auto"),
        key_secret=key.get("name", link.DEFAULT_KEY_SECRET),
        key_field=key.get("key", link.DEFAULT_KEY_FIELD),
        direct_routing=mode == "gateway" and options.get("directRouting") is True,
    )


def _families(option: str, pods: tuple[Network, ...]) -> tuple[link.Family, ...]:
    """``all`` means every family the cluster's pods use: an IPv4-only cluster joined with the
    default must not wait for IPv6 addresses its nodes will never report. Before its pod
    CIDRs are known, both."""
    if option != "all":
        return _FAMILIES.get(option, (4, 6))
    return tuple(sorted({cidr.version for cidr in pods})) or (4, 6)


def _pools(
    options: ReadOnlyObj, key: str, default: dict[str, str], inputs: Inputs, cluster: str
) -> dict[str, str]:
    """A device pool per family; the CRD only says "a CIDR", so one of the wrong family
    (which would fail the device addressing of the whole plan) is reported and replaced by
    the default."""
    pools = dict(default)
    for part, family in (("ip", 4), ("ip6", 6)):
        value = (options.get(key) or {}).get(part) or default[part]
        try:
            ok = ipaddress.ip_network(value, strict=False).version == family
        except ValueError:
            ok = False
        if ok:
            pools[part] = value
        else:
            inputs.problem(
                cluster,
                f"{key}.{part}: {value!r} is not an IPv{family} CIDR; {default[part]} is used",
            )
    return pools


def _global_map(
    raw: Mapping[str, str], inputs: Inputs, cluster: str
) -> tuple[tuple[Network, Network], ...]:
    pairs: list[tuple[Network, Network]] = []
    for real, glob in sorted(raw.items()):
        try:
            a, b = (
                ipaddress.ip_network(real, strict=False),
                ipaddress.ip_network(glob, strict=False),
            )
        except ValueError:
            inputs.problem(cluster, f"globalCIDRsMap: {real!r} -> {glob!r} is not a pair of CIDRs")
            continue
        if a.version != b.version or a.prefixlen != b.prefixlen:
            inputs.problem(
                cluster,
                f"globalCIDRsMap: {real} -> {glob} must map to a CIDR of the same family and size",
            )
            continue
        pairs.append((a, b))
    return tuple(pairs)


def read_member(
    obj: ReadOnlyObj, clusters: Mapping[str, ClusterNet], inputs: Inputs
) -> Member | None:
    name = obj["metadata"]["name"]
    spec = obj.get("spec", {})
    cluster = clusters.get(spec.get("clusterName", ""))
    why = _unusable(spec, cluster)
    if why or cluster is None:
        inputs.skipped[name] = why or "its Cluster has no ClusterLink"
        return None
    annotations = obj["metadata"].get("annotations") or {}
    try:
        epoch = int(annotations.get(link.ANNOTATION_GATEWAY_EPOCH, "0"))
    except ValueError:
        epoch = 0
    return Member(
        name=name,
        cluster=cluster.name,
        interface=spec["interfaceName"],
        ip=spec.get("ip", ""),
        ip6=spec.get("ip6", ""),
        elastic_ip=spec.get("elasticIP", ""),
        pod_cidrs=_networks(
            spec.get("podCIDRs") or [], f"ClusterNode {name} podCIDRs", inputs, cluster.name
        ),
        gateway=link.ROLE_GATEWAY in (spec.get("roles") or []),
        epoch=epoch,
        public_key=annotations.get(link.ANNOTATION_WIREGUARD_KEY, ""),
    )


def _unusable(spec: ReadOnlyObj, cluster: ClusterNet | None) -> str:
    if cluster is None:
        return f"Cluster {spec.get('clusterName', '')!r} does not exist or has ClusterLink disabled"
    if not spec.get("interfaceName"):
        return "its agent has not reported the tunnel interface yet"
    if 4 in cluster.families and not spec.get("ip"):
        return "no IPv4 address although the cluster uses IPv4"
    if 6 in cluster.families and not spec.get("ip6"):
        return "no IPv6 address although the cluster uses IPv6"
    # The CRD only says "an IP": one of the wrong family would make the device addressing
    # fail for the whole plan, so the node is left out instead.
    for key, family in (("ip", 4), ("ip6", 6), ("elasticIP", 0)):
        value = spec.get(key) or ""
        if value and not _is_ip(value, family):
            kind = f"an IPv{family}" if family else "an IP"
            return f"its {key} {value!r} is not {kind} address"
    return ""


def _is_ip(value: str, family: int) -> bool:
    try:
        return family in (0, ipaddress.ip_address(value).version)
    except ValueError:
        return False


def read(clusters: Iterable[ReadOnlyObj], nodes: Iterable[ReadOnlyObj]) -> Inputs:
    inputs = Inputs()
    for obj in sorted(clusters, key=lambda o: o["metadata"]["name"]):
        if obj["metadata"].get("deletionTimestamp"):
            continue
        net = read_cluster(obj, inputs)
        if net is not None:
            inputs.clusters[net.name] = net
    for obj in sorted(nodes, key=lambda o: o["metadata"]["name"]):
        member = read_member(obj, inputs.clusters, inputs)
        if member is not None:
            inputs.members[member.name] = member
    return inputs
