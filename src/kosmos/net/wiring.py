"""Network namespaces wired to a bridge by veth pairs: the networks of the local real nodes.

A cluster network is a bridge inside a namespace of its own; the host joins it with one veth
(its end carries the cluster's host address) and every node namespace with another (``eth0``
inside the node). Keeping the bridge out of the host's namespace means the host's iptables,
its ``bridge-nf-call-iptables`` and its forwarding settings never see bridged frames, so
nothing on the host changes but one veth and its address.

The commands go through ``ip -batch``: one process per namespace and step, and each line is
idempotent here because every step checks what exists first (``ip`` has no "add if
missing"). Setting up happens once per node, from the synchronous local-environment code,
which is why this is not part of the agent's netlink adapter (``kosmos.net.netlink``).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from kosmos.net.errors import CommandError

NETNS_DIR = Path("/run/netns")


def _run(argv: list[str], stdin: str | None = None, check: bool = True) -> str:
    try:
        out = subprocess.run(
            argv, input=stdin, capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CommandError(f"`{' '.join(argv)}`: {exc}", item=argv[0]) from exc
    if check and out.returncode != 0:
        said = (out.stderr or out.stdout).strip()
        raise CommandError(f"`{' '.join(argv)}` failed ({out.returncode}): {said}", item=argv[0])
    return out.stdout


def netns_exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


def add_netns(name: str) -> bool:
    """Create the namespace unless it exists; True when it was created."""
    if netns_exists(name):
        return False
    _run(["ip", "netns", "add", name])
    return True


def delete_netns(name: str) -> None:
    """Remove the namespace's name (the namespace goes with its last process)."""
    if netns_exists(name):
        _run(["ip", "netns", "del", name])


def netns_inode(name: str) -> int | None:
    """The namespace's inode (what ``/proc/<pid>/ns/net`` links to), None if absent."""
    try:
        return (NETNS_DIR / name).stat().st_ino
    except OSError:
        return None


def link_exists(netns: str | None, name: str) -> bool:
    argv = ["ip", *(["-n", netns] if netns else []), "link", "show", "dev", name]
    return subprocess.run(argv, capture_output=True, check=False).returncode == 0


def batch(netns: str | None, commands: list[str]) -> None:
    """Run ``ip`` commands (one per line, without the leading ``ip``) in ``netns``."""
    if commands:
        _run(["ip", *(["-n", netns] if netns else []), "-batch", "-"], "\n".join(commands) + "\n")


def sysctl(netns: str, values: dict[str, str], *, optional: frozenset[str] = frozenset()) -> None:
    """Set kernel parameters inside ``netns`` (per-namespace ones only); ``optional`` keys
    may be missing on this kernel (e.g. ``net.bridge.*`` without the br_netfilter module)."""
    for key, value in values.items():
        argv = ["ip", "netns", "exec", netns, "sysctl", "-q", "-w", f"{key}={value}"]
        _run(argv, check=key not in optional)


@dataclass(frozen=True)
class Bridge:
    """A cluster network: ``bridge`` inside ``netns``, joined by the host through
    ``host_link`` (host side, holding ``host_address``) and ``peer`` (bridge side)."""

    netns: str
    bridge: str
    host_link: str
    peer: str
    host_address: str  # "ip/prefix"


def ensure_bridge(net: Bridge) -> None:
    """Create the bridge namespace and the host's veth into it (idempotent)."""
    add_netns(net.netns)
    if not link_exists(net.netns, net.bridge):
        batch(net.netns, [f"link add {net.bridge} type bridge", f"link set {net.bridge} up"])
    batch(net.netns, ["link set lo up"])
    if not link_exists(None, net.host_link):
        batch(None, [f"link add {net.host_link} type veth peer name {net.peer} netns {net.netns}"])
        batch(net.netns, [f"link set {net.peer} master {net.bridge} up"])
        batch(None, [f"addr add {net.host_address} dev {net.host_link}"])
    batch(None, [f"link set {net.host_link} up"])


def remove_bridge(net: Bridge) -> None:
    """Delete the host's veth (its peer goes with it) and the bridge's namespace."""
    if link_exists(None, net.host_link):
        batch(None, [f"link del {net.host_link}"])
    delete_netns(net.netns)


@dataclass(frozen=True)
class Port:
    """A namespace on a cluster network: ``eth0`` inside it, ``peer`` on the bridge."""

    netns: str
    peer: str
    address: str  # "ip/prefix"
    gateway: str


def ensure_port(net: Bridge, port: Port) -> None:
    """Create the namespace with ``eth0`` on the bridge and a default route (idempotent)."""
    add_netns(port.netns)
    if not link_exists(port.netns, "eth0"):
        if link_exists(net.netns, port.peer):  # a half-made pair from an interrupted run
            batch(net.netns, [f"link del {port.peer}"])
        batch(net.netns, [f"link add {port.peer} type veth peer name eth0 netns {port.netns}"])
        batch(net.netns, [f"link set {port.peer} master {net.bridge} up"])
        batch(
            port.netns,
            [
                "link set lo up",
                f"addr add {port.address} dev eth0",
                "link set eth0 up",
                f"route add default via {port.gateway}",
            ],
        )


# -- the underlay between cluster networks ----------------------------------------------------


@dataclass(frozen=True)
class Uplink:
    """A cluster network's port on the router: ``link`` in the router's namespace (holding
    ``address``), its peer ``peer`` on the network's bridge."""

    bridge: Bridge
    link: str
    peer: str
    address: str  # "ip/prefix"


def ensure_router(netns: str, uplinks: list[Uplink]) -> None:
    """A namespace that forwards between cluster networks, one veth into each (idempotent).

    Forwarding is switched on in this namespace only: the host's ``ip_forward`` stays as it
    is, and the host's namespace never carries a packet from one cluster network to another.
    """
    add_netns(netns)
    batch(netns, ["link set lo up"])
    sysctl(netns, {"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.rp_filter": "0"})
    for up in uplinks:
        if not link_exists(netns, up.link):
            if link_exists(up.bridge.netns, up.peer):  # half-made by an interrupted run
                batch(up.bridge.netns, [f"link del {up.peer}"])
            batch(
                netns, [f"link add {up.link} type veth peer name {up.peer} netns {up.bridge.netns}"]
            )
            batch(netns, [f"addr add {up.address} dev {up.link}"])
        batch(up.bridge.netns, [f"link set {up.peer} master {up.bridge.bridge} up"])
        batch(netns, [f"link set {up.link} up"])


def router_links(netns: str) -> set[str]:
    """The router's links that are up (empty when the namespace is missing)."""
    if not netns_exists(netns):
        return set()
    out = _run(["ip", "-n", netns, "-o", "link", "show", "up"], check=False)
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line}


def ensure_routes(netns: str | None, routes: dict[str, str]) -> None:
    """Routes ``destination -> gateway`` in ``netns`` (None: the host's), idempotent."""
    batch(netns, [f"route replace {dst} via {via}" for dst, via in sorted(routes.items())])


def routes_via(netns: str) -> dict[str, str]:
    """The namespace's gatewayed IPv4 routes (destination -> gateway) of the main table."""
    out = _run(["ip", "-n", netns, "-4", "route", "show"], check=False)
    found = {}
    for line in out.splitlines():
        words = line.split()
        if len(words) >= 3 and words[1] == "via" and words[0] != "default":
            found[words[0]] = words[2]
    return found


def host_routes_via(via: str) -> list[str]:
    """The destinations the host's namespace reaches through ``via``."""
    out = _run(["ip", "-4", "route", "show", "via", via], check=False)
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def remove_host_routes_via(via: str) -> None:
    """Drop every host route through ``via`` (the node behind it is going away)."""
    batch(None, [f"route del {destination} via {via}" for destination in host_routes_via(via)])
