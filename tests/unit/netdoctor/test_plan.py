"""Which DaemonSets, which pairs, which command: every mode, both families, dns."""

from __future__ import annotations

from typing import Any

import pytest

from kosmos.api import names
from kosmos.ops.netdoctor import plan
from kosmos.ops.netdoctor.config import Config
from kosmos.ops.netdoctor.plan import Floater

A = Floater("f-a", "node-a", ("10.244.0.5", "fd00:10:244::5"), ("172.18.0.2", "fc00::2"))
B = Floater("f-b", "node-b", ("10.244.1.7",), ("172.18.0.3",))  # IPv4 only
C = Floater("f-c", "node-c", ("fd00:10:244:2::9",), ("fc00::4",))  # IPv6 only


def _config(**values: Any) -> Config:
    return Config(version="0.1.0", **values)


@pytest.mark.parametrize(
    ("mode", "src", "dst"),
    [
        ("pod", names.FLOATER, names.FLOATER),
        ("node", names.FLOATER_HOST, names.FLOATER_HOST),
        ("node-to-pod", names.FLOATER_HOST, names.FLOATER),
        ("pod-to-node", names.FLOATER, names.FLOATER_HOST),
    ],
)
def test_each_side_runs_the_floaters_of_its_network(mode: str, src: str, dst: str):
    assert plan.daemonsets(_config(mode=mode, dst_kubeconfig="d")) == {
        "src": (src,),
        "dst": (dst,),
    }
    assert plan.daemonsets(_config(mode=mode)) == {"src": tuple(dict.fromkeys([src, dst]))}


def test_dns_runs_from_the_source_floaters_only():
    assert plan.daemonsets(_config(protocol="dns", mode="node")) == {"src": (names.FLOATER_HOST,)}
    two = plan.daemonsets(_config(protocol="dns", dst_kubeconfig="d"))
    assert two == {"src": (names.FLOATER,), "dst": ()}


def test_floaters_take_pod_ips_and_their_nodes_internal_ips():
    pod = {
        "metadata": {"name": "f-a"},
        "spec": {"nodeName": "node-a"},
        "status": {"podIP": "10.244.0.5", "podIPs": [{"ip": "10.244.0.5"}, {"ip": "fd00::5"}]},
    }
    old = {
        "metadata": {"name": "f-z"},
        "spec": {"nodeName": "gone"},
        "status": {"podIP": "1.2.3.4"},
    }
    node = {
        "metadata": {"name": "node-a"},
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": "172.18.0.2"},
                {"type": "Hostname", "address": "node-a"},
                {"type": "InternalIP", "address": "fc00::2"},
            ]
        },
    }
    got = plan.floaters([old, pod], [node])
    assert [f.node for f in got] == ["gone", "node-a"]
    assert got[1].pod_ips == ("10.244.0.5", "fd00::5") and got[1].node_ips == (
        "172.18.0.2",
        "fc00::2",
    )
    assert got[0].pod_ips == ("1.2.3.4",)  # a single-stack pod with podIP only


def _keys(pairs: list[plan.Pair]) -> list[tuple[str, str, str]]:
    return [(p.src_node, p.dst_node, p.target) for p in pairs]


def test_pod_mode_pairs_every_source_with_every_pod_ip_of_its_family_self_included():
    pairs = plan.pairs(_config(mode="pod"), [A, B, C], [A, B, C])
    assert _keys(pairs) == [
        ("node-a", "node-a", "10.244.0.5"),
        ("node-a", "node-a", "fd00:10:244::5"),
        ("node-a", "node-b", "10.244.1.7"),
        ("node-a", "node-c", "fd00:10:244:2::9"),
        ("node-b", "node-a", "10.244.0.5"),
        ("node-b", "node-b", "10.244.1.7"),
        ("node-c", "node-a", "fd00:10:244::5"),
        ("node-c", "node-c", "fd00:10:244:2::9"),
    ]
    assert {p.src_pod for p in pairs if p.src_node == "node-a"} == {"f-a"}


@pytest.mark.parametrize("mode", ["node", "pod-to-node"])
def test_node_targets_are_the_destination_nodes_internal_ips(mode: str):
    pairs = plan.pairs(_config(mode=mode), [B], [A, B, C])
    assert _keys(pairs) == [("node-b", "node-a", "172.18.0.2"), ("node-b", "node-b", "172.18.0.3")]
    assert [p.family for p in plan.pairs(_config(mode=mode), [C], [A])] == [6]


def test_node_to_pod_targets_pod_ips():
    assert [p.target for p in plan.pairs(_config(mode="node-to-pod"), [B], [A])] == ["10.244.0.5"]


def test_commands_per_protocol():
    tcp = _config(cmd_timeout=4, port=9000)
    assert plan.command(tcp, "10.0.0.1") == (
        "curl", "-sS", "-g", "-m", "4", "http://10.0.0.1:9000/"
    )  # fmt: skip
    assert plan.command(tcp, "fd00::1")[-1] == "http://[fd00::1]:9000/"
    udp = _config(protocol="udp", cmd_timeout=3)
    assert plan.command(udp, "fd00::1") == (
        "python3", "-m", "kosmos.floater.probe", "udp", "fd00::1", "8889", "--timeout", "3"
    )  # fmt: skip
    icmp = _config(protocol="icmp")
    assert plan.command(icmp, "10.0.0.1") == ("ping", "-c", "1", "-W", "10", "10.0.0.1")
    dns = _config(protocol="dns", target_host_to_lookup="a.b.svc")
    assert plan.command(dns, "10.96.0.10") == (
        "nslookup", "-timeout=10", "-retry=1", "a.b.svc", "10.96.0.10"
    )  # fmt: skip


def test_tcp_succeeds_only_on_the_floaters_answer():
    assert plan.succeeded("tcp", 0, "OK node-a\n")
    assert not plan.succeeded("tcp", 0, "<html>another server</html>")
    assert not plan.succeeded("tcp", 7, "")
    assert plan.succeeded("udp", 0, "kosmos-floater node-a kosmos-netdoctor")
    assert not plan.succeeded("icmp", None, "")


def _service(name: str, ip: str) -> Any:
    return {"metadata": {"name": name, "namespace": "kube-system"}, "spec": {"clusterIP": ip}}


def test_dns_server_is_an_ip_or_a_kube_system_service():
    services = [_service("kube-dns", "10.96.0.10"), _service("metrics", "None")]
    assert plan.dns_server(_config(target_dns_server="1.1.1.1"), []) == ("1.1.1.1", "1.1.1.1")
    assert plan.dns_server(_config(), services) == ("kube-dns", "10.96.0.10")
    assert plan.dns_server(_config(), [_service("coredns", "10.96.0.3")]) == (
        "coredns",
        "10.96.0.3",
    )
    assert plan.dns_server(_config(target_dns_server="metrics"), services) is None
    assert plan.dns_server(_config(target_dns_server="other"), services) is None


def test_dns_pairs_one_per_source_floater():
    config = _config(protocol="dns")
    pairs = plan.pairs(config, [A, B], [], ("kube-dns", "10.96.0.10"))
    assert _keys(pairs) == [
        ("node-a", "kube-dns", "10.96.0.10"),
        ("node-b", "kube-dns", "10.96.0.10"),
    ]
    assert pairs[0].command[0] == "nslookup"
    assert plan.pairs(config, [A], [], None) == []


def test_a_resume_keeps_the_failed_node_pairs_of_the_same_family():
    pairs = plan.pairs(_config(), [A, B], [A, B])
    chosen = plan.select(pairs, [("node-a", "node-a", 6), ("node-b", "node-a", 4), ("x", "y", 4)])
    assert _keys(chosen) == [
        ("node-a", "node-a", "fd00:10:244::5"),
        ("node-b", "node-a", "10.244.0.5"),
    ]
