"""Kernel objects as frozen, hashable values: what the agent wants and what the kernel has.

Both sides of a sync are sets of these, so the difference is plain set arithmetic. Fields
are normalised on construction by the readers and by ``kosmos.net.state`` (addresses in
compressed form, MACs lower case), which is what makes equality meaningful.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Family = int  # 4 or 6

#: Routes the agent owns live in this table, looked up by a rule of this priority.
ROUTE_TABLE = 200
RULE_PRIORITY = 200


@dataclass(frozen=True, order=True)
class Vxlan:
    """A VXLAN device bound to an underlay device, with one address."""

    name: str
    vni: int
    port: int
    bind_dev: str
    local: str
    mac: str
    address: str  # "ip/prefix"
    mtu: int

    @property
    def family(self) -> Family:
        return 6 if ":" in self.address else 4

    def same_link(self, other: Vxlan) -> bool:
        """Whether ``other`` can be turned into this device in place (no delete and re-add)."""
        return (self.name, self.vni, self.port, self.bind_dev, self.local) == (
            other.name,
            other.vni,
            other.port,
            other.bind_dev,
            other.local,
        )


@dataclass(frozen=True, order=True)
class Route:
    dst: str  # normalised CIDR
    gateway: str
    dev: str
    table: int = ROUTE_TABLE

    @property
    def family(self) -> Family:
        return 6 if ":" in self.dst else 4


@dataclass(frozen=True, order=True)
class Fdb:
    """Bridge forwarding entry on a VXLAN device: frames for ``mac`` go to VTEP ``dst``."""

    mac: str
    dst: str
    dev: str


@dataclass(frozen=True, order=True)
class Neigh:
    """A permanent ARP (IPv4) or NDP (IPv6) entry."""

    ip: str
    mac: str
    dev: str

    @property
    def family(self) -> Family:
        return 6 if ":" in self.ip else 4


@dataclass(frozen=True, order=True)
class Rule:
    """``ip rule``: look up ``table`` at ``priority`` for every packet of the family."""

    family: Family
    table: int = ROUTE_TABLE
    priority: int = RULE_PRIORITY


@dataclass(frozen=True, order=True)
class Chain:
    """The whole contents of one chain the agent owns, jumped to from a built-in chain."""

    family: Family
    table: str
    name: str  # e.g. KOSMOS-POSTROUTING
    parent: str  # e.g. POSTROUTING
    rules: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[Family, str, str]:
        return (self.family, self.table, self.name)


@dataclass(frozen=True, order=True)
class IPSet:
    name: str
    type: str = "hash:net"
    family: Family = 4
    entries: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True, order=True)
class Drop:
    """A DROP or REJECT rule somebody else wrote, and what it matches (``!x``: not x).

    Read from ``iptables-save``; an empty field matches anything.
    """

    family: Family
    table: str
    chain: str
    rule: str  # as iptables-save prints it, without "-A <chain>"
    source: str = ""
    destination: str = ""
    protocol: str = ""
    dport: str = ""  # a port, a range "a:b" or a list "a,b"
    backend: str = ""  # "-legacy", "-nft" or "" (the tools' default)
