"""Throughput and latency of ClusterLink against the kernel paths it is built from.

All in one run, in network namespaces on this machine (tests/dataplane/testbed.py), with
the real control plane driving the Kosmos rows (network-manager process, one agent process
per node, Clusters backed by the local environment's members):

  underlay                   node -> node across the switch and the router, no tunnel
  raw VXLAN                  pod -> pod over a VXLAN pair built by hand (the baseline), the
                             nodes tracking connections (one NAT rule, as every Kubernetes
                             node has: kube-proxy, the CNI's masquerade)
  raw VXLAN, no conntrack    the same without that rule
  underlay (routed pair)     node -> node of the shortest pair: each node's eth0 is a port
                             of the router itself (no switch)
  hand-built routed VXLAN    pod -> pod over raw VXLAN on that pair, no NAT rule: the
                             strongest fair baseline; raw VXLAN is judged against it
  Kosmos p2p                 pod -> pod, ClusterLink p2p mode
  Kosmos gateway             pod on an internal node -> pod on an internal node, via both
                             gateways (measured after the p2p bed switched to gateway mode,
                             with the underlay and raw VXLAN in the same rounds)
  Kosmos gateway -> gateway  pod on one gateway -> pod on the other: the vx-bridge hop alone
                             (the gateway path minus the internal nodes' vx-local hop)
  Kosmos gateway, direct     the gateway row again with ``directRouting`` (internal nodes
  routing                    route to their gateway over the NIC, no vx-local), measured after
                             the gateway rows, with the underlay and raw VXLAN in its rounds
  hand-built IPsec           pod -> pod over a strongSwan tunnel configured by hand (libipsec)
  Kosmos IPsec               gateway pod -> gateway pod over ClusterLink's IPsec (libipsec)
  Kosmos WireGuard           pod -> pod over kosmos.net.wireguard (wireguard-go) on a NAT pair

Pods have MTU 1450 and every veth has GRO on, as a CNI and physical NICs would.

Throughput: iperf3, one TCP stream, ``--seconds`` each; latency: ping, 50 packets at 10 ms,
mean RTT. Every row is printed as the median and spread (min..max) of ``--rounds`` rounds,
each round taking every probe in turn (the order reversed every other round), with its ratio
to the underlay it rides on and to its baseline (``bench/_nettable.py``). This kernel has no
ESP and no WireGuard module: both encrypted paths are userspace. Goals: raw VXLAN >= 0.85 of
the hand-built routed pair; p2p >= 0.70 of the underlay and >= 0.95 of raw VXLAN; gateway
>= 0.90 of raw VXLAN throughput and <= 1.5x its RTT (both gateway rows are judged).

With ``--real-pods`` (an environment with real nodes: ``kosmosctl local up --real-nodes 1``)
the same run first measures between real pods of cluster1 and cluster2, with the agents
running in the members as ``join --enable-link`` installs them, against the underlay between
the same two nodes (``bench/_realpods.py``), p2p then gateway; the real nodes are then kept out
of ClusterLink while the testbed rows run.

Usage: sudo .venv/bin/python bench/network.py [--seconds 3] [--rounds 3] [--real-pods]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import secrets
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from kosmos.local import components, environment, paths
from kosmos.local.topology import Options
import _realpods
from _nettable import Probe, Result, Row, report, run_rounds
from tests.dataplane.linked import (
    PRODUCT_AGENT_FLAGS,
    LinkedTestbed,
    sweep_stale_testbeds,
    two_clusters,
)
from tests.dataplane.probes import iperf3
from tests.dataplane.testbed import ClusterSpec, NodeSpec, Topology, nat_pair, ns_run
from tests.dataplane.tunnels import WIREGUARD, Ends, handbuilt_strongswan
from tests.fixtures.clusters import LocalEnv
from tests.fixtures.link import LinkEnv
from tests.support import wait_for


def rtt(client_ns: str, target: str) -> float:
    argv = ["ping", "-q", "-c", "50", "-i", "0.01", "-W", "1", target]
    out = subprocess.run(
        ["ip", "netns", "exec", client_ns, *argv], capture_output=True, text=True, check=False
    ).stdout
    match = re.search(r"= [\d.]+/([\d.]+)/", out)
    if not match:
        raise RuntimeError(f"ping {target} from {client_ns} failed: {out[-300:]}")
    return float(match.group(1))


def probe(client_ns: str, server_ns: str, server_ip: str, seconds: float) -> Probe:
    return lambda: (iperf3(client_ns, server_ns, server_ip, seconds), rtt(client_ns, server_ip))


def pods(bed: Topology, a: NodeSpec, b: NodeSpec, seconds: float) -> Probe:
    return probe(bed.pod_ns(a), bed.pod_ns(b), b.pod_ip, seconds)


def nodes(bed: Topology, a: NodeSpec, b: NodeSpec, seconds: float) -> Probe:
    return probe(bed.node_ns(a), bed.node_ns(b), bed.underlay(b)[0], seconds)


def link_env() -> LinkEnv:
    options = environment.load_options() or Options()
    clusters = environment.up(options, logging.info)
    env = LocalEnv(clusters, paths.bin_dir() / "kubectl")
    link = LinkEnv(env, components.Ports.for_base(env.plan(env.host).apiserver_port))
    link.install()
    sweep_stale_testbeds(link)
    link.start()
    return link


def applied(bed: LinkedTestbed) -> None:
    wait_for(
        lambda: all(bed.applied(n) for n in bed.nodes()), 120, "NodeConfigs applied", interval=1
    )


def raw_pair(*, conntrack: bool, routed: bool = False) -> Topology:
    """Two one-node clusters with a hand-built VXLAN between the nodes (see the module doc)."""
    bed = Topology(
        [
            ClusterSpec("rawa", 1, [NodeSpec("rawa", "a", 1, "10.61.1.0/24", "fd61:0:0:1::/64")]),
            ClusterSpec("rawb", 2, [NodeSpec("rawb", "b", 1, "10.62.1.0/24", "fd62:0:0:1::/64")]),
        ],
        routed=routed,
    )
    bed.build()
    a, b = bed.nodes()
    bed.raw_vxlan(a, b)
    for node in (a, b) if conntrack else ():
        # A rule that never matches pod traffic but makes the kernel track every connection
        # (nat hooks registered), as on a Kubernetes node and on ClusterLink's nodes.
        ns_run(bed.node_ns(node), "iptables", "-t", "nat", "-A", "POSTROUTING",
               "-s", "10.0.0.0/8", "-d", "192.0.2.0/24", "-j", "MASQUERADE")  # fmt: skip
    return bed


def owned(stack: ExitStack, bed: Topology) -> Topology:
    """A built testbed, destroyed when ``stack`` closes."""
    stack.callback(bed.destroy)
    return bed


def nat_bed() -> Topology:
    bed = Topology(nat_pair(), firewall=True)
    bed.build()
    return bed


def linked_beds(link: LinkEnv) -> tuple[LinkedTestbed, LinkedTestbed]:
    """The p2p bed (two nodes a cluster; later switched to gateway mode) and the encrypted
    gateway bed (elastic IPs, firewall: IPsec between the gateways)."""
    tag, gw_tag = secrets.token_hex(2), secrets.token_hex(2)
    p2p_options = {"networkType": "p2p", "ipFamily": "ipv4"}
    # The agents run with the product's periods: the tests' fast elections and repairs
    # would load the machine during every row (tests/dataplane/linked.py, AGENT_FLAGS).
    flags = PRODUCT_AGENT_FLAGS
    clusters = two_clusters(tag, nodes=2, options=p2p_options)
    p2p = LinkedTestbed(link, clusters, tag=tag, agent_flags=flags)
    gw_options = {"networkType": "gateway", "ipFamily": "ipv4", "encryption": {"mode": "auto"}}
    clusters = two_clusters(gw_tag, base=52, nodes=2, elastic=1, options=gw_options)
    return p2p, LinkedTestbed(link, clusters, firewall=True, tag=gw_tag, agent_flags=flags)


async def first_block(
    stack: ExitStack,
    link: LinkEnv,
    p2p: LinkedTestbed,
    ipsec: LinkedTestbed,
    args: argparse.Namespace,
) -> dict[str, Result]:
    """Every row but gateway mode, in the same rounds."""
    seconds = args.seconds
    raw = owned(stack, raw_pair(conntrack=True))
    bare = owned(stack, raw_pair(conntrack=False))
    routed = owned(stack, raw_pair(conntrack=False, routed=True))
    hand, wg_bed = owned(stack, nat_bed()), owned(stack, nat_bed())
    a1, _, b1, _ = p2p.nodes()
    g_a1, g_a2, g_b1, g_b2 = ipsec.nodes()
    ipsec.wait_reachable([(g_a2, g_b2.pod_ip), (g_a1, g_b1.pod_ip)], timeout=120)
    p2p.wait_reachable([(a1, b1.pod_ip)])
    # Each row next to its reference, so that the per-round ratios compare neighbours.
    rows = [
        Row("underlay (routed pair)", nodes(routed, *routed.nodes(), seconds)),
        Row(
            "hand-built routed VXLAN",
            pods(routed, *routed.nodes(), seconds),
            "underlay (routed pair)",
        ),
        Row("raw VXLAN", pods(raw, *raw.nodes(), seconds), "underlay", "hand-built routed VXLAN"),
        Row("underlay", nodes(raw, *raw.nodes(), seconds)),
        Row("raw VXLAN, no conntrack", pods(bare, *bare.nodes(), seconds), "underlay", "raw VXLAN"),
        Row("Kosmos p2p", pods(p2p.topology, a1, b1, seconds), "underlay", "raw VXLAN"),
        Row("hand-built IPsec", pods(hand, *hand.nodes(), seconds), "underlay"),
        Row(
            "Kosmos IPsec",
            pods(ipsec.topology, g_a1, g_b1, seconds),
            "underlay",
            "hand-built IPsec",
        ),
    ]
    ends = None
    try:
        WIREGUARD.require()
        ends = Ends.on(WIREGUARD, wg_bed)
        await ends.up(*ends.specs(os.urandom(32)))
        rows.append(Row("Kosmos WireGuard", pods(wg_bed, *wg_bed.nodes(), seconds), "underlay"))
    except (Exception, pytest.skip.Exception) as exc:  # no wireguard-go: no row
        print(f"no WireGuard row: {exc}", file=sys.stderr)
    try:
        work = Path(tempfile.mkdtemp(prefix="kosmos-bench-net-"))
        hand_a, hand_b = hand.nodes()
        with handbuilt_strongswan(hand, hand_a, hand_b, secrets.token_bytes(32), work):
            return run_rounds(rows, args.rounds)
    finally:
        if ends is not None:
            await ends.close()


def gateway_block(
    link: LinkEnv, p2p: LinkedTestbed, raw: Topology, args: argparse.Namespace, *, direct: bool
) -> dict[str, Result]:
    """The p2p bed switched to gateway mode (``direct``: with ``directRouting``), measured
    between its two internal nodes beside the underlay and raw VXLAN in the same rounds."""
    for cluster in p2p.clusters:
        link.patch_link(cluster.spec.name, {"networkType": "gateway", "directRouting": direct})
    wait_for(lambda: all(p2p.gateway(c.spec.name) for c in p2p.clusters), 60, "gateways elected")
    a1, a2, b1, b2 = p2p.nodes()
    ia = next(n for n in (a1, a2) if n.name != p2p.gateway(a1.cluster))
    ib = next(n for n in (b1, b2) if n.name != p2p.gateway(b1.cluster))
    ga, gb = next(n for n in (a1, a2) if n is not ia), next(n for n in (b1, b2) if n is not ib)
    wait_for(lambda: all(_planned(p2p, n, direct) for n in (ia, ib)), 60, "gateway mode planned")
    applied(p2p)
    p2p.wait_reachable([(ia, ib.pod_ip), (ga, gb.pod_ip)])
    tag = "direct" if direct else "gateway"
    under, vxlan = f"underlay ({tag} rounds)", f"raw VXLAN ({tag} rounds)"
    rows = [
        Row(under, nodes(raw, *raw.nodes(), args.seconds)),
        Row(vxlan, pods(raw, *raw.nodes(), args.seconds), under),
    ]
    if direct:  # the gateway -> gateway hop is the same in both modes: measured once
        rows.append(Row("Kosmos gateway, direct routing", pods(p2p.topology, ia, ib, args.seconds),
                        under, vxlan))  # fmt: skip
    else:
        rows.append(Row("Kosmos gateway", pods(p2p.topology, ia, ib, args.seconds), under, vxlan))
        rows.append(Row("Kosmos gateway -> gateway", pods(p2p.topology, ga, gb, args.seconds),
                        under, vxlan))  # fmt: skip
    return run_rounds(rows, args.rounds)


def _planned(bed: LinkedTestbed, internal: NodeSpec, direct: bool) -> bool:
    """The internal node's routes to the other cluster go the mode's way: over its NIC, or
    over vx-local."""
    routes = ns_run(bed.topology.node_ns(internal), "ip", "route", "show", "table", "200")
    return ("dev eth0" if direct else "dev vx-local") in routes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--real-pods", action="store_true", help="Also real pods (see above).")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    link = link_env()
    real_rows = real_pods(link, args.seconds, args.rounds) if args.real_pods else []
    p2p, ipsec = linked_beds(link)
    results: dict[str, Result] = {}
    try:
        with ExitStack() as stack:
            stack.callback(_down, p2p)
            p2p.up()
            with ExitStack() as encrypted:
                encrypted.callback(_down, ipsec)
                ipsec.up()
                applied(p2p)
                applied(ipsec)
                results = asyncio.run(first_block(stack, link, p2p, ipsec, args))
            # The encrypted bed (four agents, two IKE daemons) is down before the gateway rows:
            # they take no part in them, and a longer path feels the others' load more.
            gw_raw = owned(stack, raw_pair(conntrack=True))
            results |= gateway_block(link, p2p, gw_raw, args, direct=False)
            results |= gateway_block(link, p2p, gw_raw, args, direct=True)
    finally:
        if args.real_pods:
            _realpods.RealPods(link).exclude(undo=True)
        link.stop()
    report(results)
    if real_rows:
        _realpods.report(real_rows)


def _down(bed: LinkedTestbed) -> None:
    try:
        bed.down()
    except Exception as exc:  # report, keep tearing down
        print(f"teardown: {exc}", file=sys.stderr)


def real_pods(link: LinkEnv, seconds: float, rounds: int) -> list[_realpods.Row]:
    """The real-pod rows (p2p, then gateway), then the real nodes out of ClusterLink."""
    pods = _realpods.RealPods(link)
    pods.exclude(undo=True)
    try:
        pods.up()
        rows = _realpods.measure(pods, "Kosmos p2p (real pods)", seconds, rounds,
                                 "underlay (real nodes)")  # fmt: skip
        pods.switch("gateway")
        rows += _realpods.measure(pods, "Kosmos gateway (real pods)", seconds, rounds,
                                  "underlay (gw rounds)")  # fmt: skip
    finally:
        pods.down()
        pods.exclude()
    return rows


if __name__ == "__main__":
    main()
