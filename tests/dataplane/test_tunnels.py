"""Every tunnel backend against its real daemon, real 1:1 NAT and real packets.

One suite for ``kosmos.net.ipsec.StrongSwan`` (charon with the libipsec backend: this kernel
has no ESP) and ``kosmos.net.wireguard.WireGuard`` (wireguard-go), on two node namespaces
behind a NAT router (``testbed.nat_pair``). What ClusterLink's encryption promises, whatever
the backend: pods talk both ways and the underlay carries only the tunnel's packets,
``ensure`` converges without needless renegotiation, subnets change in place, one tunnel
carries both families, a restarted agent adopts the running daemon, ``stop`` leaves the
namespace as it found it, and a daemon that cannot start says why.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time

import pytest

from kosmos.net.tunnels import TunnelError
from tests.dataplane.probes import Capture, snapshot, tcp_echo
from tests.dataplane.testbed import ip, ping
from tests.dataplane.tunnels import BACKENDS, Backend, Ends, grown
from tests.support import wait_for_async


@pytest.fixture(params=BACKENDS, ids=repr)
def backend(request: pytest.FixtureRequest) -> Backend:
    backend: Backend = request.param
    return backend


async def test_pods_talk_through_the_tunnel_and_the_underlay_carries_only_it(ends: Ends) -> None:
    (a, b), bed = ends.nodes, ends.bed
    await ends.up(*ends.specs(os.urandom(32)))
    pod_a, ip_a, pod_b, ip_b = bed.pod_ns(a), a.pod_ip, bed.pod_ns(b), b.pod_ip
    capture = Capture(bed.router, ends.work / "router.pcap")
    try:
        assert ping(pod_a, ip_b), "pod a -> pod b"
        assert ping(pod_b, ip_a), "pod b -> pod a"
        assert tcp_echo(pod_a, pod_b, ip_b) == b"somsok"
        assert tcp_echo(pod_b, pod_a, ip_a) == b"somsok"
        ping(pod_a, "10.12.3.10", count=1, deadline=1)  # control: outside the tunnel: plaintext
    finally:
        capture.stop()
    encrypted = capture.count(ends.backend.wire)
    plaintext = capture.count(f"host {ip_a} and host {ip_b}")
    assert encrypted >= 16, f"only {encrypted} {ends.backend.wire_name} packets crossed the router"
    assert plaintext == 0, f"{plaintext} plaintext pod packets crossed the router"
    assert capture.count("host 10.12.3.10") >= 1, "the capture would have seen plaintext"


async def test_ensure_is_idempotent_and_cheap(ends: Ends, caplog: pytest.LogCaptureFixture) -> None:
    backend, a, b = ends.backend, ends.a, ends.b
    spec_a, spec_b = ends.specs(os.urandom(32))
    await ends.up(spec_a, spec_b)
    before = (backend.sessions(a), backend.sessions(b))
    caplog.set_level(logging.INFO, logger="kosmos")
    caplog.clear()
    started = time.monotonic()
    for _ in range(5):
        states = await a.ensure([spec_a])
        await b.ensure([spec_b])
    per_call = (time.monotonic() - started) / 10
    assert [s.established for s in states] == [True]
    await asyncio.sleep(0.3)  # a renegotiation, had one started, would show by now
    assert (backend.sessions(a), backend.sessions(b)) == before, (
        "ensure() with nothing changed renegotiated"
    )
    changes = [r for r in caplog.records if backend.reconfigured in r.getMessage()]
    assert not changes, "ensure() with nothing changed re-configured the daemon"
    assert per_call < 0.2, f"an idle ensure() took {per_call * 1000:.0f} ms"


async def test_changed_subnets_update_the_tunnel(ends: Ends) -> None:
    (node_a, node_b), bed, backend, a, b = ends.nodes, ends.bed, ends.backend, ends.a, ends.b
    spec_a, spec_b = ends.specs(os.urandom(32))
    await ends.up(spec_a, spec_b)
    pod_a, pod_b2, subnet_b2 = bed.pod_ns(node_a), bed.pod_ns(node_b, 1), node_b.extra_pod_cidrs[0]
    ip_b2 = subnet_b2.replace(".0/24", ".10")
    assert not ping(pod_a, ip_b2, count=1, deadline=1), "pod-b2 is not in the tunnel yet"
    old = backend.sessions(a)
    await b.ensure([grown(spec_b, local=(subnet_b2,))])
    await a.ensure([grown(spec_a, remote=(subnet_b2,))])
    await wait_for_async(
        lambda: backend.covers(a, subnet_b2),
        backend.settle,
        lambda: f"{backend} to carry {subnet_b2}",
        interval=0.05,
    )
    assert ping(pod_a, ip_b2), "pod a -> pod b2 after the change"
    assert ping(pod_b2, node_a.pod_ip), "pod b2 -> pod a after the change"
    assert (backend.sessions(a) != old) is backend.rekeys_on_change
    await a.ensure([spec_a])
    await wait_for_async(
        lambda: subnet_b2 not in ip(bed.node_ns(node_a), "route", "show", "table", "220"),
        backend.settle,
        f"the route to {subnet_b2} gone once the tunnel no longer carries it",
        interval=0.05,
    )


async def test_dual_stack_pods_share_one_tunnel(ends: Ends) -> None:
    (node_a, node_b), bed, backend = ends.nodes, ends.bed, ends.backend
    spec_a, spec_b = ends.specs(os.urandom(32))
    spec_a = grown(spec_a, local=(node_a.pod_cidr6,), remote=(node_b.pod_cidr6,))
    spec_b = grown(spec_b, local=(node_b.pod_cidr6,), remote=(node_a.pod_cidr6,))
    await ends.up(spec_a, spec_b)
    pod_a, pod_b = bed.pod_ns(node_a), bed.pod_ns(node_b)
    assert ping(pod_a, node_b.pod_ip6), "pod a -> pod b over IPv6"
    assert ping(pod_b, node_a.pod_ip6), "pod b -> pod a over IPv6"
    assert ping(pod_a, node_b.pod_ip), "and IPv4 through the same tunnel"
    routes = ip(bed.node_ns(node_a), "-6", "route", "show", "table", "220")
    assert backend.route(node_b.pod_cidr6, src=node_a.pod_gw6) in routes


async def test_stop_leaves_the_namespace_as_it_was(ends: Ends) -> None:
    namespaces = [ends.bed.node_ns(node) for node in ends.nodes]
    before = {ns: snapshot(ns) for ns in namespaces}
    await ends.up(*ends.specs(os.urandom(32)))
    assert ends.backend.device in snapshot(namespaces[0])["links"]
    await ends.a.stop()
    await ends.b.stop()
    assert {ns: snapshot(ns) for ns in namespaces} == before


async def test_a_restarted_agent_adopts_the_running_daemon(
    ends: Ends, caplog: pytest.LogCaptureFixture
) -> None:
    backend, a = ends.backend, ends.a
    spec_a, spec_b = ends.specs(os.urandom(32))
    await ends.up(spec_a, spec_b)
    before = backend.sessions(a)
    caplog.set_level(logging.INFO, logger="kosmos")
    again = ends.new(ends.nodes[0])
    await again.start()
    assert [(s.name, s.established) for s in await again.status()] == [("to-b", True)]
    states = await again.ensure([spec_a])
    assert states[0].established
    messages = [r.getMessage() for r in caplog.records]
    assert any("adopted" in m for m in messages)
    assert not any(backend.reconfigured in m for m in messages)
    assert backend.sessions(a) == before, "the new agent reloaded or renegotiated"
    await again.stop()
    assert not backend.pid_file(again).exists()


async def test_a_daemon_that_cannot_start_says_why(ends: Ends) -> None:
    backend = ends.backend
    broken = backend.new(f"{ends.bed.prefix}missing", ends.work / "broken", os.urandom(32))
    try:
        with pytest.raises(TunnelError, match=f"{backend.daemon} did not start.*network namespace"):
            await broken.start()
        assert await broken.status() == []
    finally:
        await broken.stop()
