"""Who owns which destination, and which destinations cannot be routed.

A *target* is a node that receives traffic for a CIDR from other clusters: the gateway of a
gateway-mode cluster (for all of its pod and service CIDRs), or each node of a p2p cluster
(for its own pod CIDRs; its cluster's gateway for the service CIDRs). CIDRs are as other
clusters see them: translated through ``globalCIDRsMap``.

Two owners of overlapping destinations make routing ambiguous, and a destination that
overlaps a cluster's own CIDRs cannot be routed from that cluster: both are found here with a
sweep over sorted intervals (no quadratic pairwise scan) and reported per cluster.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from kosmos.clusterlink.planner.inputs import ClusterNet, Inputs, Member, Network


@dataclass(frozen=True)
class Target:
    cidr: Network
    family: int
    cluster: str
    owner: str  # ClusterNode name
    service: bool = False  # a service CIDR (not carried by encrypted tunnels, see plan.py)

    def sort_key(self) -> tuple[int, int, int, str, str]:
        net = self.cidr
        return (self.family, int(net.network_address), net.prefixlen, self.cluster, self.owner)


def elect(inputs: Inputs) -> dict[str, Member]:
    """The gateway of each cluster: the flagged node with the newest epoch (then by name).

    A p2p cluster without an elected gateway falls back to its first node by name, which
    then receives the cluster's service traffic; a gateway-mode cluster without one cannot
    route and is reported.
    """
    by_cluster: dict[str, list[Member]] = {}
    for member in inputs.members.values():
        by_cluster.setdefault(member.cluster, []).append(member)
    chosen: dict[str, Member] = {}
    for name, members in sorted(by_cluster.items()):
        flagged = [m for m in members if m.gateway]
        if flagged:
            chosen[name] = max(flagged, key=lambda m: (m.epoch, m.name))
        elif inputs.clusters[name].mode == "p2p":
            chosen[name] = min(members, key=lambda m: m.name)
        else:
            inputs.problem(name, "no gateway elected yet: no Ready node runs an agent")
    return chosen


def owned(
    cluster: ClusterNet, member: Member, gateway: Member | None, *, services: bool = True
) -> list[Network]:
    """The CIDRs (as seen by others) ``member`` receives traffic for."""
    mine: list[Network] = []
    is_gateway = gateway is not None and gateway.name == member.name
    if cluster.mode == "gateway":
        if is_gateway:
            mine += cluster.pod_cidrs
    else:
        mine += member.pod_cidrs
    if is_gateway and services:
        mine += cluster.service_cidrs
    seen = [cluster.seen(c) for c in mine]
    return sorted(set(seen), key=lambda n: (n.version, int(n.network_address), n.prefixlen))


def collect(inputs: Inputs, gateways: Mapping[str, Member]) -> list[Target]:
    targets: list[Target] = []
    for member in inputs.members.values():
        cluster = inputs.clusters[member.cluster]
        services = {cluster.seen(c) for c in cluster.service_cidrs}
        for cidr in owned(cluster, member, gateways.get(member.cluster)):
            if cidr.version in cluster.families:
                targets.append(
                    Target(cidr, cidr.version, member.cluster, member.name, cidr in services)
                )
    return sorted(targets, key=Target.sort_key)


def _span(net: Network) -> tuple[int, int, int]:
    return (net.version, int(net.network_address), int(net.broadcast_address))


def overlaps(items: Sequence[tuple[Network, str]]) -> list[tuple[int, int]]:
    """Index pairs of overlapping networks whose tags differ (sweep over sorted starts)."""
    spans = [_span(net) for net, _ in items]
    order = sorted(range(len(items)), key=lambda i: spans[i])
    active: list[int] = []
    pairs: list[tuple[int, int]] = []
    for i in order:
        version, start, _ = spans[i]
        active = [j for j in active if spans[j][0] == version and spans[j][2] >= start]
        pairs.extend((j, i) for j in active if items[j][1] != items[i][1])
        active.append(i)
    return pairs


def conflicts(inputs: Inputs, targets: list[Target]) -> tuple[set[Target], set[tuple[str, Target]]]:
    """Targets nobody may route to, and (cluster, target) pairs one cluster cannot route.

    * two owners of overlapping destinations: both dropped everywhere;
    * a destination overlapping a cluster's own pod/service CIDRs: dropped for that cluster.
    """
    dropped: set[Target] = set()
    tagged = [(t.cidr, t.owner) for t in targets]
    for i, j in overlaps(tagged):
        a, b = targets[i], targets[j]
        dropped |= {a, b}
        for cluster in {a.cluster, b.cluster}:
            inputs.problem(
                cluster,
                f"{a.cidr} ({a.cluster}) overlaps {b.cidr} ({b.cluster}): neither is routed; "
                "give one cluster a globalCIDRsMap",
            )
    blocked: set[tuple[str, Target]] = set()
    own = [(c, f"own:{name}") for name, net in inputs.clusters.items() for c in net.real_cidrs]
    mixed = own + [(t.cidr, f"target:{k}") for k, t in enumerate(targets)]
    for i, j in overlaps(mixed):
        tags = sorted((mixed[i][1], mixed[j][1]))
        if not (tags[0].startswith("own:") and tags[1].startswith("target:")):
            continue
        cluster = tags[0][4:]
        target = targets[int(tags[1][7:])]
        if target.cluster == cluster:
            continue
        blocked.add((cluster, target))
        message = (
            f"{target.cidr} of cluster {target.cluster} overlaps CIDRs of cluster {cluster}, "
            f"so {cluster} cannot reach it; map one of them with globalCIDRsMap"
        )
        inputs.problem(cluster, message)
        inputs.problem(target.cluster, message)
    return dropped, blocked


def by_family(targets: Iterable[Target], family: int) -> list[Target]:
    return [t for t in targets if t.family == family]


def network(value: str) -> Network:
    return ipaddress.ip_network(value, strict=False)
