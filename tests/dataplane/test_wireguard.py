"""What only the WireGuard backend (kosmos.net.wireguard, wireguard-go) does or must prove.

The scenarios every backend shares are in ``test_tunnels.py``. Here: the keys derive from
the node's seed (as ``wg pubkey`` agrees), a route deleted by hand comes back on the next
``ensure``, no key shows in logs, errors, reprs, files or command lines, and throughput.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import os
import subprocess

import pytest

from kosmos.net.tunnels import InvalidTunnel
from kosmos.net.wireguard import WireGuard, preshared_key, private_key_from_seed
from tests.dataplane.probes import command_lines, iperf3
from tests.dataplane.testbed import ip, ping
from tests.dataplane.tunnels import WIREGUARD, Backend, Ends, assert_no_secret


@pytest.fixture
def backend() -> Backend:
    return WIREGUARD


def wg_pubkey(private: bytes) -> str:
    key = base64.b64encode(private).decode()
    out = subprocess.run(["wg", "pubkey"], input=key, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_the_key_is_a_function_of_the_seed(ends: Ends) -> None:
    a, seed = ends.a, ends.seeds["a"]
    assert WireGuard(netns=None, run_dir=ends.work / "other", seed=seed).public_key() == (
        a.public_key()
    )
    assert wg_pubkey(private_key_from_seed(seed)) == a.public_key()


async def test_a_route_deleted_by_hand_comes_back(ends: Ends) -> None:
    (node_a, node_b), bed = ends.nodes, ends.bed
    spec_a, spec_b = ends.specs(os.urandom(32))
    await ends.up(spec_a, spec_b)
    ip(bed.node_ns(node_a), "route", "del", node_b.pod_cidr, "table", "220")
    assert not ping(bed.pod_ns(node_a), node_b.pod_ip, count=1, deadline=1)
    await ends.a.ensure([spec_a])
    assert ping(bed.pod_ns(node_a), node_b.pod_ip)


async def test_keys_never_show(ends: Ends, caplog: pytest.LogCaptureFixture) -> None:
    a, work, seeds = ends.a, ends.work, ends.seeds
    psk = os.urandom(32)
    secrets = [psk, preshared_key(psk), private_key_from_seed(seeds["a"])]
    secrets.append(private_key_from_seed(seeds["b"]))
    forms = [f for s in secrets for f in (s, s.hex().encode(), base64.b64encode(s))]
    caplog.set_level(logging.DEBUG, logger="kosmos")
    spec_a, spec_b = ends.specs(psk)
    await ends.up(spec_a, spec_b)
    unknown = dataclasses.replace(spec_a, remote_public_key=None)
    states = await a.ensure([unknown])
    assert not states[0].established and "public key is not known" in states[0].detail
    with pytest.raises(InvalidTunnel) as bad:
        dataclasses.replace(spec_a, remote_subnets=("not-a-cidr",))
    cmdlines = command_lines([ends.bed.node_ns(node) for node in ends.nodes])
    assert cmdlines, "wireguard-go should be running"
    texts = [repr(a), repr(spec_a), str(bad.value), states[0].detail]
    texts += [r.getMessage() for r in caplog.records]
    files = [p for p in work.rglob("*") if p.is_file() and p.name != "private.key"]
    blobs = {str(path): path.read_bytes() for path in files}
    blobs |= {f"command line {i}": line for i, line in enumerate(cmdlines)}
    assert_no_secret(forms, texts, blobs)


async def test_throughput(ends: Ends, capsys: pytest.CaptureFixture[str]) -> None:
    bed, (node_a, node_b) = ends.bed, ends.nodes
    await ends.up(*ends.specs(os.urandom(32)))
    mbits = iperf3(bed.pod_ns(node_a), bed.pod_ns(node_b), node_b.pod_ip, seconds=2)
    with capsys.disabled():
        print(f"\nWireGuard (wireguard-go) pod->pod: {mbits:.0f} Mbit/s")
    assert mbits > 10
