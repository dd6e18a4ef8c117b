"""A node's kernel against its NodeConfig: each difference, and the node pairs it breaks (pure).

The desired state is what the agent itself would program (``agent.desired.build`` with the
node's real bind devices, from the dump); the actual one is ``kosmos agent-state``'s dump.
Every difference becomes a :class:`Finding` naming the peers (``cluster/node``) whose
traffic with this node it breaks, followed along the path a packet takes:

* a route -> the peers whose pod CIDRs it covers;
* a neighbour entry -> the routes through that next hop, so their peers (else the node
  whose device has that address);
* an FDB entry -> the neighbour entries with its MAC, so their routes' peers (else the
  node whose underlay address is the VTEP: a gateway's return path to its own nodes);
* a device, the ip rule, the owned chains, forwarding: every peer routed that way;
* an ipset -> the peers of the entries that differ;
* a foreign DROP/REJECT whose addresses overlap a peer's on one side and this node's on the
  other (or are absent there) -> those peers: "pod" when it hits their pod CIDRs or the
  tunnel's UDP, "node" when it hits their node addresses. Rules without any address (the
  conntrack INVALID drops every kube-proxy writes, a chain policy) are not attributed: they
  are every node's normal state. Whether a foreign chain is reached at all is not evaluated.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kosmos.clusterlink.agent import desired
from kosmos.clusterlink.peers import Link, Network, Peer
from kosmos.net.iptables import normalise_rule
from kosmos.net.objects import Drop, Fdb, Neigh, Route, Rule, Vxlan
from kosmos.net.snapshot import Snapshot
from kosmos.net.state import NodeState

KINDS = ("device", "route", "fdb", "neighbour", "rule", "iptables", "ipset", "sysctl", "drop")
POD, NODE = "pod", "node"
#: the start of a ``Snapshot.errors`` line -> the kinds that part holds (not compared then:
#: what could not be read is not missing)
UNREAD = {
    "devices, routes": ("device", "route", "fdb", "neighbour", "rule"),
    "iptables": ("iptables",),
    "ipsets": ("ipset",),
    "sysctl": ("sysctl",),
}


@dataclass(frozen=True, order=True)
class Finding:
    node: str  # ClusterNode name of the node whose kernel this is
    kind: str  # one of KINDS, or "read" (a part of the kernel could not be read)
    state: str  # missing | unexpected | differs | drops | failed
    entry: str
    breaks: tuple[str, ...] = ()  # peers, "cluster/node" ("cluster/*": its services)
    traffic: tuple[str, ...] = ()  # "pod" (through the tunnel), "node"


def analyze(node: str, spec: Mapping[str, Any], snap: Snapshot, link: Link) -> list[Finding]:
    """Every finding of ClusterNode ``node`` (its NodeConfig ``spec``, its kernel ``snap``)."""
    binds = {name: info for name, info in snap.binds.items() if info is not None}
    want = desired.build(spec, binds)
    paths = _Paths(node, want.state, snap.state, link, _spec_routes(spec))
    found = [_unbuilt(node, item, why, paths) for item, why in want.failures]
    found += [Finding(node, "read", "failed", error) for error in snap.errors]
    skip = {
        kind
        for e in snap.errors
        for part, kinds in UNREAD.items()
        if e.startswith(part)
        for kind in kinds
    }
    found += compare(node, want.state, snap.state, paths, skip)
    found += drops(node, snap.drops, want.state, link)
    return sorted(set(found), key=lambda f: (KINDS.index(f.kind) if f.kind in KINDS else 99, f))


def _spec_routes(spec: Mapping[str, Any]) -> set[Route]:
    """The spec's routes as written, also those on devices that could not be built (which
    ``desired.build`` leaves out): they say whom a missing device cuts off."""
    routes: set[Route] = set()
    for item in spec.get("routes") or []:
        try:
            dst = str(ipaddress.ip_network(item.get("cidr", ""), strict=False))
        except ValueError:
            continue
        routes.add(Route(dst, str(item.get("gw") or ""), str(item.get("dev") or "")))
    return routes


def _unbuilt(node: str, item: str, why: str, paths: _Paths) -> Finding:
    """A spec item the agent cannot build either (its bind device is absent, ...)."""
    kind, _, rest = item.partition(" ")
    if kind == "device":
        return Finding(node, kind, "missing", f"{item}: {why}", *paths.device(rest))
    if kind == "route":
        cidrs = [rest] if _is_cidr(rest) else []
        return Finding(node, kind, "missing", f"{item}: {why}", *paths.cidrs(cidrs))
    return Finding(node, kind if kind in KINDS else "device", "missing", f"{item}: {why}")


def _is_cidr(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


def _labels(peers: Iterable[Peer]) -> tuple[str, ...]:
    return tuple(sorted({p.label for p in peers}))


class _Paths:
    """Which peers depend on an entry, through the entries that lead to it."""

    def __init__(
        self,
        node: str,
        want: NodeState,
        actual: NodeState,
        link: Link,
        extra_routes: Iterable[Route] = (),
    ) -> None:
        self.node, self.link = node, link
        self.routes = want.routes | actual.routes | set(extra_routes)
        self.neighbours = want.neighbours | actual.neighbours

    def _pod(self, peers: Iterable[Peer]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        labels = _labels(p for p in peers if p.name != self.node)
        return labels, (POD,) if labels else ()

    def route(self, route: Route) -> tuple[tuple[str, ...], tuple[str, ...]]:
        dst = ipaddress.ip_network(route.dst)
        labels, traffic = self._pod(self.link.covered(dst, exclude=self.node))
        if not labels:
            labels = tuple(f"{c}/*" for c in self.link.services_of(dst))
            traffic = (POD,) if labels else ()
        return labels, traffic

    def _routes(self, routes: Iterable[Route]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        labels = sorted({label for r in routes for label in self.route(r)[0]})
        return tuple(labels), (POD,) if labels else ()

    def neighbour(self, entry: Neigh) -> tuple[tuple[str, ...], tuple[str, ...]]:
        via = [r for r in self.routes if r.gateway == entry.ip and r.dev == entry.dev]
        found = self._routes(via)
        return found if found[0] else self._pod(self.link.by_device_ip(entry.ip))

    def fdb(self, entry: Fdb) -> tuple[tuple[str, ...], tuple[str, ...]]:
        hops = [n for n in self.neighbours if n.mac == entry.mac and n.dev == entry.dev]
        via = [r for r in self.routes for n in hops if (r.gateway, r.dev) == (n.ip, n.dev)]
        found = self._routes(via)
        return found if found[0] else self._pod(self.link.by_underlay(entry.dst))

    def device(self, name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        found = self._routes(r for r in self.routes if r.dev == name)
        if found[0]:
            return found
        peers = [p for n in self.neighbours if n.dev == name for p in self.link.by_mac(n.mac)]
        return self._pod(peers)

    def family(self, family: int | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return self._routes(r for r in self.routes if family in (None, r.family))

    def cidrs(self, cidrs: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return self._routes(Route(c, "", "") for c in cidrs)


def _pairs(
    wanted: Iterable[Any], actual: Iterable[Any], key: Any
) -> tuple[list[Any], list[Any], list[tuple[Any, Any]]]:
    """(missing, unexpected, differs as (actual, wanted)) matched by ``key``."""
    want_set, have_set = set(wanted), set(actual)
    missing = sorted(want_set - have_set)
    extra = sorted(have_set - want_set)
    by_key = {key(a): a for a in extra}
    differs = [(by_key.pop(key(w)), w) for w in missing if key(w) in by_key]
    paired = {id(w) for _, w in differs}
    return [w for w in missing if id(w) not in paired], list(by_key.values()), differs


def _vxlan(d: Vxlan) -> str:
    return (
        f"{d.name} vxlan id {d.vni} dstport {d.port} dev {d.bind_dev} local {d.local} "
        f"mac {d.mac} addr {d.address} mtu {d.mtu}"
    )


def _route(r: Route) -> str:
    via = f" via {r.gateway}" if r.gateway else ""
    return f"{r.dst}{via} dev {r.dev} table {r.table}"


def _fdb(f: Fdb) -> str:
    return f"{f.mac} dst {f.dst} dev {f.dev}"


def _neigh(n: Neigh) -> str:
    return f"{n.ip} lladdr {n.mac} dev {n.dev}"


def _rule(r: Rule) -> str:
    return f"IPv{r.family} lookup {r.table} priority {r.priority}"


def compare(
    node: str, want: NodeState, actual: NodeState, paths: _Paths, skip: set[str] | None = None
) -> list[Finding]:
    """The differences between two states, kind by kind."""
    out: list[Finding] = []

    def add(
        kind: str, state: str, entry: str, why: tuple[tuple[str, ...], tuple[str, ...]]
    ) -> None:
        out.append(Finding(node, kind, state, entry, *why))

    skip = skip or set()
    if {"device", "route"} <= skip:
        want = NodeState(chains=want.chains, ipsets=want.ipsets, sysctls=want.sysctls)
        actual = NodeState(chains=actual.chains, ipsets=actual.ipsets, sysctls=actual.sysctls)
    missing, extra, differs = _pairs(want.devices, actual.devices, lambda d: d.name)
    for d in missing + extra:
        add("device", "missing" if d in missing else "unexpected", _vxlan(d), paths.device(d.name))
    for have, wanted in differs:
        add("device", "differs", f"{_vxlan(have)} (want {_vxlan(wanted)})", paths.device(have.name))
    entries: list[tuple[str, Any, Any, Any, Any]] = [
        ("route", want.routes, actual.routes, lambda r: (r.dst, r.table), (_route, paths.route)),
        ("fdb", want.fdbs, actual.fdbs, lambda f: (f.mac, f.dev), (_fdb, paths.fdb)),
        ("neighbour", want.neighbours, actual.neighbours, lambda n: (n.ip, n.dev),
         (_neigh, paths.neighbour)),
    ]  # fmt: skip
    for kind, wanted_set, actual_set, key, (text, why) in entries:
        missing, extra, differs = _pairs(wanted_set, actual_set, key)
        for item in missing:
            add(kind, "missing", text(item), why(item))
        for item in extra:
            add(kind, "unexpected", text(item), why(item))
        for have, wanted in differs:
            add(kind, "differs", f"{text(have)} (want {text(wanted)})", why(wanted))
    for r in sorted(want.rules - actual.rules):
        add("rule", "missing", _rule(r), paths.family(r.family))
    for r in sorted(actual.rules - want.rules):
        add("rule", "unexpected", _rule(r), paths.family(r.family))
    if "iptables" not in skip:
        out += _chains(node, want, actual, paths)
    if "ipset" not in skip:
        out += _ipsets(node, want, actual, paths)
    have = dict(actual.sysctls) if "sysctl" not in skip else {}
    for key, value in want.sysctls:
        if key in have and have[key] != value:
            dev = key.split(".")[3] if ".conf." in key and "all" not in key else ""
            why = paths.device(dev) if dev else paths.family(6 if "ipv6" in key else 4)
            add("sysctl", "differs", f"{key} = {have[key]} (want {value})", why)
    return out


def _chains(node: str, want: NodeState, actual: NodeState, paths: _Paths) -> list[Finding]:
    out: list[Finding] = []
    have = {c.key: c for c in actual.chains}
    for chain in sorted(want.chains):
        name = f"IPv{chain.family} {chain.table} {chain.name}"
        current = have.pop(chain.key, None)
        why = paths.family(chain.family)
        if current is None:
            out.append(Finding(node, "iptables", "missing", f"{name} (from {chain.parent})", *why))
            continue
        if current.parent != chain.parent:
            out.append(
                Finding(node, "iptables", "differs", f"{name}: no jump from {chain.parent}", *why)
            )
        wanted_rules = [normalise_rule(r) for r in chain.rules]
        actual_rules = [normalise_rule(r) for r in current.rules]
        if wanted_rules != actual_rules:
            lost = [r for r in wanted_rules if r not in actual_rules]
            more = [r for r in actual_rules if r not in wanted_rules]
            detail = "; ".join([*(f"missing {r}" for r in lost), *(f"extra {r}" for r in more)])
            out.append(
                Finding(node, "iptables", "differs", f"{name}: {detail or 'rule order'}", *why)
            )
    for chain in sorted(have.values()):
        if chain.rules:
            text = f"IPv{chain.family} {chain.table} {chain.name}: {len(chain.rules)} rule(s)"
            out.append(Finding(node, "iptables", "unexpected", text, *paths.family(chain.family)))
    return out


def _ipsets(node: str, want: NodeState, actual: NodeState, paths: _Paths) -> list[Finding]:
    out: list[Finding] = []
    have = {s.name: s for s in actual.ipsets}
    for s in sorted(want.ipsets):
        current = have.pop(s.name, None)
        if current is None:
            out.append(
                Finding(node, "ipset", "missing", f"{s.name} {s.type}", *paths.cidrs(s.entries))
            )
            continue
        lost, more = sorted(s.entries - current.entries), sorted(current.entries - s.entries)
        if lost or more:
            detail = "; ".join([*(f"missing {e}" for e in lost), *(f"extra {e}" for e in more)])
            why = paths.cidrs([*lost, *more])
            out.append(Finding(node, "ipset", "differs", f"{s.name}: {detail}", *why))
    for s in sorted(have.values()):
        out.append(Finding(node, "ipset", "unexpected", f"{s.name} {s.type}"))
    return out


# --- foreign DROP/REJECT rules ----------------------------------------------------------------


def _matches(spec: str, nets: Iterable[Network]) -> bool:
    """Whether an iptables address match (``!`` negates) can match an address in ``nets``."""
    if not spec:
        return True
    negate = spec.startswith("!")
    try:
        rule_net = ipaddress.ip_network(spec.lstrip("!"), strict=False)
    except ValueError:
        return False
    for net in nets:
        if net.version != rule_net.version:
            continue
        if negate and not net.subnet_of(rule_net):  # type: ignore[arg-type]
            return True
        if not negate and net.overlaps(rule_net):
            return True
    return False


def _hosts(ips: Iterable[str]) -> list[Network]:
    return [ipaddress.ip_network(ip) for ip in ips]


def _hits(rule: Drop, local: list[Network], remote: list[Network]) -> bool:
    """Whether the rule can drop traffic between ``local`` and ``remote`` (either way)."""
    out = _matches(rule.source, local) and _matches(rule.destination, remote)
    back = _matches(rule.source, remote) and _matches(rule.destination, local)
    return out or back


def _tunnel_port(rule: Drop, ports: set[int]) -> bool:
    """Whether the rule matches the VXLAN traffic of a device (UDP to its port)."""
    if rule.protocol.lstrip("!") not in {"", "udp", "17"} or rule.protocol.startswith("!"):
        return False
    if not rule.dport:
        return True
    for part in rule.dport.lstrip("!").split(","):
        low, _, high = part.partition(":")
        try:
            if any(int(low) <= p <= int(high or low) for p in ports):
                return not rule.dport.startswith("!")
        except ValueError:
            continue
    return False


def drops(node: str, rules: Iterable[Drop], want: NodeState, link: Link) -> list[Finding]:
    me = link.peers.get(node)
    cluster = link.clusters.get(me.cluster) if me else None
    local = _hosts(me.underlay | me.device_ips) + list(me.pod_cidrs) if me else []
    if cluster is not None and cluster.mode == "gateway":
        local += list(cluster.seen(cluster.pod_cidrs))
    ports = {d.port for d in want.devices}
    out: list[Finding] = []
    for rule in rules:
        if not (rule.source or rule.destination or (rule.dport and _tunnel_port(rule, ports))):
            continue
        hit: dict[str, set[str]] = {}
        for peer in link.peers.values():
            if me is not None and peer.cluster == me.cluster:
                continue
            node_ips = _hosts(peer.underlay)
            if _hits(rule, local, list(peer.pod_cidrs)):
                hit.setdefault(peer.label, set()).add(POD)
            if _hits(rule, local, node_ips):
                hit.setdefault(peer.label, set()).add(NODE)
                if _tunnel_port(rule, ports) and ports:
                    hit[peer.label].add(POD)
        if hit:
            text = f"IPv{rule.family} {rule.table} {rule.chain} {rule.rule}"
            if rule.backend:
                text += f" (iptables{rule.backend})"
            traffic = tuple(sorted(set().union(*hit.values())))
            out.append(Finding(node, "drop", "drops", text, tuple(sorted(hit)), traffic))
    return out
