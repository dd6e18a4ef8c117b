"""``kosmos agent-state`` against a real kernel, and the diagnosis of what it read.

One node namespace of the testbed is programmed with the state its planned NodeConfig asks
for (through ``kosmos.net``, as the agent does), then broken by hand the two ways a node
drifts without its agent noticing at once: an FDB entry deleted, and somebody's DROP rule
for a peer's pod CIDR. The real command reads the namespace; the diagnosis names both, each
with the peer whose traffic it cuts off.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from kosmos.clusterlink import diagnose, peers
from kosmos.clusterlink.agent import desired
from kosmos.net.snapshot import Snapshot
from kosmos.net.sync import Dataplane
from tests.dataplane.testbed import Build, ClusterSpec, NodeSpec, ns_run, run
from tests.unit.clusterlink.linkcases import cluster, compute, node

SRC = Path(__file__).resolve().parents[2] / "src"


def agent_state(netns: str, *bind: str) -> Snapshot:
    argv = [sys.executable, "-m", "kosmos.launcher", "agent-state", "--netns", netns]
    for name in bind:
        argv += ["--bind-dev", name]
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    out = subprocess.run(argv, capture_output=True, text=True, check=False, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    return Snapshot.from_json(json.loads(out.stdout))


async def test_agent_state_dump_and_diagnosis_name_a_lost_fdb_entry_and_a_foreign_drop(
    testbed: Build,
) -> None:
    me = NodeSpec("a", "n1", 1, "10.1.1.0/24", "fd01:0:0:1::/64")
    topology = testbed([ClusterSpec("a", 1, [me])])
    ns = topology.node_ns(me)
    underlay = topology.underlay(me)[0]
    clusters = [
        cluster("a", pods=["10.1.0.0/16"], family="ipv4"),
        cluster("b", pods=["10.2.0.0/16"], family="ipv4"),
    ]
    nodes = [
        node("a", "n1", underlay, pods=["10.1.1.0/24"]),
        node("b", "n1", "192.168.20.11", pods=["10.2.1.0/24"]),
        node("b", "n2", "192.168.20.12", pods=["10.2.2.0/24"]),
    ]
    plan = compute(clusters, nodes)
    spec = plan.configs["a-n1"]
    link = peers.build(
        clusters, nodes, [{"metadata": {"name": n}, "spec": s} for n, s in plan.configs.items()]
    )
    plane = Dataplane(ns)
    try:
        binds = {"eth0": await plane.netlink.link_info("eth0")}
        report = await plane.sync(desired.build(spec, binds).state)
        assert report.ok, report.failures
    finally:
        await plane.close()

    clean = agent_state(ns, "eth0")
    assert clean.errors == [], clean.errors
    assert diagnose.analyze("a-n1", spec, clean, link) == []

    lost = next(f for f in clean.state.fdbs if f.dst == "192.168.20.12")
    run("bridge", "-n", ns, "fdb", "del", lost.mac, "dev", lost.dev, "dst", lost.dst)
    ns_run(ns, "iptables", "-w", "-A", "FORWARD", "-d", "10.2.1.0/24", "-j", "DROP")

    broken = agent_state(ns, "eth0")
    found = {(f.kind, f.state): f for f in diagnose.analyze("a-n1", spec, broken, link)}
    assert set(found) == {("fdb", "missing"), ("drop", "drops")}, found
    assert found[("fdb", "missing")].breaks == ("b/n2",)
    assert lost.mac in found[("fdb", "missing")].entry
    assert found[("drop", "drops")].breaks == ("b/n1",)
    assert found[("drop", "drops")].traffic == ("pod",)
    assert "FORWARD -d 10.2.1.0/24 -j DROP" in found[("drop", "drops")].entry
