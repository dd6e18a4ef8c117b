"""WireGuard (kosmos.net.wireguard) with real wireguard-go devices behind real 1:1 NAT.

Same testbed as the IPsec tests: pods talk both ways, the router sees only WireGuard's UDP,
keys stay out of logs, errors, reprs and command lines, ``ensure`` is idempotent, and
``stop`` leaves the node namespace as it was.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from kosmos.net.tunnels import InvalidTunnel, TunnelError, TunnelSpec
from kosmos.net.wireguard import (
    WIREGUARD_GO,
    WireGuard,
    preshared_key,
    private_key_from_seed,
)
from tests.dataplane import encryption_testbed as bed
from tests.support import require


@pytest.fixture
def testbed():
    require(os.geteuid() == 0, "dataplane tests need root (network namespaces)")
    for tool in ("ip", "iptables", "tcpdump", "iperf3", "unshare", "wg"):
        require(shutil.which(tool) is not None, f"WireGuard dataplane tests need `{tool}`")
    require(WIREGUARD_GO.exists(), "wireguard-go (Debian wireguard-go)")
    require(Path("/dev/net/tun").exists(), "a TUN device for wireguard-go")
    tb = bed.build()
    try:
        yield tb
    finally:
        bed.destroy(tb)


@pytest.fixture
async def devices(testbed):
    work = Path(tempfile.mkdtemp(prefix=testbed.prefix))
    seeds = {"a": os.urandom(32), "b": os.urandom(32)}
    backends = [
        WireGuard(netns=node.ns, run_dir=work / name, seed=seeds[name])
        for name, node in (("a", testbed.a), ("b", testbed.b))
    ]
    try:
        yield backends[0], backends[1], work, seeds
    finally:
        for backend in backends:
            await backend.stop()
        shutil.rmtree(work, ignore_errors=True)


def specs(tb: bed.Testbed, a: WireGuard, b: WireGuard, psk: bytes) -> tuple[TunnelSpec, TunnelSpec]:
    return (
        bed.spec(tb.a, tb.b, psk, remote_public_key=b.public_key()),
        bed.spec(tb.b, tb.a, psk, remote_public_key=a.public_key()),
    )


async def handshaken(backend: WireGuard, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not all(s.established for s in await backend.status()):
        assert time.monotonic() < deadline, await backend.status()
        await asyncio.sleep(0.05)


async def bring_up(a: WireGuard, b: WireGuard, spec_a: TunnelSpec, spec_b: TunnelSpec) -> None:
    await a.ensure([spec_a])
    await b.ensure([spec_b])
    await handshaken(a)
    await handshaken(b)


def uapi_peers(backend: WireGuard) -> str:
    """The device's own view (UAPI get), read with a plain socket: what the test measures."""
    import socket

    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(backend.uapi_socket))
        sock.sendall(b"get=1\n\n")
        data = b""
        while not data.endswith(b"\n\n"):
            data += sock.recv(65536)
    return data.decode()


def handshake_times(backend: WireGuard) -> list[str]:
    return [line for line in uapi_peers(backend).splitlines() if "last_handshake_time" in line]


def wg_pubkey(private: bytes) -> str:
    key = base64.b64encode(private).decode()
    out = subprocess.run(["wg", "pubkey"], input=key, capture_output=True, text=True, check=True)
    return out.stdout.strip()


async def test_pods_talk_through_wireguard_and_the_underlay_carries_only_wireguard(
    testbed, devices
):
    a, b, work, _ = devices
    tb = testbed
    await bring_up(a, b, *specs(tb, a, b, os.urandom(32)))
    (pod_a, ip_a, _), (pod_b, ip_b, _) = tb.a.pods[0], tb.b.pods[0]
    capture = bed.Capture(tb.router, work)
    try:
        assert bed.ping(pod_a, ip_b), "pod a -> pod b"
        assert bed.ping(pod_b, ip_a), "pod b -> pod a"
        assert bed.tcp_echo(pod_a, pod_b, ip_b) == b"somsok"
        assert bed.tcp_echo(pod_b, pod_a, ip_a) == b"somsok"
        bed.ping(
            pod_a, "10.12.3.10", count=1, deadline=1
        )  # control: outside the tunnel, so plaintext
    finally:
        capture.stop()
    encrypted = capture.count("udp port 51820")
    plaintext = capture.count(f"host {ip_a} and host {ip_b}")
    assert encrypted >= 16, f"only {encrypted} WireGuard packets crossed the router"
    assert plaintext == 0, f"{plaintext} plaintext pod packets crossed the router"
    assert capture.count("host 10.12.3.10") >= 1, "the capture would have seen plaintext"


async def test_ensure_is_idempotent_and_keys_are_stable(testbed, devices, caplog):
    a, b, work, seeds = devices
    spec_a, spec_b = specs(testbed, a, b, os.urandom(32))
    await bring_up(a, b, spec_a, spec_b)
    before = handshake_times(a) + handshake_times(b)
    caplog.set_level(logging.INFO, logger="kosmos")
    caplog.clear()
    for _ in range(5):
        states = await a.ensure([spec_a])
        await b.ensure([spec_b])
    assert [s.established for s in states] == [True]
    assert not [r for r in caplog.records if "configured" in r.getMessage()], "re-configured"
    assert handshake_times(a) + handshake_times(b) == before
    # The key is a function of the seed, and `wg pubkey` agrees with our derivation.
    assert WireGuard(netns=None, run_dir=work / "other", seed=seeds["a"]).public_key() == (
        a.public_key()
    )
    assert wg_pubkey(private_key_from_seed(seeds["a"])) == a.public_key()


async def test_changed_subnets_update_allowed_ips_and_routes(testbed, devices):
    a, b, _, _ = devices
    tb = testbed
    spec_a, spec_b = specs(tb, a, b, os.urandom(32))
    await bring_up(a, b, spec_a, spec_b)
    pod_b2, ip_b2, subnet_b2 = tb.b.pods[1]
    assert not bed.ping(tb.a.pods[0][0], ip_b2, count=1, deadline=1)
    await a.ensure(
        [dataclasses.replace(spec_a, remote_subnets=(*spec_a.remote_subnets, subnet_b2))]
    )
    await b.ensure([dataclasses.replace(spec_b, local_subnets=(*spec_b.local_subnets, subnet_b2))])
    assert f"allowed_ip={subnet_b2}" in uapi_peers(a)
    assert bed.ping(tb.a.pods[0][0], ip_b2), "pod a -> pod b2"
    assert bed.ping(pod_b2, tb.a.pods[0][1]), "pod b2 -> pod a"
    await a.ensure([spec_a])
    assert subnet_b2 not in bed.run(None, "ip", "-n", tb.a.ns, "route", "show", "table", "220")


async def test_dual_stack_pods_share_one_peer(testbed, devices):
    a, b, _, _ = devices
    tb = testbed
    (ip6_a, net6_a), (ip6_b, net6_b) = bed.add_ipv6(tb)
    spec_a, spec_b = specs(tb, a, b, os.urandom(32))
    spec_a = dataclasses.replace(
        spec_a,
        local_subnets=(*spec_a.local_subnets, net6_a),
        remote_subnets=(*spec_a.remote_subnets, net6_b),
    )
    spec_b = dataclasses.replace(
        spec_b,
        local_subnets=(*spec_b.local_subnets, net6_b),
        remote_subnets=(*spec_b.remote_subnets, net6_a),
    )
    await bring_up(a, b, spec_a, spec_b)
    assert bed.ping(tb.a.pods[0][0], ip6_b), "pod a -> pod b over IPv6"
    assert bed.ping(tb.b.pods[0][0], ip6_a), "pod b -> pod a over IPv6"
    assert bed.ping(tb.a.pods[0][0], tb.b.pods[0][1]), "and IPv4 through the same peer"
    assert f"{net6_b} dev kwg0 src fd11:1::1" in bed.run(
        None, "ip", "-n", tb.a.ns, "-6", "route", "show", "table", "220"
    )


async def test_a_route_deleted_by_hand_comes_back(testbed, devices):
    a, b, _, _ = devices
    tb = testbed
    spec_a, spec_b = specs(tb, a, b, os.urandom(32))
    await bring_up(a, b, spec_a, spec_b)
    bed.run(None, "ip", "-n", tb.a.ns, "route", "del", "10.12.1.0/24", "table", "220")
    assert not bed.ping(tb.a.pods[0][0], tb.b.pods[0][1], count=1, deadline=1)
    await a.ensure([spec_a])
    assert bed.ping(tb.a.pods[0][0], tb.b.pods[0][1])


async def test_keys_never_show(testbed, devices, caplog):
    a, b, work, seeds = devices
    psk = os.urandom(32)
    secrets = [psk, preshared_key(psk), private_key_from_seed(seeds["a"])]
    secrets.append(private_key_from_seed(seeds["b"]))
    forms = [f for s in secrets for f in (s, s.hex().encode(), base64.b64encode(s))]
    caplog.set_level(logging.DEBUG, logger="kosmos")
    spec_a, spec_b = specs(testbed, a, b, psk)
    await bring_up(a, b, spec_a, spec_b)
    unknown = dataclasses.replace(spec_a, remote_public_key=None)
    states = await a.ensure([unknown])
    assert not states[0].established and "public key is not known" in states[0].detail
    with pytest.raises(InvalidTunnel) as bad:
        dataclasses.replace(spec_a, remote_subnets=("not-a-cidr",))
    cmdlines = bed.command_lines([testbed.a.ns, testbed.b.ns])
    assert cmdlines, "wireguard-go should be running"
    texts = [repr(a), repr(spec_a), str(bad.value), states[0].detail]
    texts += [r.getMessage() for r in caplog.records]
    files = [p for p in work.rglob("*") if p.is_file() and p.name != "private.key"]
    for form in forms:
        for text in texts:
            assert form.decode("latin-1") not in text
        for blob in [*cmdlines, *(p.read_bytes() for p in files)]:
            assert form not in blob


async def test_stop_leaves_the_namespace_as_it_was(testbed, devices):
    a, b, _, _ = devices
    before = {node.ns: bed.snapshot(node.ns) for node in (testbed.a, testbed.b)}
    await bring_up(a, b, *specs(testbed, a, b, os.urandom(32)))
    assert "kwg0" in bed.snapshot(testbed.a.ns)["links"]
    await a.stop()
    await b.stop()
    assert {node.ns: bed.snapshot(node.ns) for node in (testbed.a, testbed.b)} == before


async def test_a_restarted_agent_adopts_the_running_device(testbed, devices, caplog):
    a, b, _, seeds = devices
    spec_a, spec_b = specs(testbed, a, b, os.urandom(32))
    await bring_up(a, b, spec_a, spec_b)
    before = handshake_times(a)
    caplog.set_level(logging.INFO, logger="kosmos")
    again = WireGuard(netns=testbed.a.ns, run_dir=a.run_dir, seed=seeds["a"])
    await again.start()
    assert [(s.name, s.established) for s in await again.status()] == [("to-b", True)]
    states = await again.ensure([spec_a])
    assert states[0].established
    messages = [r.getMessage() for r in caplog.records]
    assert any("adopted" in m for m in messages) and not any("configured" in m for m in messages)
    assert handshake_times(a) == before
    await again.stop()


async def test_throughput(testbed, devices, capsys):
    a, b, _, _ = devices
    tb = testbed
    await bring_up(a, b, *specs(tb, a, b, os.urandom(32)))
    mbits = bed.iperf3(tb.a.pods[0][0], tb.b.pods[0][0], tb.b.pods[0][1], seconds=2)
    with capsys.disabled():
        print(f"\nWireGuard (wireguard-go) pod->pod: {mbits:.0f} Mbit/s")
    assert mbits > 10


async def test_a_device_that_cannot_start_says_why(testbed, tmp_path):
    broken = WireGuard(netns=f"{testbed.prefix}missing", run_dir=tmp_path / "wg")
    with pytest.raises(TunnelError, match="wireguard-go did not start.*network namespace"):
        await broken.start()
    await broken.stop()
