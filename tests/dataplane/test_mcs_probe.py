"""The endpoint prober's TCP probe against the real kernel, from a pod's network namespace.

Two nodes of one cluster, each with a pod namespace; the probe runs in node 1's pod (the
prober's vantage) towards node 2's pod over the routed pod network. A listener answers
(connected), a closed port answers with RST (refused: still reachable), a DROP rule in the
target pod swallows the SYN (timeout: failure, within the probe timeout), an unreachable
route fails at once (EHOSTUNREACH), and removing the DROP makes it reachable again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from kosmos.mcs.probe import REACHABLE
from tests.dataplane.testbed import Build, ClusterSpec, NodeSpec, Topology, echo_server, ns_run

PORT, CLOSED = 7777, 7778
TIMEOUT = 1.0
_REACH = (
    "import asyncio, json, sys, time\n"
    "from kosmos.mcs.probe import reach\n"
    "t = time.monotonic()\n"
    "out = asyncio.run(reach(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))\n"
    "print(json.dumps([out, time.monotonic() - t]))\n"
)


@pytest.fixture
def pods(testbed: Build) -> tuple[Topology, str, NodeSpec]:
    nodes = [NodeSpec("p", f"p{i}", i, f"10.78.{i}.0/24", f"fd78:0:0:{i}::/64") for i in (1, 2)]
    topology = testbed([ClusterSpec("p", 1, nodes)])
    return topology, topology.pod_ns(nodes[0]), nodes[1]


def reach(ns: str, address: str, port: int) -> tuple[str, float]:
    """``kosmos.mcs.probe.reach`` run inside ``ns`` (the prober pod's network)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    argv = ["ip", "netns", "exec", ns, sys.executable, "-c", _REACH, address, str(port)]
    out = subprocess.run(
        [*argv, str(TIMEOUT)], capture_output=True, text=True, env=env, timeout=30, check=True
    )
    outcome, seconds = json.loads(out.stdout)
    return outcome, seconds


def test_probe_outcomes_through_the_kernel(pods):
    topology, vantage, target = pods
    server = echo_server(topology.pod_ns(target), PORT)
    try:
        time.sleep(0.3)  # the listener binds
        assert reach(vantage, target.pod_ip, PORT)[0] == "connected"
        assert reach(vantage, target.pod_ip6, PORT)[0] == "connected"
        outcome, seconds = reach(vantage, target.pod_ip, CLOSED)
        assert outcome == "refused" and outcome in REACHABLE and seconds < 0.5

        target_ns = topology.pod_ns(target)
        drop = ["INPUT", "-p", "tcp", "-s", topology.nodes()[0].pod_ip, "-j", "DROP"]
        ns_run(target_ns, "iptables", "-I", *drop)
        outcome, seconds = reach(vantage, target.pod_ip, PORT)
        assert outcome == "timeout" and outcome not in REACHABLE
        assert TIMEOUT <= seconds < TIMEOUT + 0.5, seconds
        assert reach(vantage, target.pod_ip, CLOSED)[0] == "timeout"  # no RST comes back

        ns_run(target_ns, "iptables", "-D", *drop)
        assert reach(vantage, target.pod_ip, PORT)[0] == "connected"
    finally:
        server.kill()
        server.wait()


def test_an_unreachable_route_fails_at_once(pods):
    _, vantage, _ = pods
    ns_run(vantage, "ip", "route", "add", "unreachable", "198.51.100.0/24")
    outcome, seconds = reach(vantage, "198.51.100.7", PORT)
    assert outcome == "unreachable" and outcome not in REACHABLE
    assert seconds < 0.5
