"""NodeConfig spec (raw API dict) -> the kernel state ``kosmos.net`` converges to (pure).

What only the node knows is filled in here from its underlay devices: a VXLAN device's local
address (the bind device's address of the device's family) and its MTU (the bind device's
MTU minus VXLAN overhead, unless the spec says otherwise). An item that cannot be built --
its bind device does not exist, a CIDR does not parse -- is returned as a failure and left
out; the rest still forms a usable state.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kosmos.api import link
from kosmos.net.netlink import LinkInfo
from kosmos.net.objects import Chain, Fdb, IPSet, Neigh, Route, Rule, Vxlan
from kosmos.net.state import NodeState
from kosmos.net.sync import OWNED_DEVICES

Spec = Mapping[str, Any]
CHAIN_PREFIX = "KOSMOS-"


@dataclass
class Desired:
    state: NodeState
    failures: list[tuple[str, str]] = field(default_factory=list)  # (item, why)


def _ip(value: str) -> str:
    return str(ipaddress.ip_address(value))


def _cidr(value: str) -> str:
    return str(ipaddress.ip_network(value, strict=False))


def device(spec: Spec, binds: Mapping[str, LinkInfo]) -> Vxlan:
    """One VXLAN device; ``KeyError``/``ValueError`` say why it cannot be built."""
    name, bind_name = spec["name"], spec.get("bindDev", "")
    bind = binds.get(bind_name)
    if bind is None:
        raise KeyError(f"bind device {bind_name!r} does not exist on this node")
    address = str(ipaddress.ip_interface(spec["addr"]))
    family = 6 if ":" in address else 4
    local = bind.address(family)
    if local is None:
        raise ValueError(f"bind device {bind_name} has no IPv{family} address")
    mtu = int(spec.get("mtu") or bind.mtu - link.VXLAN_OVERHEAD[6 if ":" in local else 4])
    return Vxlan(
        name=name,
        vni=int(spec["id"]),
        port=int(spec["port"]),
        bind_dev=bind_name,
        local=_ip(local),
        mac=spec["mac"].lower(),
        address=address,
        mtu=mtu,
    )


def rule_family(rule: str) -> tuple[int, ...]:
    """Which iptables a rule belongs to: by the addresses it names, else both."""
    families: set[int] = set()
    for word in rule.replace(",", " ").split():
        try:
            families.add(ipaddress.ip_network(word, strict=False).version)
        except ValueError:
            continue
    if "kosmos-remote6" in rule:
        families.add(6)
    return tuple(sorted(families)) or (4, 6)


def chains(entries: list[Spec], families: set[int]) -> frozenset[Chain]:
    grouped: dict[tuple[int, str, str], list[str]] = {}
    for entry in entries:
        for family in rule_family(entry["rule"]):
            if family in families:
                key = (family, entry["table"], entry["chain"])
                grouped.setdefault(key, []).append(entry["rule"])
    return frozenset(
        Chain(family, table, CHAIN_PREFIX + parent, parent, tuple(rules))
        for (family, table, parent), rules in grouped.items()
    )


def sysctls(
    devices: list[Vxlan], families: set[int], nics: Iterable[str] = ()
) -> tuple[tuple[str, str], ...]:
    """Forwarding for the families in use; loose reverse-path filtering on the tunnel path:
    the devices, the NICs they are bound to, and the NICs that direct routes leave by (an
    internal node's NIC keeps the loose filtering it had as the bind device of vx-local)."""
    wanted: dict[str, str] = {}
    if 4 in families:
        wanted["net.ipv4.ip_forward"] = "1"
    if 6 in families:
        wanted["net.ipv6.conf.all.forwarding"] = "1"
    for name in {n for d in devices for n in (d.name, d.bind_dev)} | set(nics):
        if "." not in name:
            wanted[f"net.ipv4.conf.{name}.rp_filter"] = "2"
    return tuple(sorted(wanted.items()))


def _set_entries(spec: Spec, failures: list[tuple[str, str]]) -> frozenset[str]:
    """A set's entries; unlike route CIDRs the CRD does not check them, so one that does not
    parse is a failure of its own instead of failing the whole build."""
    entries: set[str] = set()
    for entry in spec.get("entries") or []:
        try:
            entries.add(_cidr(entry))
        except ValueError as exc:
            failures.append((f"ipset {spec['name']} entry {entry}", str(exc)))
    return frozenset(entries)


def build(spec: Spec, binds: Mapping[str, LinkInfo]) -> Desired:
    failures: list[tuple[str, str]] = []
    devices: list[Vxlan] = []
    for item in spec.get("devices") or []:
        try:
            devices.append(device(item, binds))
        except (KeyError, ValueError) as exc:
            failures.append((f"device {item.get('name', '?')}", str(exc).strip("'\"")))
    names = {d.name for d in devices}
    families = {d.family for d in devices}
    routes, fdbs, neighbours = set(), set(), set()
    for item in spec.get("routes") or []:
        # over a device of ours once it is built (else its failure says why); over another
        # device (the node's NIC, direct routing) always: the Dataplane reports one missing
        dev = item.get("dev") or ""
        if dev in names or (dev and dev not in OWNED_DEVICES):
            try:
                routes.add(
                    Route(
                        _cidr(item["cidr"]), _ip(item["gw"]) if item.get("gw") else "", item["dev"]
                    )
                )
            except ValueError as exc:
                failures.append((f"route {item.get('cidr')}", str(exc)))
    for item in spec.get("fdbs") or []:
        if item.get("dev") in names:
            fdbs.add(Fdb(item["mac"].lower(), _ip(item["ip"]), item["dev"]))
    for item in spec.get("arps") or []:
        if item.get("dev") in names:
            neighbours.add(Neigh(_ip(item["ip"]), item["mac"].lower(), item["dev"]))
    route_families = {r.family for r in routes}
    ipsets = frozenset(
        IPSet(
            s["name"],
            s.get("type", "hash:net"),
            6 if s["name"].endswith("6") else 4,
            _set_entries(s, failures),
        )
        for s in spec.get("ipsets") or []
    )
    return Desired(
        NodeState(
            devices=frozenset(devices),
            routes=frozenset(routes),
            fdbs=frozenset(fdbs),
            neighbours=frozenset(neighbours),
            rules=frozenset(Rule(f) for f in route_families),
            chains=chains(list(spec.get("iptables") or []), families or {4, 6}),
            ipsets=ipsets,
            sysctls=sysctls(
                devices, families | route_families, {r.dev for r in routes if r.dev not in names}
            ),
        ),
        failures,
    )
