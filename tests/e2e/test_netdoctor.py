"""The seed's NetDoctor tutorial on real nodes: check, a fault, analyze, resume, clean.

The e2e environment has one real node per cluster (host-real1, cluster1-real1,
cluster2-real1), all three ClusterLink peers (p2p). Every ordered pair of clusters is checked
with ``dstKubeConfig`` (and each cluster with itself), in ``pod`` and ``node`` modes over tcp
and udp, plus ``dns`` from every cluster: every pair SUCCEEDED. Floaters land only on the
real nodes (kwok nodes run no container, leaf nodes are virtual).

Then two faults, in the real nodes' network namespaces:

- cluster1-real1 loses its FDB entry towards cluster2-real1's VTEP. cluster1's agents run
  with a long ``--repair-period`` meanwhile, or the agent would put it back within 30 s. Pod
  traffic between cluster1 and cluster2 breaks both ways (a TCP answer needs the way back).
- cluster2-real1 drops TCP to the floater port from host-real1's address (``iptables -I
  INPUT``): only the node-mode tcp pair host-real1 -> cluster2-real1 breaks.

The same checks then fail exactly those pairs; ``analyze`` names the missing FDB entry and
the DROP rule with the pairs they break; after the repair ``resume`` re-checks only the
failed pairs and they succeed; ``clean`` leaves no floater object in any cluster.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any

import pytest

from kosmos.local import images
from kosmos.local.kubectl import Kubectl
from tests.e2e.conftest import PORT_BASE, E2EEnv
from tests.support import get, wait_for

CLUSTERS = ("host", "cluster1", "cluster2")
PORTS = {"host": PORT_BASE, "cluster1": PORT_BASE + 10, "cluster2": PORT_BASE + 20}
NODES = {c: f"{c}-real1" for c in CLUSTERS}
SYSTEM = "kosmos-system"
AGENT = "kosmos-agent"
FLOATER_PORT = 8889
MANAGED = "app.kubernetes.io/managed-by=kosmosctl-netdoctor"
LONG_REPAIR = "--repair-period=3600"
#: exit code of check/resume when the check ran and some pair did not succeed
PAIRS_FAILED = 3
#: the host's own Cluster (``kosmosctl install`` makes it), as analyze names the host's nodes
ROOT_CLUSTER = "kosmos-control-cluster"


def netns(cluster: str) -> str:
    return f"kosmos-{PORTS[cluster]}-{NODES[cluster]}"


def in_node(cluster: str, *argv: str) -> str:
    out = subprocess.run(
        ["ip", "netns", "exec", netns(cluster), *argv], check=True, capture_output=True, text=True
    )
    return out.stdout


@dataclass(frozen=True)
class Doctor:
    e2e: E2EEnv
    workdir: Path

    def kubeconfig(self, cluster: str) -> str:
        return str(self.e2e.state / "kubeconfig" / f"{cluster}-kubeconfig")

    def config(self, src: str, dst: str | None, mode: str, protocol: str) -> Path:
        name = f"{src}-{dst or 'self'}-{mode}-{protocol}"
        path = self.workdir / name / "config.json"
        path.parent.mkdir(exist_ok=True)
        body: dict[str, Any] = {
            "namespace": SYSTEM,
            "version": images.TAG,
            "mode": mode,
            "protocol": protocol,
            "podWaitTime": 120,
            "port": str(FLOATER_PORT),
            "maxNum": 3,
            "cmdTimeout": 5,
            "srcKubeConfig": self.kubeconfig(src),
            "srcImageRepository": "docker.io/kosmos",
        }
        if dst is not None:
            body |= {
                "dstKubeConfig": self.kubeconfig(dst),
                "dstImageRepository": "docker.io/kosmos",
            }
        path.write_text(json.dumps(body, indent=2))
        return path

    def run(self, verb: str, config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
        if verb in ("check", "resume"):
            extra = ("--resume-file", str(config.parent / "resume.json"), *extra)
        return self.e2e.kosmosctl("netdoctor", verb, "--config", str(config), *extra, check=False)

    def check(self, config: Path, verb: str = "check") -> tuple[int, list[dict[str, Any]]]:
        out = self.run(verb, config, "-o", "json")
        assert out.returncode in (0, PAIRS_FAILED), f"{verb} {config}:\n{out.stdout}\n{out.stderr}"
        return out.returncode, json.loads(out.stdout)


def pair(row: dict[str, Any]) -> tuple[str, str]:
    return row["srcNodeName"], row["dstNodeName"]


def directions() -> list[tuple[str, str | None]]:
    """Each cluster with itself, and every ordered pair of clusters (dstKubeConfig)."""
    return [(c, None) for c in CLUSTERS] + [
        (a, b) for a, b in product(CLUSTERS, CLUSTERS) if a != b
    ]


@pytest.fixture(scope="module")
def doctor(e2e_env: E2EEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Doctor]:
    d = Doctor(e2e_env, tmp_path_factory.mktemp("netdoctor"))
    yield d
    for cluster in CLUSTERS:  # whatever a failed test left behind
        d.run("clean", d.config(cluster, None, "pod", "tcp"))


def test_every_pair_succeeds(doctor: Doctor) -> None:
    for (src, dst), mode, protocol in product(directions(), ("pod", "node"), ("tcp", "udp")):
        code, rows = doctor.check(doctor.config(src, dst, mode, protocol))
        want = {(NODES[src], NODES[dst or src])}
        assert {pair(r) for r in rows} == want, (src, dst, mode, protocol, rows)
        assert code == 0 and all(r["result"] == "SUCCEEDED" for r in rows), rows
    for src, dst in directions()[: len(CLUSTERS)]:
        code, rows = doctor.check(doctor.config(src, dst, "pod", "dns"))
        assert code == 0 and rows and all(r["result"] == "SUCCEEDED" for r in rows), rows


def _agent_args(kubectl: Kubectl) -> list[str]:
    spec = get(kubectl, "daemonset", AGENT, "-n", SYSTEM)["spec"]["template"]["spec"]
    return list(spec["containers"][0].get("args") or [])


def _set_agent_args(kubectl: Kubectl, args: list[str]) -> None:
    patch = [{"op": "replace", "path": "/spec/template/spec/containers/0/args", "value": args}]
    kubectl.run("patch", "daemonset", AGENT, "-n", SYSTEM, "--type=json", "-p", json.dumps(patch))
    kubectl.run(
        "rollout", "status", "daemonset", AGENT, "-n", SYSTEM, "--timeout=120s", timeout=130
    )


def _vtep_entry(cluster: str, peer_ip: str) -> str:
    """The FDB line of ``cluster``'s real node that sends to ``peer_ip``."""
    lines = in_node(cluster, "bridge", "fdb", "show", "dev", "vx-bridge").splitlines()
    found = [line for line in lines if f"dst {peer_ip} " in f"{line} "]
    assert len(found) == 1, lines
    return found[0]


def _node_ip(e2e: E2EEnv, cluster: str) -> str:
    node = get(e2e.kubectl(cluster), "node", NODES[cluster])
    return next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")


@pytest.fixture(scope="module")
def faults(doctor: Doctor) -> Iterator[dict[str, str]]:
    """The two faults, and their repair at the end of the module whatever happens."""
    member = doctor.e2e.kubectl("cluster1")
    args = _agent_args(member)
    _set_agent_args(member, [*args, LONG_REPAIR])
    peer = _node_ip(doctor.e2e, "cluster2")
    host_ip = _node_ip(doctor.e2e, "host")
    entry = _vtep_entry("cluster1", peer)
    mac = entry.split()[0]
    drop = ["INPUT", "-s", host_ip, "-p", "tcp", "--dport", str(FLOATER_PORT), "-j", "DROP"]
    in_node("cluster1", "bridge", "fdb", "del", mac, "dev", "vx-bridge", "dst", peer)
    in_node("cluster2", "iptables", "-I", *drop)
    try:
        yield {"mac": mac, "peer": peer, "host_ip": host_ip}
    finally:
        subprocess.run(["ip", "netns", "exec", netns("cluster2"), "iptables", "-D", *drop],
                       check=False, capture_output=True)  # fmt: skip
        if LONG_REPAIR in _agent_args(member):
            _set_agent_args(member, args)  # the restarted agent puts the FDB entry back


def _broken(src: str, dst: str | None, mode: str, protocol: str) -> bool:
    ends = {src, dst or src}
    if mode == "pod":
        return ends == {"cluster1", "cluster2"}
    return (src, dst, protocol) == ("host", "cluster2", "tcp")


def test_a_fault_fails_exactly_the_affected_pairs(doctor: Doctor, faults: dict[str, str]) -> None:
    failed: list[tuple[str, str | None, str, str]] = []
    for (src, dst), mode, protocol in product(directions(), ("pod", "node"), ("tcp", "udp")):
        code, rows = doctor.check(doctor.config(src, dst, mode, protocol))
        ok = all(r["result"] == "SUCCEEDED" for r in rows)
        assert ok == (not _broken(src, dst, mode, protocol)), (src, dst, mode, protocol, rows)
        assert code == (0 if ok else PAIRS_FAILED)
        if not ok:
            failed.append((src, dst, mode, protocol))
            resume = json.loads(
                (doctor.config(src, dst, mode, protocol).parent / "resume.json").read_text()
            )
            assert [pair(r) for r in resume] == [(NODES[src], NODES[dst or src])]
            assert all(r["Status"] == 0 and r["ResultStr"] for r in resume)
    assert len(failed) == 2 * 2 + 1  # c1<->c2 pod tcp+udp both ways, host->c2 node tcp

    host = doctor.kubeconfig("host")
    out = doctor.e2e.kosmosctl(
        "--kubeconfig", host, "netdoctor", "analyze", "-o", "json", check=False
    )
    assert out.returncode == PAIRS_FAILED, out.stdout + out.stderr
    report = json.loads(out.stdout)
    assert report["inSync"] is False
    findings = [
        {"cluster": n["cluster"], "node": n["node"], **f}
        for n in report["nodes"]
        for f in n["findings"]
    ]
    fdb = [f for f in findings if f["kind"] == "fdb" and f["state"] == "missing"]
    assert [(f["cluster"], f["node"]) for f in fdb] == [("cluster1", NODES["cluster1"])], findings
    assert faults["mac"] in fdb[0]["entry"] and faults["peer"] in fdb[0]["entry"]
    assert f"cluster2/{NODES['cluster2']}" in fdb[0]["breaks"]
    drops = [f for f in findings if f["kind"] == "drop"]
    assert [(f["cluster"], f["node"]) for f in drops] == [("cluster2", NODES["cluster2"])], findings
    assert faults["host_ip"] in drops[0]["entry"]
    assert f"{ROOT_CLUSTER}/{NODES['host']}" in drops[0]["breaks"]
    others = [n for n in report["nodes"] if n["node"] not in (NODES["cluster1"], NODES["cluster2"])]
    assert all(n["status"] in ("in sync", "skipped") for n in others), others


def test_resume_after_repair_checks_only_the_failed_pairs(
    doctor: Doctor, faults: dict[str, str]
) -> None:
    member = doctor.e2e.kubectl("cluster1")
    _set_agent_args(member, [a for a in _agent_args(member) if a != LONG_REPAIR])
    restored = "the agent restores the FDB entry"
    wait_for(
        lambda: _vtep_entry("cluster1", faults["peer"]), 60, restored, ignoring=(AssertionError,)
    )
    drop = [
        "INPUT",
        "-s",
        faults["host_ip"],
        "-p",
        "tcp",
        "--dport",
        str(FLOATER_PORT),
        "-j",
        "DROP",
    ]
    in_node("cluster2", "iptables", "-D", *drop)
    for (src, dst), mode, protocol in product(directions(), ("pod", "node"), ("tcp", "udp")):
        if not _broken(src, dst, mode, protocol):
            continue
        config = doctor.config(src, dst, mode, protocol)
        code, rows = doctor.check(config, verb="resume")
        assert [pair(r) for r in rows] == [(NODES[src], NODES[dst or src])], rows
        assert code == 0 and rows[0]["result"] == "SUCCEEDED", rows
        assert json.loads((config.parent / "resume.json").read_text()) == []


def test_clean_leaves_nothing(doctor: Doctor) -> None:
    for cluster in CLUSTERS:
        out = doctor.run("clean", doctor.config(cluster, None, "pod", "tcp"))
        assert out.returncode == 0, out.stdout + out.stderr
    for cluster in CLUSTERS:
        kubectl = doctor.e2e.kubectl(cluster)
        left = kubectl.run(
            "get", "daemonsets,serviceaccounts,pods", "-A", "-l", MANAGED, "-o", "name"
        ).split()
        assert left == [], (cluster, left)
