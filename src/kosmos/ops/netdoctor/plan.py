"""Which floaters a check needs, which pairs it runs and the command of each (pure).

A pair is one source floater (the pod the command runs in) and one target address. The
mode says which network each end is on: ``pod`` runs from pod-network floaters to the
destination floaters' pod IPs, ``node`` from host-network floaters to the destination
nodes' InternalIPs, and the mixed modes one of each. Like netctl, every source meets every
target, itself included, and a dual-stack node is checked once per family; a pair never
crosses families (an IPv4-only source cannot reach an IPv6 target by design).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from kosmos.api import names
from kosmos.api.addresses import join_host_port
from kosmos.api.objects import Obj, name_of
from kosmos.ops.netdoctor.config import Config

CONTAINER = "floater"  # the floater pods' one container


@dataclass(frozen=True)
class Floater:
    """A Ready floater pod: where it runs and its addresses."""

    pod: str
    node: str
    pod_ips: tuple[str, ...]
    node_ips: tuple[str, ...]  # the node's InternalIPs


@dataclass(frozen=True)
class Pair:
    src_pod: str
    src_node: str
    dst_node: str  # for dns: the DNS server's name
    target: str  # an IP address
    command: tuple[str, ...]

    @property
    def family(self) -> int:
        return family(self.target)


def family(ip: str) -> int:
    """4 or 6; 0 when ``ip`` is not an address (a DNS server given by name)."""
    try:
        return ipaddress.ip_address(ip).version
    except ValueError:
        return 0


def src_on_node(mode: str) -> bool:
    return mode in ("node", "node-to-pod")


def dst_on_node(mode: str) -> bool:
    return mode in ("node", "pod-to-node")


def src_daemonset(mode: str) -> str:
    return names.FLOATER_HOST if src_on_node(mode) else names.FLOATER


def dst_daemonset(mode: str) -> str:
    return names.FLOATER_HOST if dst_on_node(mode) else names.FLOATER


def daemonsets(config: Config) -> dict[str, tuple[str, ...]]:
    """The DaemonSets each side runs ("src", "dst"); one cluster runs both sides' sets.

    A DNS check runs from the source floaters only: its target is a DNS server.
    """
    src = [src_daemonset(config.mode)]
    dst = [] if config.protocol == "dns" else [dst_daemonset(config.mode)]
    if not config.two_clusters:
        return {"src": tuple(dict.fromkeys(src + dst))}
    return {"src": tuple(src), "dst": tuple(dst)}


def floaters(pods: Iterable[Obj], nodes: Iterable[Obj]) -> list[Floater]:
    """Floaters from Ready pods and their nodes' InternalIPs, sorted by node."""
    internal = {
        name_of(node): tuple(
            a["address"]
            for a in (node.get("status") or {}).get("addresses") or []
            if a.get("type") == "InternalIP"
        )
        for node in nodes
    }
    out = []
    for pod in pods:
        node = (pod.get("spec") or {}).get("nodeName") or ""
        status = pod.get("status") or {}
        ips = tuple(p["ip"] for p in status.get("podIPs") or [] if p.get("ip"))
        if not ips and status.get("podIP"):
            ips = (status["podIP"],)
        out.append(Floater(name_of(pod), node, ips, internal.get(node, ())))
    return sorted(out, key=lambda f: (f.node, f.pod))


def targets(mode: str, dst: Sequence[Floater]) -> list[tuple[str, str]]:
    """(node, IP) of every destination address: pod IPs, or the nodes' InternalIPs."""
    out: list[tuple[str, str]] = []
    for floater in dst:
        ips = floater.node_ips if dst_on_node(mode) else floater.pod_ips
        out.extend((floater.node, ip) for ip in ips)
    return list(dict.fromkeys(out))


def command(config: Config, target: str) -> tuple[str, ...]:
    """The command a source floater runs; ``cmdTimeout`` bounds it inside the pod too."""
    timeout, port = str(config.cmd_timeout), str(config.port)
    if config.protocol == "tcp":
        return ("curl", "-sS", "-g", "-m", timeout, f"http://{join_host_port(target, port)}/")
    if config.protocol == "udp":
        probe = ("python3", "-m", "kosmos.floater.probe", "udp")
        return (*probe, target, port, "--timeout", timeout)
    if config.protocol == "icmp":
        return ("ping", "-c", "1", "-W", timeout, target)
    # one try: nslookup's default three would take three cmdTimeouts to fail
    lookup = config.target_host_to_lookup
    return ("nslookup", f"-timeout={timeout}", "-retry=1", lookup, target)


def succeeded(protocol: str, exit_code: int | None, stdout: str) -> bool:
    """tcp: curl got the floater's ``OK <node>`` (not some other server on the port)."""
    if exit_code != 0:
        return False
    return stdout.startswith("OK") if protocol == "tcp" else True


def pairs(
    config: Config,
    src: Sequence[Floater],
    dst: Sequence[Floater],
    dns_server: tuple[str, str] | None = None,
) -> list[Pair]:
    """Every source floater x every target of its families (``dns_server``: (name, IP))."""
    out = []
    for floater in src:
        families = {family(ip) for ip in floater.pod_ips}
        if config.protocol == "dns":
            if dns_server is not None:
                name, ip = dns_server
                out.append(Pair(floater.pod, floater.node, name, ip, command(config, ip)))
            continue
        for node, ip in targets(config.mode, dst):
            if family(ip) in families:
                out.append(Pair(floater.pod, floater.node, node, ip, command(config, ip)))
    return out


def dns_server(config: Config, services: Iterable[Obj]) -> tuple[str, str] | None:
    """(name, IP) of the DNS server: ``targetDNSServer`` when it is an IP, else the
    ClusterIP of that kube-system Service (``coredns`` also finds ``kube-dns``, the name
    most distributions give CoreDNS's Service); None when there is none."""
    wanted = config.target_dns_server
    if family(wanted):
        return wanted, wanted
    candidates = [wanted, "kube-dns"] if wanted == "coredns" else [wanted]
    by_name = {name_of(s): s for s in services}
    for candidate in candidates:
        service = by_name.get(candidate)
        ip = ((service or {}).get("spec") or {}).get("clusterIP")
        if ip and ip != "None":
            return candidate, ip
    return None


def select(planned: Iterable[Pair], only: Iterable[tuple[str, str, int]]) -> list[Pair]:
    """The pairs a resume re-checks: (src node, dst node, family) of last time's failures."""
    wanted = set(only)
    return [p for p in planned if (p.src_node, p.dst_node, p.family) in wanted]
