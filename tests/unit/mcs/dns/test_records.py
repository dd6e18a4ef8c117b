"""The clusterset.local record builder against the MCS DNS specification's record list."""

from __future__ import annotations

from typing import Any

import dns.zone
from hypothesis import given, settings
from hypothesis import strategies as st

from kosmos.api import names
from kosmos.mcs.dns import records, zone
from kosmos.mcs.dns.records import Record

ZONE = names.MCS_ZONE
label = st.from_regex(r"\A[a-z]([a-z0-9-]{0,20}[a-z0-9])?\Z")
long_label = st.from_regex(r"\A[a-z][a-z0-9]{60,70}\Z")
ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(str)
port_name = st.sampled_from(["", "http", "dns", "metrics"])
protocol = st.sampled_from(["TCP", "UDP"])


def make_import(ns: str, name: str, kind: str, ports: list[Any], ips: list[str]) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": kind, "ports": ports}
    if kind == "ClusterSetIP":
        spec["ips"] = ips
    return {"metadata": {"namespace": ns, "name": name}, "spec": spec}


def make_slice(ns: str, svc: str, cluster: str, ports: list[Any], endpoints: list[Any]) -> Any:
    labels = {names.LABEL_MCS_SERVICE_NAME: svc, names.LABEL_MCS_SOURCE_CLUSTER: cluster}
    return {
        "metadata": {"namespace": ns, "name": f"{svc}-{cluster}", "labels": labels},
        "ports": ports,
        "endpoints": endpoints,
    }


@st.composite
def snapshots(draw: st.DrawFn) -> tuple[list[Any], list[Any]]:
    """ServiceImports of both types and slices from several clusters, some names too long."""
    imports, slices = [], []
    clusters = draw(st.lists(st.one_of(label, long_label), min_size=1, max_size=3, unique=True))
    for _ in range(draw(st.integers(1, 4))):
        ns, name = draw(label), draw(st.one_of(label, label, long_label))
        kind = draw(st.sampled_from(["ClusterSetIP", "Headless"]))
        names_ = draw(st.lists(port_name, min_size=1, max_size=3, unique=True))
        ports = [
            {"name": n, "protocol": draw(protocol), "port": draw(st.integers(1, 65535))}
            for n in names_
        ]
        ips = draw(st.lists(st.one_of(ipv4, ipv6), max_size=2))
        imports.append(make_import(ns, name, kind, ports, ips))
        for cluster in draw(st.lists(st.sampled_from(clusters), max_size=3, unique=True)):
            endpoints = [
                {
                    "addresses": draw(st.lists(st.one_of(ipv4, ipv6), min_size=1, max_size=2)),
                    "hostname": draw(st.one_of(st.none(), label)),
                    "conditions": {"ready": draw(st.sampled_from([True, False, None]))},
                }
                for _ in range(draw(st.integers(0, 3)))
            ]
            slice_ports = [
                {"name": p["name"], "protocol": p["protocol"], "port": 8080} for p in ports
            ]
            slices.append(make_slice(ns, name, cluster, slice_ports, endpoints))
    return imports, slices


def by_name(built: records.Records) -> dict[str, list[Record]]:
    out: dict[str, list[Record]] = {}
    for record in built.records:
        out.setdefault(record.name, []).append(record)
    return out


@settings(max_examples=200, deadline=None)
@given(snapshots())
def test_names_are_valid_and_in_the_zone(snapshot: tuple[list[Any], list[Any]]) -> None:
    built = records.build(*snapshot)
    for record in built.records:
        assert record.name.endswith("." + ZONE)
        assert records.valid_name(record.name)
        assert all(len(part) <= 63 for part in record.name.split("."))
    assert Record(f"dns-version.{ZONE}", "TXT", "1.0.0") in built.records


@settings(max_examples=200, deadline=None)
@given(snapshots())
def test_srv_targets_exist_and_bare_srv_is_unique(snapshot: tuple[list[Any], list[Any]]) -> None:
    built = records.build(*snapshot)
    owners = by_name(built)
    srv = [r for r in built.records if r.type == "SRV"]
    for record in srv:
        target = record.data.split()[3]
        assert any(r.type in ("A", "AAAA") for r in owners[target])
    assert len(srv) == len(set(srv))


@settings(max_examples=200, deadline=None)
@given(snapshots())
def test_no_per_cluster_name_and_same_subset(snapshot: tuple[list[Any], list[Any]]) -> None:
    imports, slices = snapshot
    built = records.build(imports, slices)
    owners = by_name(built)
    clusters = {s["metadata"]["labels"][names.LABEL_MCS_SOURCE_CLUSTER] for s in slices}
    for imp in imports:
        base = f"{imp['metadata']['name']}.{imp['metadata']['namespace']}.svc.{ZONE}"
        for cluster in clusters:
            assert f"{cluster}.{base}" not in owners
        if imp["spec"]["type"] != "Headless" or base not in owners:
            continue
        # A and AAAA come from one set of endpoints: every per-endpoint address is under base
        addresses = {(r.type, r.data) for r in owners[base] if r.type in ("A", "AAAA")}
        for name, recs in owners.items():
            if name.endswith("." + base) and not name.startswith("_"):
                assert {(r.type, r.data) for r in recs} <= addresses


@settings(max_examples=200, deadline=None)
@given(snapshots())
def test_zone_file_parses(snapshot: tuple[list[Any], list[Any]]) -> None:
    built = records.build(*snapshot)
    text = zone.render(built.records, ZONE, 7)
    parsed = dns.zone.from_text(text, origin=ZONE, relativize=False)
    soa = parsed.find_rdataset(ZONE + ".", "SOA")[0]
    assert soa.serial == 7
    assert sum(len(rds) for _, rds in parsed.iterate_rdatasets()) == len(built.records) + 2


def test_cluster_set_ip_records() -> None:
    ports = [
        {"name": "http", "protocol": "TCP", "port": 80},
        {"name": "", "protocol": "UDP", "port": 53},
    ]
    imp = make_import("default", "nginx", "ClusterSetIP", ports, ["10.96.0.20", "fd00::14"])
    base = f"nginx.default.svc.{ZONE}"
    got = set(records.build([imp], []).records)
    assert Record(base, "A", "10.96.0.20") in got
    assert Record(base, "AAAA", "fd00::14") in got
    assert Record(f"_http._tcp.{base}", "SRV", f"0 10 80 {base}") in got
    assert Record(base, "SRV", f"0 10 53 {base}") in got  # bare name: unnamed ports too
    assert not any(r.name.startswith("_._udp") for r in got)


def test_headless_per_endpoint_names_and_dedup() -> None:
    ports = [
        {"name": "tcp", "protocol": "TCP", "port": 42},
        {"name": "udp", "protocol": "UDP", "port": 42},
    ]
    imp = make_import("ns", "web", "Headless", ports, [])
    slice_ports = [
        {"name": "tcp", "protocol": "TCP", "port": 42},
        {"name": "udp", "protocol": "UDP", "port": 42},
    ]
    eps = [
        {"addresses": ["10.1.0.5"], "hostname": "web-0", "conditions": {"ready": True}},
        {"addresses": ["10.1.0.6"], "conditions": {}},
        {"addresses": ["10.1.0.7"], "conditions": {"ready": False}},
    ]
    base = f"web.ns.svc.{ZONE}"
    got = set(records.build([imp], [make_slice("ns", "web", "c1", slice_ports, eps)]).records)
    assert {r.data for r in got if r.name == base and r.type == "A"} == {"10.1.0.5", "10.1.0.6"}
    assert Record(f"web-0.c1.{base}", "A", "10.1.0.5") in got
    assert Record(f"10-1-0-6.c1.{base}", "A", "10.1.0.6") in got
    bare = [r for r in got if r.name == base and r.type == "SRV"]
    assert sorted(r.data for r in bare) == sorted(
        [f"0 10 42 web-0.c1.{base}", f"0 10 42 10-1-0-6.c1.{base}"]
    )
    assert Record(f"_udp._udp.{base}", "SRV", f"0 10 42 web-0.c1.{base}") in got


def test_headless_without_ready_endpoints_has_no_name() -> None:
    imp = make_import("ns", "web", "Headless", [{"name": "a", "port": 1}], [])
    eps = [{"addresses": ["10.1.0.7"], "conditions": {"ready": False}}]
    built = records.build([imp], [make_slice("ns", "web", "c1", [], eps)])
    assert [r.name for r in built.records] == [f"dns-version.{ZONE}"]


def test_too_long_names_are_skipped_not_truncated() -> None:
    svc = "s" * 63
    imp = make_import("n" * 63, svc, "Headless", [], [])
    eps = [{"addresses": ["10.0.0.1"], "hostname": "h" * 63, "conditions": {}}]
    built = records.build([imp], [make_slice("n" * 63, svc, "c" * 63, [], eps)])
    assert built.skipped
    assert all(records.valid_name(r.name) for r in built.records)


def test_serial_always_grows() -> None:
    assert zone.next_serial(5, 100.0) == 100
    assert zone.next_serial(100, 100.0) == 101
