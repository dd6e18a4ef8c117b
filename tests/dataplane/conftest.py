"""Dataplane tier fixtures: root and the kernel tools, and a running ClusterLink control plane."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from kosmos.local import components
from tests.dataplane.testbed import sweep_stale_testbeds
from tests.fixtures.clusters import LocalEnv
from tests.fixtures.link import LinkEnv
from tests.support import require

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


@pytest.fixture(scope="package")
def link_plane(kernel: None, local_env: LocalEnv) -> Iterator[LinkEnv]:
    """The CRDs in the host and a real ``kosmos network-manager`` process (no member linked)."""
    ports = components.Ports.for_base(local_env.plan(local_env.host).apiserver_port)
    env = LinkEnv(local_env, ports)
    env.install()
    sweep_stale_testbeds(env)
    started = components.running("network-manager") is None
    if started:
        env.start()
    yield env
    if started:
        env.stop()
