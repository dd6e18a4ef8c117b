"""`kosmos mcs-dns` against a real apiserver, served by the real CoreDNS, queried with dnspython.

The ServiceImports and MCS EndpointSlices are written by hand, as the MCS controller writes
them; the zone writer and CoreDNS (``file`` plugin, kosmos-coredns's reload period) are the
real processes.
"""

from __future__ import annotations

import logging
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from kosmos.api import names
from kosmos.local import toolchain
from kosmos.ops import mcsdns
from tests import support
from tests.fixtures.clusters import LocalEnv
from tests.support import wait_for

log = logging.getLogger("kosmos.tests")
KOSMOS = str(Path(sys.executable).parent / "kosmos")
ZONE = names.MCS_ZONE
CLUSTER = "cluster1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Resolver:
    port: int

    def query(self, name: str, kind: str) -> dns.message.Message:
        request = dns.message.make_query(name, kind, use_edns=0, payload=4096)
        return dns.query.udp(request, "127.0.0.1", port=self.port, timeout=2)

    def answers(self, name: str, kind: str) -> list[str]:
        response = self.query(name, kind)
        return sorted(
            rd.to_text()
            for rrset in response.answer
            if rrset.rdtype == dns.rdatatype.from_text(kind)
            for rd in rrset
        )

    def rcode(self, name: str, kind: str) -> int:
        return int(self.query(name, kind).rcode())


def start(argv: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    out = log_path.open("wb")
    return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ))


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def resolver(local_env: LocalEnv, kosmos_crds: list[str], tmp_path: Path) -> Iterator[Resolver]:
    """The zone writer on the host and CoreDNS serving its zone on a free port."""
    zone_file = tmp_path / "clusterset.db"
    writer = start(
        [
            KOSMOS,
            "mcs-dns",
            "--zone-file",
            str(zone_file),
            "--kubeconfig",
            str(local_env.kubeconfig(local_env.host)),
            "--health-port",
            "0",
        ],
        tmp_path / "mcs-dns.log",
    )
    port = free_port()
    corefile = tmp_path / "Corefile"
    corefile.write_text(
        f"{ZONE}:{port} {{\n    file {zone_file} {ZONE} {{\n        reload {mcsdns.RELOAD}\n"
        "    }\n"
        "    errors\n}\n"
    )
    binary = toolchain.ensure(log.info, only=("coredns",)).path("coredns")
    coredns = start([str(binary), "-conf", str(corefile)], tmp_path / "coredns.log")
    resolver = Resolver(port)
    try:
        wait_for(
            lambda: resolver.answers(f"dns-version.{ZONE}", "TXT") == ['"1.0.0"'],
            30,
            "CoreDNS answering the version record from the written zone",
            ignoring=(dns.exception.Timeout, OSError),
        )
        yield resolver
    finally:
        stop(writer)
        stop(coredns)
        for name in ("mcs-dns.log", "coredns.log"):
            log.info("%s:\n%s", name, (tmp_path / name).read_text()[-3000:])


def service_import(ns: str, name: str, kind: str, ips: list[str]) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "type": kind,
        "ports": [
            {"name": "http", "protocol": "TCP", "port": 80},
            {"name": "dns", "protocol": "UDP", "port": 53},
        ],
    }
    if ips:
        spec["ips"] = ips
    return {
        "apiVersion": f"{names.MCS_GROUP}/v1beta1",
        "kind": "ServiceImport",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def endpoint_slice(ns: str, name: str, cluster: str, eps: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{name}-{cluster}-4",
            "namespace": ns,
            "labels": {
                names.LABEL_MCS_SERVICE_NAME: name,
                names.LABEL_MCS_SOURCE_CLUSTER: cluster,
                # another MCS controller's: Kosmos's (running in the session's tree) would
                # delete slices it owns that no export backs; DNS reads them all
                names.LABEL_SLICE_MANAGED_BY: "mcs.example.com",
            },
        },
        "addressType": "IPv4",
        "ports": [
            {"name": "http", "protocol": "TCP", "port": 8080},
            {"name": "dns", "protocol": "UDP", "port": 5353},
        ],
        "endpoints": eps,
    }


def apply(local_env: LocalEnv, *bodies: dict[str, Any]) -> None:
    support.apply(local_env.kubectl(local_env.host), *bodies)


def test_cluster_set_ip_records(local_env: LocalEnv, namespace: str, resolver: Resolver) -> None:
    base = f"web.{namespace}.svc.{ZONE}"
    assert resolver.rcode(base, "A") == dns.rcode.NXDOMAIN  # not exported: no name
    apply(local_env, service_import(namespace, "web", "ClusterSetIP", ["10.96.7.7", "fd00::7"]))
    wait_for(lambda: resolver.answers(base, "A") == ["10.96.7.7"], 15, f"A of {base}")
    assert resolver.answers(base, "AAAA") == ["fd00::7"]
    assert resolver.answers(f"_http._tcp.{base}", "SRV") == [f"0 10 80 {base}."]
    assert resolver.answers(f"_dns._udp.{base}", "SRV") == [f"0 10 53 {base}."]
    assert resolver.answers(base, "SRV") == [f"0 10 53 {base}.", f"0 10 80 {base}."]
    assert resolver.rcode(f"{CLUSTER}.{base}", "A") == dns.rcode.NXDOMAIN
    assert resolver.rcode(f"nothere.{namespace}.svc.{ZONE}", "A") == dns.rcode.NXDOMAIN
    local_env.kubectl(local_env.host).run("-n", namespace, "delete", "serviceimport", "web")
    wait_for(lambda: resolver.rcode(base, "A") == dns.rcode.NXDOMAIN, 15, f"{base} gone")


def test_headless_records(local_env: LocalEnv, namespace: str, resolver: Resolver) -> None:
    base = f"db.{namespace}.svc.{ZONE}"
    ready = {"ready": True}
    eps1 = [
        {"addresses": ["10.10.1.5"], "hostname": "db-0", "conditions": ready},
        {"addresses": ["10.10.1.6"], "conditions": ready},
        {"addresses": ["10.10.1.7"], "conditions": {"ready": False}},
    ]
    eps2 = [{"addresses": ["10.11.1.5"], "hostname": "db-0", "conditions": ready}]
    apply(
        local_env,
        service_import(namespace, "db", "Headless", []),
        endpoint_slice(namespace, "db", "cluster1", eps1),
        endpoint_slice(namespace, "db", "cluster2", eps2),
    )
    want = ["10.10.1.5", "10.10.1.6", "10.11.1.5"]
    wait_for(lambda: resolver.answers(base, "A") == want, 15, f"A of {base}")
    assert resolver.answers(f"db-0.cluster1.{base}", "A") == ["10.10.1.5"]
    assert resolver.answers(f"db-0.cluster2.{base}", "A") == ["10.11.1.5"]
    assert resolver.answers(f"10-10-1-6.cluster1.{base}", "A") == ["10.10.1.6"]
    targets = [f"db-0.cluster1.{base}.", f"10-10-1-6.cluster1.{base}.", f"db-0.cluster2.{base}."]
    assert resolver.answers(f"_http._tcp.{base}", "SRV") == sorted(
        f"0 10 8080 {t}" for t in targets
    )
    # one record per endpoint and port at the bare name; the two ports differ here
    assert len(resolver.answers(base, "SRV")) == 6
    # the per-cluster name is reserved: no records (it is an empty non-terminal of the
    # per-endpoint names, so NOERROR with no answer, never an address)
    assert resolver.answers(f"cluster1.{base}", "A") == []
    assert resolver.rcode(f"10-10-1-7.cluster1.{base}", "A") == dns.rcode.NXDOMAIN


def test_headless_without_ready_endpoints_is_nxdomain(
    local_env: LocalEnv, namespace: str, resolver: Resolver
) -> None:
    base = f"idle.{namespace}.svc.{ZONE}"
    eps = [{"addresses": ["10.10.2.5"], "conditions": {"ready": False}}]
    apply(
        local_env,
        service_import(namespace, "idle", "Headless", []),
        endpoint_slice(namespace, "idle", "cluster1", eps),
    )
    marker = f"marker.{namespace}.svc.{ZONE}"
    apply(local_env, service_import(namespace, "marker", "ClusterSetIP", ["10.96.9.9"]))
    wait_for(lambda: resolver.answers(marker, "A") == ["10.96.9.9"], 15, "the later import")
    assert resolver.rcode(base, "A") == dns.rcode.NXDOMAIN


def test_import_to_resolvable_latency(
    local_env: LocalEnv, namespace: str, resolver: Resolver
) -> None:
    """Create an import, poll CoreDNS every 10 ms: watch + debounce + write + reload tick."""
    latencies = []
    for i in range(10):
        name = f"lat{i}"
        base = f"{name}.{namespace}.svc.{ZONE}"
        started = time.monotonic()
        apply(local_env, service_import(namespace, name, "ClusterSetIP", [f"10.96.8.{i + 1}"]))
        wait_for(lambda b=base: resolver.answers(b, "A") != [], 15, f"A of {base}", interval=0.01)
        latencies.append(time.monotonic() - started)
    latencies.sort()
    log.info(
        "import -> resolvable: p50 %.3fs max %.3fs (%s)",
        statistics.median(latencies),
        latencies[-1],
        ", ".join(f"{s:.2f}" for s in latencies),
    )
    assert latencies[-1] < 2.0
