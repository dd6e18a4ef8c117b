"""Dataplane tier fixtures: root and the kernel tools, testbeds, tunnel backends on a pair of
nodes (for modules that define ``backend``), and a running ClusterLink control plane with the
testbed a test module describes (its ``BED``)."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from kosmos.local import components
from tests.dataplane.linked import Layout, LinkedTestbed, sweep_stale_testbeds
from tests.dataplane.testbed import Build, ClusterSpec, Topology, nat_pair, sweep
from tests.dataplane.tunnels import Backend, Ends
from tests.fixtures.clusters import LocalEnv
from tests.fixtures.link import LinkEnv
from tests.support import require, wait_for

TOOLS = (
    "ip",
    "bridge",
    "ping",
    "iptables-restore",
    "ip6tables-restore",
    "ipset",
    "sysctl",
    "ethtool",
    "iperf3",
    "tcpdump",
)


@pytest.fixture(scope="session")
def kernel() -> None:
    require(os.geteuid() == 0, "dataplane tests need root (network namespaces)")
    for tool in TOOLS:
        require(shutil.which(tool) is not None, f"dataplane tests need `{tool}` on PATH")
    sweep()  # what runs that are gone left behind


@pytest.fixture
def testbed(kernel: None) -> Iterator[Build]:
    """Builds testbeds for one test (``testbed(clusters, firewall=...)``); removes them after."""
    built: list[Topology] = []

    def build(clusters: list[ClusterSpec], **options: Any) -> Topology:
        topology = Topology(clusters, **options)
        built.append(topology)
        topology.build()
        return topology

    yield build
    for topology in built:
        topology.destroy()


@pytest.fixture
def pair(backend: Backend, testbed: Build) -> Topology:
    """Two nodes that reach each other only through their elastic IPs (``nat_pair``), and
    what the module's tunnel ``backend`` needs on this machine."""
    backend.require()
    return testbed(nat_pair(), firewall=True)


@pytest.fixture
async def ends(backend: Backend, pair: Topology) -> AsyncIterator[Ends]:
    """The module's tunnel ``backend`` on both nodes of the ``pair`` (stopped afterwards)."""
    ends = Ends.on(backend, pair)
    try:
        yield ends
    finally:
        await ends.close()


@pytest.fixture(scope="package")
def link_plane(kernel: None, local_env: LocalEnv) -> Iterator[LinkEnv]:
    """The CRDs in the host and a real ``kosmos network-manager`` process (no member linked)."""
    ports = components.Ports.for_base(local_env.plan(local_env.host).apiserver_port)
    env = LinkEnv(local_env, ports)
    env.install()
    sweep_stale_testbeds(env)
    started = components.running(env.name) is None
    if started:
        env.start()
    yield env
    if started:
        env.stop()


@pytest.fixture(scope="module")
def bed(request: pytest.FixtureRequest, link_plane: LinkEnv) -> Iterator[LinkedTestbed]:
    """The ClusterLink testbed of the module's ``BED`` layout: clusters joined, agents
    running, and every NodeConfig applied (or, for ``applied=False``, planned)."""
    layout: Layout = request.module.BED
    bed = LinkedTestbed.of(link_plane, layout, secrets.token_hex(2))
    try:
        bed.up()
        if layout.echo:
            for node in bed.nodes():
                bed.echo(node)
        ready, what = (bed.applied, "applied") if layout.applied else (bed.planned, "planned")
        wait_for(lambda: all(ready(n) for n in bed.nodes()), 90, f"NodeConfigs {what}", interval=1)
        yield bed
    finally:
        bed.down()
