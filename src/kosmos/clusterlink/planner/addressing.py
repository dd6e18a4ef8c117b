"""Device addresses and MACs, derived so that they are the same on every computation.

A device's address keeps the host bits of the node's underlay address under the pool's network
bits (192.168.10.11 in 220.0.0.0/8 -> 220.168.10.11/8), so it can be read back to the
node. MACs are derived from the ClusterNode name and device (random ones would have to be
remembered somewhere), locally administered and unicast.
"""

from __future__ import annotations

import hashlib
import ipaddress


def device_address(underlay: str, pool: str) -> str:
    """``ip/prefix`` in ``pool`` with the host bits of ``underlay``."""
    net = ipaddress.ip_network(pool, strict=False)
    ip = ipaddress.ip_address(underlay)
    if ip.version != net.version:
        raise ValueError(f"{underlay} and pool {pool} are of different IP families")
    host_mask = (1 << (net.max_prefixlen - net.prefixlen)) - 1
    value = int(net.network_address) | (int(ip) & host_mask)
    address = ipaddress.IPv4Address(value) if net.version == 4 else ipaddress.IPv6Address(value)
    return f"{address}/{net.prefixlen}"


def mac(node: str, device: str) -> str:
    """A stable, locally administered unicast MAC for ``device`` on ClusterNode ``node``."""
    digest = bytearray(hashlib.sha256(f"{node}/{device}".encode()).digest()[:6])
    digest[0] = (digest[0] | 0x02) & 0xFE
    return ":".join(f"{b:02x}" for b in digest)


def ip_of(address: str) -> str:
    return address.split("/", 1)[0]
