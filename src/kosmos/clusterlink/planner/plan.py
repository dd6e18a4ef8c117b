"""Compute every node's NodeConfig spec from the planner inputs.

Traffic model (docs/clusterlink.md):

* p2p clusters: every node has ``vx-bridge`` and tunnels straight to the node that owns the
  destination in the other cluster (a p2p node for its pod CIDRs, a gateway otherwise);
* gateway clusters: every node has ``vx-local``; internal nodes send remote traffic to their
  gateway over it, the gateway forwards over ``vx-bridge`` and masquerades what its own
  nodes' hosts send. With ``directRouting`` there is no ``vx-local``: internal nodes route
  to the gateway's node address over their own NIC (one L2 segment, as flannel's
  DirectRouting), and the gateway masquerades whatever leaves ``vx-bridge`` that is not from
  the cluster's pods;
* global CIDRs: remote peers route to a cluster's global CIDR; its gateway (or p2p node)
  NETMAPs it to the real CIDR on the way in and back on the way out;
* encrypted pairs (both ends with elastic IPs under ``encryption.mode: auto``, or a mode of
  ipsec/wireguard): a tunnel between the two bridge nodes replaces their VXLAN routes.

The expensive part -- the routes, FDB and ARP entries toward every remote target -- depends
only on the *cluster* and role of the receiving node (and whether it has an elastic IP), so
it is computed once per such view and shared by all nodes that have it; that keeps a plan for
a thousand nodes to milliseconds per cluster instead of a pass per node.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kosmos.api import link, names
from kosmos.clusterlink.planner import addressing, targets
from kosmos.clusterlink.planner.inputs import ClusterNet, Inputs, Member
from kosmos.clusterlink.planner.targets import Target

Spec = dict[str, Any]
Hop = tuple[str, str, str, str]  # (next hop, device, its MAC, VTEP address)


@dataclass
class Plan:
    configs: dict[str, Spec] = field(default_factory=dict)  # ClusterNode name -> NodeConfig spec
    problems: dict[str, list[str]] = field(default_factory=dict)  # cluster -> messages
    gateways: dict[str, str] = field(default_factory=dict)  # cluster -> ClusterNode
    skipped: dict[str, str] = field(default_factory=dict)  # ClusterNode -> why no NodeConfig


@dataclass(frozen=True)
class View:
    """What every node of one cluster, role and elastic-IP-ness sends where."""

    routes: tuple[Spec, ...]
    fdbs: tuple[Spec, ...]  # unique and sorted as in a NodeConfig: by (dev, ip, mac)
    arps: tuple[Spec, ...]  # likewise, by (dev, ip)
    remote: Mapping[int, tuple[str, ...]]  # family -> remote CIDRs (for the ipsets)
    tunnel_peers: tuple[tuple[Member, tuple[str, ...]], ...]  # (peer, its CIDRs)


class _Planner:
    def __init__(self, inputs: Inputs) -> None:
        self.inputs = inputs
        self.gateways = targets.elect(inputs)
        self.bridge: dict[str, set[int]] = {}  # member -> families with vx-bridge
        self.local: dict[str, set[int]] = {}  # member -> families with vx-local
        self._assign_devices()
        found = targets.collect(inputs, self.gateways)
        self.dropped, self.blocked = targets.conflicts(inputs, found)
        self.targets = [t for t in found if t.owner in self.bridge and t not in self.dropped]
        self._views: dict[tuple[str, str, bool, frozenset[int], str], View] = {}
        self._hops: dict[tuple[str, str, int], Hop] = {}

    # --- roles and devices -----------------------------------------------------------------

    def is_gateway(self, member: Member) -> bool:
        gateway = self.gateways.get(member.cluster)
        return gateway is not None and gateway.name == member.name

    def _assign_devices(self) -> None:
        used: dict[str, str] = {}
        for member in self.inputs.members.values():
            cluster = self.inputs.clusters[member.cluster]
            families = set(cluster.families)
            if cluster.mode == "gateway":
                self.local[member.name] = families
            if cluster.mode == "p2p" or self.is_gateway(member):
                mine = set()
                for family in sorted(families):
                    address = self.bridge_address(member, family)
                    holder = used.setdefault(address, member.name)
                    if holder != member.name:
                        self.inputs.problem(
                            member.cluster,
                            f"ClusterNode {member.name} would get bridge address {address} "
                            f"already used by {holder} (same underlay/elastic IP); it gets no "
                            "cross-cluster tunnel",
                        )
                        continue
                    mine.add(family)
                if mine:
                    self.bridge[member.name] = mine

    def bridge_address(self, member: Member, family: int) -> str:
        pool = self.inputs.clusters[member.cluster].bridge_pools[family]
        return addressing.device_address(member.reachable(family), pool)

    def local_address(self, member: Member, family: int) -> str:
        pool = self.inputs.clusters[member.cluster].local_pools[family]
        return addressing.device_address(member.underlay(family), pool)

    def devices(self, member: Member) -> list[Spec]:
        out: list[Spec] = []
        for family in sorted(self.bridge.get(member.name, ())):
            out.append(
                self._device(member, link.bridge(family), self.bridge_address(member, family))
            )
        if self.inputs.clusters[member.cluster].direct_routing:
            return out
        for family in sorted(self.local.get(member.name, ())):
            out.append(self._device(member, link.local(family), self.local_address(member, family)))
        return out

    def _device(self, member: Member, kind: link.DeviceKind, address: str) -> Spec:
        return {
            "type": "vxlan",
            "name": kind.name,
            "addr": address,
            "mac": addressing.mac(member.name, kind.name),
            "bindDev": member.interface,
            "id": kind.vni,
            "port": kind.port,
        }

    # --- what a node sends where ----------------------------------------------------------

    def encrypted(self, a: Member, b: Member) -> str:
        """The tunnel type between bridge nodes ``a`` and ``b``, or '' for plain VXLAN."""
        modes = {
            self.inputs.clusters[a.cluster].encryption,
            self.inputs.clusters[b.cluster].encryption,
        }
        if "none" in modes:
            return ""
        if "wireguard" in modes:
            return "wireguard"
        if "ipsec" in modes or (a.elastic_ip and b.elastic_ip):
            return "ipsec"
        return ""

    def view(self, member: Member) -> View:
        role = "bridge" if member.name in self.bridge else "internal"
        families = frozenset(self.bridge.get(member.name, ()))
        direct = role == "internal" and self.inputs.clusters[member.cluster].direct_routing
        # Direct routes name the node's own NIC, which may differ from node to node.
        nic = member.interface if direct else ""
        key = (member.cluster, role, bool(member.elastic_ip), families, nic)
        if key not in self._views:
            self._views[key] = self._compute_view(member, role)
        return self._views[key]

    def _compute_view(self, member: Member, role: str) -> View:
        cluster = self.inputs.clusters[member.cluster]
        routes: dict[str, Spec] = {}
        fdbs: dict[tuple[str, str, str], Spec] = {}
        arps: dict[tuple[str, str], Spec] = {}
        remote: dict[int, set[str]] = {4: set(), 6: set()}
        peers: dict[str, tuple[Member, set[str]]] = {}
        gateway = self.gateways.get(member.cluster)
        for target in self.targets:
            if not self._reachable(cluster, member, target, role):
                continue
            owner = self.inputs.members[target.owner]
            cidr = str(target.cidr)
            # The bridge node that carries this traffic: the member itself, or its gateway.
            carrier = member if role == "bridge" else gateway
            assert carrier is not None  # _reachable checked it
            if self.encrypted(carrier, owner):
                # Pod CIDRs only: a userspace IPsec (libipsec) end must own an address in
                # each local subnet, which no node has in a service CIDR; services of an
                # encrypted peer are not reachable rather than sent in the clear -- also not
                # routed to the gateway by its internal nodes, where nothing would carry
                # them but the gateway's default route.
                if target.service:
                    continue
                if role == "bridge":
                    remote[target.family].add(cidr)
                    peers.setdefault(owner.name, (owner, set()))[1].add(cidr)
                    continue
            remote[target.family].add(cidr)
            if role == "bridge":
                via, device, mac, vtep = self._bridge_hop(owner, target.family)
            elif cluster.direct_routing:
                assert gateway is not None  # _reachable checked it
                # Plain routing on the shared segment: the kernel resolves the gateway's MAC.
                via = gateway.underlay(target.family)
                routes[cidr] = {"cidr": cidr, "gw": via, "dev": member.interface}
                continue
            else:
                assert gateway is not None  # _reachable checked it
                via, device, mac, vtep = self._local_hop(gateway, target.family)
            routes[cidr] = {"cidr": cidr, "gw": via, "dev": device}
            fdbs[(mac, vtep, device)] = {"ip": vtep, "mac": mac, "dev": device}
            arps[(via, device)] = {"ip": via, "mac": mac, "dev": device}
        return View(
            routes=tuple(routes[k] for k in sorted(routes)),
            # In the order config() wants them, so that nodes without entries of their own
            # (all but gateways) share these as they are instead of re-sorting a copy each.
            fdbs=tuple(_sorted(fdbs.values(), *FDB_KEY)),
            arps=tuple(_sorted(arps.values(), *ARP_KEY)),
            remote={f: tuple(sorted(v)) for f, v in remote.items()},
            tunnel_peers=tuple((m, tuple(sorted(c))) for _, (m, c) in sorted(peers.items())),
        )

    def _reachable(self, cluster: ClusterNet, member: Member, target: Target, role: str) -> bool:
        if target.cluster == cluster.name or target.family not in cluster.families:
            return False
        if (cluster.name, target) in self.blocked:
            return False
        if role == "bridge":
            return target.family in self.bridge.get(member.name, ())
        gateway = self.gateways.get(member.cluster)
        return gateway is not None and target.family in self.local.get(gateway.name, ())

    def _bridge_hop(self, owner: Member, family: int) -> Hop:
        # Memoised: every view asks again for the same owners, and deriving an address and a
        # MAC (ipaddress parsing, a hash) is most of a p2p view's cost otherwise.
        key = ("bridge", owner.name, family)
        if key not in self._hops:
            kind = link.bridge(family)
            via = addressing.ip_of(self.bridge_address(owner, family))
            mac = addressing.mac(owner.name, kind.name)
            self._hops[key] = (via, kind.name, mac, owner.reachable(family))
        return self._hops[key]

    def _local_hop(self, gateway: Member, family: int) -> Hop:
        key = ("local", gateway.name, family)
        if key not in self._hops:
            kind = link.local(family)
            via = addressing.ip_of(self.local_address(gateway, family))
            mac = addressing.mac(gateway.name, kind.name)
            self._hops[key] = (via, kind.name, mac, gateway.underlay(family))
        return self._hops[key]

    def gateway_entries(self, member: Member) -> tuple[list[Spec], list[Spec]]:
        """A gateway's FDB/ARP toward its internal nodes (return path of masqueraded traffic)."""
        fdbs: list[Spec] = []
        arps: list[Spec] = []
        if not self.is_gateway(member) or member.name not in self.local:
            return fdbs, arps
        if self.inputs.clusters[member.cluster].direct_routing:
            return fdbs, arps  # no vx-local: the internal nodes' hosts are masqueraded
        for other in self.inputs.members.values():
            if other.cluster != member.cluster or other.name == member.name:
                continue
            for family in sorted(self.local[member.name]):
                kind = link.local(family)
                mac = addressing.mac(other.name, kind.name)
                ip = addressing.ip_of(self.local_address(other, family))
                fdbs.append({"ip": other.underlay(family), "mac": mac, "dev": kind.name})
                arps.append({"ip": ip, "mac": mac, "dev": kind.name})
        return fdbs, arps

    # --- NAT, sets, tunnels ----------------------------------------------------------------

    def iptables(self, member: Member, view: View) -> list[Spec]:
        cluster = self.inputs.clusters[member.cluster]
        rules: list[tuple[str, str, str]] = []
        bridged = sorted(self.bridge.get(member.name, ()))
        if cluster.mode == "gateway" and self.is_gateway(member):
            for family in bridged:
                dev = link.bridge(family).name
                if not cluster.direct_routing:  # else no vx-local: see _direct_rules
                    rules.append(
                        (
                            "nat",
                            "POSTROUTING",
                            f"-s {cluster.local_pools[family]} -o {dev} -j MASQUERADE",
                        )
                    )
                rules.append(
                    (
                        "nat",
                        "POSTROUTING",
                        f"-s {cluster.bridge_pools[family]} ! -o {dev} -j MASQUERADE",
                    )
                )
        if bridged:
            for real, glob in cluster.global_map:
                if real.version not in bridged:
                    continue
                remote_set = link.IPSET_REMOTE[real.version]
                rules.append(("nat", "PREROUTING", f"-d {glob} -j NETMAP --to {real}"))
                if view.remote.get(real.version):  # the set exists only when it has entries
                    rules.append(
                        (
                            "nat",
                            "POSTROUTING",
                            f"-s {real} -m set --match-set {remote_set} dst -j NETMAP --to {glob}",
                        )
                    )
        for family in sorted(cluster.families):
            if not view.remote.get(family):
                continue
            remote_set = link.IPSET_REMOTE[family]
            for cidr in cluster.pod_cidrs:
                if cidr.version == family:
                    rules.append(
                        (
                            "nat",
                            "POSTROUTING",
                            f"-s {cidr} -m set --match-set {remote_set} dst -j ACCEPT",
                        )
                    )
        if cluster.direct_routing:
            rules += self._direct_rules(member, cluster)
        for device in self.devices(member):
            rules.append(("filter", "FORWARD", f"-i {device['name']} -j ACCEPT"))
            rules.append(("filter", "FORWARD", f"-o {device['name']} -j ACCEPT"))
        return [{"table": t, "chain": c, "rule": r} for t, c, r in rules]

    def _direct_rules(self, member: Member, cluster: ClusterNet) -> list[tuple[str, str, str]]:
        """Direct routing: the gateway masquerades what leaves ``vx-bridge`` from other than
        the cluster's pods (its internal nodes' hosts, which send from their NIC's address;
        the pods' traffic was accepted above). Forwarding between the pods and the NIC is the
        CNI's, as the return path is in both modes: no FORWARD rule of ours (an ipset match
        there costs every packet, measured in docs/clusterlink.md)."""
        if not self.is_gateway(member):
            return []
        return [
            ("nat", "POSTROUTING", f"-o {link.bridge(family).name} -j MASQUERADE")
            for family in sorted(self.bridge.get(member.name, ()))
        ]

    def ipsets(self, view: View) -> list[Spec]:
        return [
            {"name": link.IPSET_REMOTE[family], "type": "hash:net", "entries": list(cidrs)}
            for family, cidrs in sorted(view.remote.items())
            if cidrs
        ]

    def tunnels(self, member: Member, view: View) -> list[Spec]:
        out: list[Spec] = []
        cluster = self.inputs.clusters[member.cluster]
        gateway = self.gateways.get(member.cluster)
        mine = [str(c) for c in targets.owned(cluster, member, gateway, services=False)]
        if not mine:
            # A node that owns no pod CIDR has nothing to send through a tunnel, and a tunnel
            # without local subnets is refused by the CRD (minItems 1) -- with it, the apply
            # of the whole NodeConfig.
            return out
        for peer, cidrs in view.tunnel_peers:
            family = 4 if member.ip and peer.reachable(4) else 6
            key_cluster = self.inputs.clusters[min(member.cluster, peer.cluster)]
            out.append(
                {
                    "name": tunnel_name(peer.name),
                    "type": self.encrypted(member, peer),
                    "localAddress": member.underlay(family),
                    "remoteAddress": peer.reachable(family),
                    "localID": member.reachable(family),
                    "remoteID": peer.reachable(family),
                    "localSubnets": mine,
                    "remoteSubnets": list(cidrs),
                    **({"remotePublicKey": peer.public_key} if peer.public_key else {}),
                    "keySecretRef": {
                        "name": key_cluster.key_secret,
                        "namespace": names.SYSTEM_NAMESPACE,
                        "key": key_cluster.key_field,
                    },
                }
            )
        return out

    # --- one node -------------------------------------------------------------------------

    def config(self, member: Member) -> Spec:
        view = self.view(member)
        gw_fdbs, gw_arps = self.gateway_entries(member)
        spec: Spec = {
            "devices": self.devices(member),
            "routes": list(view.routes),
            "fdbs": _sorted([*view.fdbs, *gw_fdbs], *FDB_KEY) if gw_fdbs else list(view.fdbs),
            "arps": _sorted([*view.arps, *gw_arps], *ARP_KEY) if gw_arps else list(view.arps),
            "iptables": self.iptables(member, view),
            "ipsets": self.ipsets(view),
            "tunnels": self.tunnels(member, view),
        }
        return {k: v for k, v in spec.items() if v}


FDB_KEY = ("dev", "ip", "mac")
ARP_KEY = ("dev", "ip")


def _sorted(items: Iterable[Spec], *keys: str) -> list[Spec]:
    unique = {tuple(i[k] for k in keys): i for i in items}
    return [unique[k] for k in sorted(unique)]


def tunnel_name(peer: str) -> str:
    if len(peer) <= 63:
        return peer
    return f"{peer[:54]}-{hashlib.sha256(peer.encode()).hexdigest()[:8]}"


def compute(inputs: Inputs) -> Plan:
    """The plan for every usable ClusterNode; problems and skipped nodes say what is missing."""
    planner = _Planner(inputs)
    plan = Plan(
        gateways={c: m.name for c, m in planner.gateways.items()},
        skipped=dict(inputs.skipped),
    )
    for name, member in sorted(inputs.members.items()):
        plan.configs[name] = planner.config(member)
    plan.problems = {c: list(m) for c, m in inputs.problems.items()}
    return plan
