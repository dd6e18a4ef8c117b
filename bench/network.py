"""Throughput and latency of ClusterLink against the kernel paths it is built from.

All in one run, in network namespaces on this machine (tests/dataplane/testbed.py), with
the real control plane driving the Kosmos rows (network-manager process, one agent process
per node, Clusters backed by the local environment's members):

  underlay            node -> node across the router, no tunnel
  raw VXLAN           pod -> pod over a VXLAN pair built by hand (the baseline)
  Kosmos p2p          pod -> pod, ClusterLink p2p mode
  Kosmos gateway      pod on an internal node -> pod on an internal node, via both gateways
  hand-built IPsec    pod -> pod over a strongSwan tunnel configured by hand (libipsec)
  Kosmos IPsec        gateway pod -> gateway pod over ClusterLink's IPsec (libipsec)

The baseline nodes get one NAT rule so that, as on every Kubernetes node and on ClusterLink's
nodes, the kernel tracks connections (conntrack alone costs ~10% of VXLAN throughput here).
Pods have MTU 1450 and every veth has GRO on, as a CNI and physical NICs would.

Throughput: iperf3, one TCP stream, ``--seconds`` each, median of ``--rounds`` rounds taken
in turn (so load from other processes hits every row alike). Latency: ping, 50 packets at
10 ms, mean RTT. Ratios: the VXLAN rows against raw VXLAN, Kosmos IPsec against hand-built
IPsec (this kernel has no ESP, so both are userspace ESP). Goals: p2p >= 0.95 and gateway
>= 0.90 of raw VXLAN throughput; RTT p2p <= 1.15x, gateway <= 1.5x.

With ``--real-pods`` (an environment with real nodes: ``kosmosctl local up --real-nodes 1``)
the same run first measures between real pods of cluster1 and cluster2, with the agents
running in the members as ``join --enable-link`` installs them, against the underlay between
the same two nodes (``bench/_realpods.py``), p2p then gateway; the real nodes are then kept out
of ClusterLink while the testbed rows run.

Usage: sudo .venv/bin/python bench/network.py [--seconds 3] [--rounds 3] [--real-pods]
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from kosmos.local import components, environment, paths
from kosmos.local.topology import Options
import _realpods
from tests.dataplane.linked import LinkedTestbed, sweep_stale_testbeds, two_clusters
from tests.dataplane.probes import iperf3
from tests.dataplane.testbed import ClusterSpec, NodeSpec, Topology, nat_pair, ns_run
from tests.dataplane.tunnels import handbuilt_strongswan
from tests.fixtures.clusters import LocalEnv
from tests.fixtures.link import LinkEnv
from tests.support import wait_for


Probe = Callable[[], tuple[float, float]]  # -> (Mbit/s, RTT ms)


def iperf(client_ns: str, server_ns: str, server_ip: str, seconds: float) -> float:
    return iperf3(client_ns, server_ns, server_ip, seconds)


def rtt(client_ns: str, target: str) -> float:
    out = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            client_ns,
            "ping",
            "-q",
            "-c",
            "50",
            "-i",
            "0.01",
            "-W",
            "1",
            target,
        ],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    match = re.search(r"= [\d.]+/([\d.]+)/", out)
    if not match:
        raise RuntimeError(f"ping {target} from {client_ns} failed: {out[-300:]}")
    return float(match.group(1))


def probe(client_ns: str, server_ns: str, server_ip: str, seconds: float) -> Probe:
    return lambda: (iperf(client_ns, server_ns, server_ip, seconds), rtt(client_ns, server_ip))


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--real-pods", action="store_true", help="Also real pods (see above).")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    link = link_env()
    real_rows = real_pods(link, args.seconds, args.rounds) if args.real_pods else []
    work = Path(tempfile.mkdtemp(prefix="kosmos-bench-net-"))
    raw = Topology(
        [
            ClusterSpec(
                "rawa", 1, [NodeSpec("rawa", "raw-a1", 1, "10.61.1.0/24", "fd61:0:0:1::/64")]
            ),
            ClusterSpec(
                "rawb", 2, [NodeSpec("rawb", "raw-b1", 1, "10.62.1.0/24", "fd62:0:0:1::/64")]
            ),
        ]
    )
    tag = secrets.token_hex(2)
    gw_tag = secrets.token_hex(2)
    p2p = LinkedTestbed(
        link,
        two_clusters(tag, nodes=2, options={"networkType": "p2p", "ipFamily": "ipv4"}),
        tag=tag,
    )
    gateway = LinkedTestbed(
        link,
        two_clusters(
            gw_tag,
            base=52,
            nodes=2,
            elastic=1,
            options={"networkType": "gateway", "ipFamily": "ipv4", "encryption": {"mode": "auto"}},
        ),
        firewall=True,
        tag=gw_tag,
    )
    hand = Topology(nat_pair(), firewall=True)
    results: dict[str, tuple[float, float]] = {}
    try:
        raw.build()
        hand.build()
        hand_a, hand_b = hand.nodes()
        ra, rb = raw.nodes()
        raw.raw_vxlan(ra, rb)
        for node in (ra, rb):
            # A Kubernetes node always tracks connections (kube-proxy, the CNI's masquerade):
            # give the baseline's nodes a NAT rule too, so both sides pay for conntrack and
            # the ratio shows what ClusterLink itself costs (conntrack alone is ~10% here).
            ns_run(
                raw.node_ns(node),
                "iptables",
                "-t",
                "nat",
                "-A",
                "POSTROUTING",
                "-s",
                "10.0.0.0/8",
                "-d",
                "192.0.2.0/24",
                "-j",
                "MASQUERADE",
            )
        p2p.up()
        gateway.up()
        applied(p2p)
        applied(gateway)
        a1, a2, b1, b2 = p2p.nodes()
        g_a1, g_a2, g_b1, g_b2 = gateway.nodes()
        gateway.wait_reachable([(g_a2, g_b2.pod_ip), (g_a1, g_b1.pod_ip)], timeout=120)
        p2p.wait_reachable([(a1, b1.pod_ip)])
        kosmos_ipsec = probe(
            gateway.topology.pod_ns(g_a1), gateway.topology.pod_ns(g_b1), g_b1.pod_ip, args.seconds
        )
        raw_vxlan = probe(raw.pod_ns(ra), raw.pod_ns(rb), rb.pod_ip, args.seconds)
        with handbuilt_strongswan(hand, hand_a, hand_b, secrets.token_bytes(32), work):
            first = run_rounds(
                {
                    "underlay": probe(
                        raw.node_ns(ra), raw.node_ns(rb), raw.underlay(rb)[0], args.seconds
                    ),
                    "raw VXLAN": raw_vxlan,
                    "Kosmos p2p": probe(
                        p2p.topology.pod_ns(a1), p2p.topology.pod_ns(b1), b1.pod_ip, args.seconds
                    ),
                    "hand-built IPsec": probe(
                        hand.pod_ns(hand_a), hand.pod_ns(hand_b), hand_b.pod_ip, args.seconds
                    ),
                    "Kosmos IPsec": kosmos_ipsec,
                },
                args.rounds,
            )
        # Gateway mode (no encryption): the p2p bed switched over, measured between the two
        # internal nodes, beside a second raw VXLAN measurement taken in the same rounds.
        for cluster in p2p.clusters:
            link.patch_link(cluster.spec.name, {"networkType": "gateway"})
        wait_for(
            lambda: all(p2p.gateway(c.spec.name) for c in p2p.clusters), 60, "gateways elected"
        )
        wait_for(
            lambda: "vx-local" in ns_run(p2p.topology.node_ns(a1), "ip", "link"),
            60,
            "gateway mode planned",
        )
        applied(p2p)
        ia = next(n for n in (a1, a2) if n.name != p2p.gateway(a1.cluster))
        ib = next(n for n in (b1, b2) if n.name != p2p.gateway(b1.cluster))
        p2p.wait_reachable([(ia, ib.pod_ip)])
        second = run_rounds(
            {
                "raw VXLAN": raw_vxlan,
                "Kosmos gateway": probe(
                    p2p.topology.pod_ns(ia), p2p.topology.pod_ns(ib), ib.pod_ip, args.seconds
                ),
            },
            args.rounds,
        )
        results = {
            **first,
            "Kosmos gateway": second["Kosmos gateway"],
            "raw VXLAN (gateway rounds)": second["raw VXLAN"],
        }
    finally:
        hand.destroy()
        raw.destroy()
        for bed in (p2p, gateway):
            try:
                bed.down()
            except Exception as exc:  # report, keep tearing down
                print(f"teardown: {exc}", file=sys.stderr)
        if args.real_pods:
            _realpods.RealPods(link).exclude(undo=True)
        link.stop()
    report(results)
    if real_rows:
        _realpods.report(real_rows)


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


def run_rounds(probes: dict[str, Probe], rounds: int) -> dict[str, tuple[float, float]]:
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in probes}
    for _ in range(rounds):
        for name, run in probes.items():
            samples[name].append(run())
    return {
        name: (statistics.median(s[0] for s in values), statistics.median(s[1] for s in values))
        for name, values in samples.items()
    }


def report(results: dict[str, tuple[float, float]]) -> None:
    base_bw, base_rtt = results["raw VXLAN"]
    ipsec_bw, ipsec_rtt = results.get("hand-built IPsec", (0.0, 0.0))
    rows = []
    for name in (
        "underlay",
        "raw VXLAN",
        "Kosmos p2p",
        "Kosmos gateway",
        "hand-built IPsec",
        "Kosmos IPsec",
    ):
        if name not in results:
            continue
        bw, latency = results[name]
        if name == "Kosmos IPsec":
            ratio_bw, ratio_rtt, against = bw / ipsec_bw, latency / ipsec_rtt, "hand-built IPsec"
        elif name in {"underlay", "hand-built IPsec"}:
            ratio_bw = ratio_rtt = float("nan")
            against = ""
        elif name == "Kosmos gateway":
            gw_bw, gw_rtt = results["raw VXLAN (gateway rounds)"]
            ratio_bw, ratio_rtt, against = bw / gw_bw, latency / gw_rtt, "raw VXLAN (same rounds)"
        else:
            ratio_bw, ratio_rtt, against = bw / base_bw, latency / base_rtt, "raw VXLAN"
        rows.append((name, bw, latency, ratio_bw, ratio_rtt, against))
    header = f"{'Test scenario':<20} {'bandwidth':>16} {'latency':>12}"
    print(f"{header} {'bw ratio':>9} {'rtt ratio':>10}  against")
    for name, bw, latency, rb, rr, against in rows:
        ratio = "" if against == "" else f"{rb:9.2f} {rr:10.2f}  {against}"
        print(f"{name:<20} {bw / 1000:>11.2f} Gbit/s {latency:>9.3f} ms {ratio}")
    print(
        json.dumps(
            {
                name: {
                    "mbit_s": round(bw, 1),
                    "rtt_ms": round(latency, 4),
                    "bw_ratio": None if against == "" else round(rb, 3),
                    "rtt_ratio": None if against == "" else round(rr, 3),
                    "against": against,
                }
                for name, bw, latency, rb, rr, against in rows
            }
        )
    )


if __name__ == "__main__":
    main()
