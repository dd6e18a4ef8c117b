"""ClusterLink over IPsec between elastic IPs: real IKEv2 (strongSwan), real ESP on the wire.

Gateway mode behind the firewall; the gateways have elastic IPs, so (``encryption.mode:
auto``, the seed's behaviour) the planner puts an IPsec tunnel between them instead of a
VXLAN route. This kernel has no ESP, so the agents run strongSwan's userspace ESP
(``--ipsec-backend libipsec``); production nodes use the kernel's xfrm.
"""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dataplane.testbed import Testbed, two_clusters
from tests.fixtures.link import LinkEnv
from tests.support import wait_for

OPTIONS = {"networkType": "gateway", "ipFamily": "ipv4", "encryption": {"mode": "auto"}}


@pytest.fixture(scope="module")
def ipsec(link_plane: LinkEnv) -> Iterator[Testbed]:
    tag = secrets.token_hex(2)
    bed = Testbed(
        link_plane,
        two_clusters(tag, nodes=2, elastic=1, options=dict(OPTIONS)),
        firewall=True,
        tag=tag,
    )
    try:
        bed.up()
        for node in bed.nodes():
            bed.echo(node)
        wait_for(
            lambda: all(bed.nodeconfig(n) for n in bed.nodes()),
            90,
            "NodeConfigs planned",
            interval=1,
        )
        yield bed
    finally:
        bed.down()


def test_the_gateways_get_a_tunnel_instead_of_a_vxlan_route(ipsec: Testbed) -> None:
    a1 = ipsec.nodes()[0]
    wait_for(
        lambda: ipsec.gateway(a1.cluster) == a1.name, 30, "the elastic-IP node elected gateway"
    )
    wait_for(
        lambda: (ipsec.nodeconfig(a1) or {}).get("spec", {}).get("tunnels"), 30, "a tunnel planned"
    )
    spec = ipsec.nodeconfig(a1)["spec"]  # type: ignore[index]
    tunnel = spec["tunnels"][0]
    assert tunnel["type"] == "ipsec" and tunnel["remoteAddress"] == "203.0.113.21"
    assert tunnel["keySecretRef"]["name"] == "clusterlink-tunnel-key"
    assert not [r for r in spec.get("routes", []) if r["dev"] == "vx-bridge"]


def test_pods_reach_each_other_and_only_esp_crosses_between_the_clusters(
    ipsec: Testbed, tmp_path: Path
) -> None:
    nodes = ipsec.nodes()
    pairs = [(s, d.pod_ip) for s in nodes for d in nodes if s.cluster != d.cluster]
    ipsec.wait_reachable(pairs, timeout=120)
    # What the router routes between the clusters' subnets reaches its bridge devices; what
    # a cluster's nodes send each other is switched between bridge ports and is not seen
    # there without promiscuous mode (-p): these captures are the inter-cluster path.
    captures = [tmp_path / "br1.pcap", tmp_path / "br2.pcap"]
    dumps = [
        subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                ipsec.topology.router,
                "tcpdump",
                "-p",
                "-ni",
                path.stem,
                "-U",
                "-w",
                str(path),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for path in captures
    ]
    time.sleep(1.5)
    try:
        for src, dst in pairs:
            assert ipsec.topology.ping(src, dst, count=3), f"{src.name} -> {dst}"
            assert ipsec.topology.tcp(src, dst, 7000), f"TCP {src.name} -> {dst}"
    finally:
        time.sleep(0.5)
        for dump in dumps:
            dump.terminate()
            dump.wait(10)
    lines = [
        line
        for path in captures
        for line in subprocess.run(
            ["tcpdump", "-nn", "-r", str(path)], capture_output=True, text=True, check=True
        ).stdout.splitlines()
    ]
    tunnel = [line for line in lines if ".4500" in line or ".500 " in line or "ESP" in line]
    plain = [
        line
        for line in lines
        if line not in tunnel and ("10.51." in line or "10.52." in line or ".4876" in line)
    ]
    assert len(tunnel) > 10, (
        f"expected ESP/NAT-T traffic between the gateways, saw {len(tunnel)} packets"
    )
    assert not plain, "plaintext crossed between the clusters:\n" + "\n".join(plain[:10])


def test_the_key_is_in_no_cr_event_or_log(ipsec: Testbed) -> None:
    host = ipsec.link.host
    secret = json.loads(
        host.run("get", "secret", "-n", "kosmos-system", "clusterlink-tunnel-key", "-o", "json")
    )
    master = base64.b64decode(secret["data"]["psk"])
    needles = {master.hex(), secret["data"]["psk"], base64.b64encode(master).decode()}
    haystacks = {
        "NodeConfigs": host.run("get", "nodeconfigs", "-o", "json"),
        "ClusterNodes": host.run("get", "clusternodes", "-o", "json"),
        "Clusters": host.run("get", "clusters", "-o", "json"),
        "Events": host.run("get", "events", "-A", "-o", "json"),
        "network-manager log": ipsec.link.log.read_text(errors="replace"),
    }
    for path in ipsec.logs.rglob("*"):
        if (
            path.is_file()
            and path.suffix in {".log", ".conf", ""}
            and path.stat().st_size < 50_000_000
        ):
            haystacks[str(path)] = path.read_text(errors="replace")
    for where, text in haystacks.items():
        for needle in needles:
            assert needle not in text, f"the tunnel master key appears in {where}"
