"""The dataplane tier runs against the real kernel inside network namespaces it creates.

This smoke test proves the primitives ClusterLink builds on: two "nodes" joined by a veth
underlay, a VXLAN overlay between them with a static FDB entry, and a routed ping across.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid

import pytest

from tests.support import require


def ip(*args: str, ns: str | None = None) -> str:
    argv = ["ip", *(["-n", ns] if ns else []), *args]
    out = subprocess.run(argv, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise AssertionError(f"`{' '.join(argv)}` failed: {out.stderr.strip()}")
    return out.stdout


@pytest.fixture
def two_nodes():
    require(os.geteuid() == 0, "dataplane tests need root (network namespaces)")
    for tool in ("ip", "bridge", "ping"):
        require(shutil.which(tool) is not None, f"dataplane tests need `{tool}` on PATH")
    tag = uuid.uuid4().hex[:6]
    a, b = f"kt-a-{tag}", f"kt-b-{tag}"
    for ns in (a, b):
        ip("netns", "add", ns)
    try:
        ip("link", "add", "ul0", "netns", a, "type", "veth", "peer", "name", "ul0", "netns", b)
        for ns, addr in ((a, "198.51.100.1/24"), (b, "198.51.100.2/24")):
            ip("addr", "add", addr, "dev", "ul0", ns=ns)
            ip("link", "set", "ul0", "up", ns=ns)
            ip("link", "set", "lo", "up", ns=ns)
        yield a, b
    finally:
        for ns in (a, b):
            subprocess.run(["ip", "netns", "del", ns], check=False)


def test_vxlan_overlay_carries_a_ping_between_namespaces(two_nodes):
    a, b = two_nodes
    nodes = {a: ("198.51.100.1", "10.244.0.1"), b: ("198.51.100.2", "10.244.0.2")}
    for ns, (underlay, overlay) in nodes.items():
        ip(
            "link",
            "add",
            "vx-test",
            "type",
            "vxlan",
            "id",
            "42",
            "local",
            underlay,
            "dstport",
            "4789",
            "nolearning",
            ns=ns,
        )
        ip("addr", "add", f"{overlay}/24", "dev", "vx-test", ns=ns)
        ip("link", "set", "vx-test", "up", ns=ns)
    macs = {
        ns: json.loads(ip("-j", "link", "show", "vx-test", ns=ns))[0]["address"] for ns in nodes
    }
    # No learning, no multicast: the peer's MAC and VTEP are programmed, as ClusterLink does.
    for ns, peer in ((a, b), (b, a)):
        peer_underlay, peer_overlay = nodes[peer]
        ip("neigh", "add", peer_overlay, "lladdr", macs[peer], "dev", "vx-test", ns=ns)
        subprocess.run(
            [
                "bridge",
                "-n",
                ns,
                "fdb",
                "append",
                macs[peer],
                "dev",
                "vx-test",
                "dst",
                peer_underlay,
            ],
            check=True,
        )
    out = subprocess.run(
        ["ip", "netns", "exec", a, "ping", "-c", "2", "-W", "2", nodes[b][1]],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert " 0% packet loss" in out.stdout
