"""What an encrypted tunnel between two nodes is, whichever daemon carries it.

The agent turns each NodeConfig ``Tunnel`` into a :class:`TunnelSpec` (deriving the per-pair
key itself) and hands the full desired set to a :class:`TunnelBackend` on every reconcile.
Both backends (strongSwan in ``kosmos.net.ipsec``, WireGuard in ``kosmos.net.wireguard``)
route the remote subnets through their device in routing table :data:`TABLE`, looked up by a
rule at priority :data:`RULE_PRIORITY`, so the VXLAN plan's table 200 never holds a route for
a tunnelled subnet.

    NetError (kosmos.net.errors)
    └── TunnelError      a daemon or the kernel refused, or a daemon is not reachable
    └── InvalidTunnel    a TunnelSpec that no daemon could accept (also a ValueError)

Messages never contain key material: a spec's ``psk`` is left out of its ``repr``, and the
adapters word their errors from the operation, never from the message they sent.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from kosmos.net.errors import NetError

TABLE = 220
"""Routing table for tunnelled remote subnets (strongSwan's default; the VXLAN plan uses 200)."""
RULE_PRIORITY = 220
"""Priority of the ``lookup 220`` rule: after the VXLAN plan's rule 200, before ``main``."""

MIN_PSK_BYTES = 16
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$")


class TunnelError(NetError):
    """A tunnel could not be set up, inspected or removed; the message names the operation."""

    def __init__(self, message: str, *, item: str = "") -> None:
        super().__init__(message, item=item)


class InvalidTunnel(TunnelError, ValueError):
    """A TunnelSpec that is wrong in itself (bad address, subnet, name or key length)."""


@dataclass(frozen=True)
class TunnelSpec:
    """One encrypted tunnel from this node to a peer node, as both backends need it.

    ``local_address`` is this node's own underlay IP (may be a private IP behind 1:1 NAT) and
    ``remote_address`` the peer's reachable IP (its elastic/public IP). The ids are how the
    ends recognise each other when NAT rewrites addresses: ``local_id`` is my public IP,
    ``remote_id`` the peer's; they default to the addresses. ``remote_public_key`` (base64)
    is WireGuard's peer key, published by the peer's agent; IPsec ignores it.
    """

    name: str
    local_address: str
    remote_address: str
    local_subnets: tuple[str, ...]
    remote_subnets: tuple[str, ...]
    psk: bytes = field(repr=False)
    local_id: str | None = None
    remote_id: str | None = None
    remote_public_key: str | None = None

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise InvalidTunnel(f"tunnel name {self.name!r} is not a DNS label")
        for what in ("local_address", "remote_address"):
            _check_address(self.name, what, getattr(self, what))
        for what in ("local_subnets", "remote_subnets"):
            _check_subnets(self.name, what, getattr(self, what))
        if not isinstance(self.psk, bytes) or len(self.psk) < MIN_PSK_BYTES:
            raise InvalidTunnel(f"tunnel {self.name}: psk must be at least {MIN_PSK_BYTES} bytes")

    @property
    def me(self) -> str:
        """The identity this node shows the peer (its public address unless told otherwise)."""
        return self.local_id or self.local_address

    @property
    def peer(self) -> str:
        """The identity the peer must show."""
        return self.remote_id or self.remote_address

    @property
    def initiator(self) -> bool:
        """Whether this end opens the tunnel: exactly one end of a pair does.

        Both ends initiating at once makes strongSwan keep duplicate IKE SAs (measured), so the
        end with the smaller identity initiates and the other answers. Both ends compute the
        same answer from the same pair of identities.
        """
        return _order(self.me) < _order(self.peer)


def _check_address(name: str, what: str, value: str) -> None:
    try:
        ipaddress.ip_address(value)
    except ValueError as e:
        raise InvalidTunnel(f"tunnel {name}: {what} {value!r} is not an IP address") from e


def _check_subnets(name: str, what: str, values: tuple[str, ...]) -> None:
    if not isinstance(values, tuple) or not values:
        raise InvalidTunnel(f"tunnel {name}: {what} must be a non-empty tuple")
    for value in values:
        try:
            ipaddress.ip_network(value, strict=True)
        except ValueError as e:
            raise InvalidTunnel(f"tunnel {name}: {what} has {value!r}, not a CIDR") from e


def _order(identity: str) -> tuple[int, int, str]:
    """Sort key for identities: addresses numerically (v4 before v6), other ids by text."""
    try:
        address = ipaddress.ip_address(identity)
    except ValueError:
        return (1, 0, identity)
    return (0, address.version * 2**128 + int(address), "")


def check_unique(tunnels: Sequence[TunnelSpec]) -> None:
    """Reject a desired set that names one tunnel twice (the second would silently win)."""
    seen: set[str] = set()
    for spec in tunnels:
        if spec.name in seen:
            raise InvalidTunnel(f"tunnel {spec.name} is listed twice")
        seen.add(spec.name)


@dataclass(frozen=True)
class TunnelState:
    """What the daemon says about one tunnel, for the agent's NodeConfig status."""

    name: str
    established: bool
    detail: str


class TunnelBackend(Protocol):
    """One daemon per node that converges a desired set of tunnels (level-based)."""

    async def start(self) -> None:
        """Start or adopt this node's daemon; a no-op when it already runs."""
        ...

    async def ensure(self, tunnels: Sequence[TunnelSpec]) -> list[TunnelState]:
        """Converge on exactly ``tunnels``: add or replace changed ones, remove extra ones,
        initiate; cheap when nothing changed. Returns the state of each desired tunnel."""
        ...

    async def status(self) -> list[TunnelState]:
        """The state of every tunnel the daemon knows about."""
        ...

    async def stop(self) -> None:
        """Remove every tunnel this backend created and stop its daemon."""
        ...
