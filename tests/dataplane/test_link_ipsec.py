"""ClusterLink over IPsec between elastic IPs: real IKEv2 (strongSwan), real ESP on the wire.

Gateway mode behind the firewall; the gateways have elastic IPs, so (``encryption.mode:
auto``, the seed's behaviour) the planner puts an IPsec tunnel between them instead of a
VXLAN route. This kernel has no ESP, so the agents run strongSwan's userspace ESP
(``--ipsec-backend libipsec``); production nodes use the kernel's xfrm.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.dataplane.linked import Layout, LinkedTestbed
from tests.dataplane.probes import Capture, is_ike_or_esp
from tests.dataplane.tunnels import master_key_forms
from tests.support import get, wait_for

OPTIONS = {"networkType": "gateway", "ipFamily": "ipv4", "encryption": {"mode": "auto"}}


BED = Layout(options=OPTIONS, nodes=2, elastic=1, firewall=True, applied=False)


def test_the_gateways_get_a_tunnel_instead_of_a_vxlan_route(bed: LinkedTestbed) -> None:
    a1 = bed.nodes()[0]
    wait_for(lambda: bed.gateway(a1.cluster) == a1.name, 30, "the elastic-IP node elected gateway")
    wait_for(
        lambda: (bed.nodeconfig(a1) or {}).get("spec", {}).get("tunnels"), 30, "a tunnel planned"
    )
    spec = bed.nodeconfig(a1)["spec"]  # type: ignore[index]
    tunnel = spec["tunnels"][0]
    assert tunnel["type"] == "ipsec" and tunnel["remoteAddress"] == "203.0.113.21"
    assert tunnel["keySecretRef"]["name"] == "clusterlink-tunnel-key"
    assert not [r for r in spec.get("routes", []) if r["dev"] == "vx-bridge"]


def test_pods_reach_each_other_and_only_esp_crosses_between_the_clusters(
    bed: LinkedTestbed, tmp_path: Path
) -> None:
    nodes = bed.nodes()
    pairs = [(s, d.pod_ip) for s in nodes for d in nodes if s.cluster != d.cluster]
    bed.wait_reachable(pairs, timeout=120)
    # What the router routes between the clusters' subnets crosses its ports br1/br2; what a
    # cluster's nodes send each other is switched by the bridges in the switch namespace and
    # (without promiscuous mode, -p) not seen there: these captures are the inter-cluster path.
    captures = [
        Capture(
            bed.topology.router, tmp_path / f"{bridge}.pcap", interface=bridge, promiscuous=False
        )
        for bridge in ("br1", "br2")
    ]
    try:
        for src, dst in pairs:
            assert bed.topology.ping(src, dst, count=3), f"{src.name} -> {dst}"
            assert bed.topology.tcp(src, dst, 7000), f"TCP {src.name} -> {dst}"
    finally:
        time.sleep(0.5)
        for capture in captures:
            capture.stop()
    lines = [line for capture in captures for line in capture.lines()]
    tunnel = [line for line in lines if is_ike_or_esp(line)]
    plain = [
        line
        for line in lines
        if line not in tunnel and ("10.51." in line or "10.52." in line or ".4876" in line)
    ]
    assert len(tunnel) > 10, (
        f"expected ESP/NAT-T traffic between the gateways, saw {len(tunnel)} packets"
    )
    assert not plain, "plaintext crossed between the clusters:\n" + "\n".join(plain[:10])


def test_the_key_is_in_no_cr_event_or_log(bed: LinkedTestbed) -> None:
    host = bed.link.host
    secret = get(host, "secret", "-n", "kosmos-system", "clusterlink-tunnel-key")
    needles = master_key_forms(secret)
    haystacks = {
        "NodeConfigs": host.run("get", "nodeconfigs", "-o", "json"),
        "ClusterNodes": host.run("get", "clusternodes", "-o", "json"),
        "Clusters": host.run("get", "clusters", "-o", "json"),
        "Events": host.run("get", "events", "-A", "-o", "json"),
        "network-manager log": bed.link.log.read_text(errors="replace"),
    }
    for path in bed.logs.rglob("*"):
        if (
            path.is_file()
            and path.suffix in {".log", ".conf", ""}
            and path.stat().st_size < 50_000_000
        ):
            haystacks[str(path)] = path.read_text(errors="replace")
    for where, text in haystacks.items():
        for needle in needles:
            assert needle not in text, f"the tunnel master key appears in {where}"
