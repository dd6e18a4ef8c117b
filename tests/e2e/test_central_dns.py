"""The seed's central DNS mode on real nodes, over the host's own ClusterLink agents.

``kosmosctl install`` (run by ``local up``) makes the host a ClusterLink peer: its agents run
on the host's real node, so the host's pod and service CIDRs are on the tunnels like a
member's. The test restarts the in-cluster cluster-manager with ``--no-multi-cluster-service``
(and restores its arguments after): a host pod on cluster1's leaf node then gets a member copy
whose resolv.conf names the host's kube-dns ClusterIP, and that copy, a real container on
cluster1's real node, resolves a host Service's ``cluster.local`` name through the host's DNS
and gets HTTP 200 from its backend, a pod on the host's real node. The same backend pod also
fetches a page straight from the member pod's IP: host pod <-> member pod both ways.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from kosmos.local import kosmos_plan
from kosmos.local.images import HTTP_REF, SHELL_REF
from kosmos.local.kubectl import Kubectl, KubectlError
from tests.e2e.conftest import E2EEnv
from tests.support import apply, get, wait_for

NS = "central-dns-e2e"
SHELL = SHELL_REF
HTTP = HTTP_REF
MANAGER = "kosmos-cluster-manager"
SYSTEM = "kosmos-system"
CENTRAL = "--no-multi-cluster-service"
PLACEMENT = json.dumps(kosmos_plan.REAL_NODE_PLACEMENT, sort_keys=True)
WEB = f"web.{NS}.svc.cluster.local"
#: (no `wget -T`: the static busybox of our shell image crashes on it; `timeout` instead)


def _args(host: Kubectl) -> list[str]:
    spec = get(host, "deployment", MANAGER, "-n", SYSTEM)["spec"]["template"]["spec"]
    return list(spec["containers"][0].get("args") or [])


def _set_args(host: Kubectl, args: list[str]) -> None:
    patch = [{"op": "replace", "path": "/spec/template/spec/containers/0/args", "value": args}]
    host.run("patch", "deployment", MANAGER, "-n", SYSTEM, "--type=json", "-p", json.dumps(patch))
    host.run("rollout", "status", f"deployment/{MANAGER}", "-n", SYSTEM, "--timeout=180s",
             timeout=200)  # fmt: skip


@pytest.fixture
def central_mode(e2e_env: E2EEnv) -> Iterator[Kubectl]:
    """The in-cluster cluster-manager with ``--no-multi-cluster-service``, restored after."""
    host = e2e_env.kubectl()
    before = _args(host)
    _set_args(host, [*before, CENTRAL])
    host.run("create", "namespace", NS)
    try:
        yield host
    finally:
        host.run("delete", "namespace", NS, "--wait=false")
        _set_args(host, before)
        _wait_leaf_endpoint(host)


def _wait_leaf_endpoint(host: Kubectl) -> None:
    """Until ``kubectl logs`` answers through a leaf node again: a restarted cluster-manager
    first takes the Lease, then its heartbeat moves the leaf nodes' address to its pod, and
    the tests after this one use the leaf endpoint at once."""
    pods = get(host, "pods", "-n", "default", "-l", "app=nginx")["items"]
    if not pods:
        return
    name = pods[0]["metadata"]["name"]
    wait_for(
        lambda: host.run("logs", name, "-n", "default", "--tail=1", timeout=20) is not None,
        120,
        "the leaf nodes' kubelet endpoint on the restarted cluster-manager",
        ignoring=(KubectlError,),
    )


def _web() -> list[dict[str, Any]]:
    """An HTTP pod on the host's real node and its Service."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": NS, "labels": {"app": "web"}},
        "spec": {
            **kosmos_plan.REAL_NODE_PLACEMENT,
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "main", "image": HTTP, "imagePullPolicy": "IfNotPresent"}],
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    return [pod, service]


def _leaf_pod(name: str, image: str, command: list[str] | None = None) -> dict[str, Any]:
    """A host pod on cluster1's leaf node; its copy runs on cluster1's real node."""
    container: dict[str, Any] = {"name": "main", "image": image, "imagePullPolicy": "IfNotPresent"}
    if command:
        container["command"] = command
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": NS,
            "annotations": {"kosmos.io/cluster-selector": PLACEMENT},
        },
        "spec": {
            "nodeName": "kosmos-cluster1",
            "tolerations": [{"key": "kosmos.io/node", "operator": "Equal", "value": "true"}],
            "terminationGracePeriodSeconds": 1,
            "containers": [container],
        },
    }


def _running_ip(kubectl: Kubectl, name: str) -> str:
    def ip() -> str | None:
        status = get(kubectl, "pod", name, "-n", NS).get("status", {})
        return status.get("podIP") if status.get("phase") == "Running" else None

    return str(wait_for(ip, 180, f"pod {name} Running"))


def test_a_leaf_pod_resolves_and_reaches_a_host_service_through_the_host_dns(
    e2e_env: E2EEnv, central_mode: Kubectl
):
    host, cluster1 = central_mode, e2e_env.kubectl("cluster1")
    dns_ip = get(host, "service", "kube-dns", "-n", "kube-system")["spec"]["clusterIP"]
    apply(host, *_web())
    web_ip = _running_ip(host, "web")
    cluster_ip = get(host, "service", "web", "-n", NS)["spec"]["clusterIP"]
    apply(host, _leaf_pod("client", SHELL, ["sleep", "3600"]))
    member_ip = _running_ip(host, "client")

    copy = get(cluster1, "pod", "client", "-n", NS)
    assert copy["spec"]["nodeName"] == "cluster1-real1"
    assert copy["spec"]["dnsPolicy"] == "None"
    assert copy["spec"]["dnsConfig"]["nameservers"] == [dns_ip]
    resolv = cluster1.run("exec", "client", "-n", NS, "--", "cat", "/etc/resolv.conf")
    assert f"nameserver {dns_ip}" in resolv, resolv

    def in_client(*argv: str) -> str:
        return cluster1.run("exec", "client", "-n", NS, "--", *argv, timeout=30)

    lookup = wait_for(
        lambda: in_client("nslookup", WEB),
        120,
        f"{WEB} to resolve through the host's DNS {dns_ip}",
        ignoring=(KubectlError,),
    )
    assert cluster_ip in lookup, lookup
    page = wait_for(
        lambda: in_client("timeout", "5", "wget", "-qO-", f"http://{WEB}/"),
        60,
        f"HTTP from {WEB}",
        ignoring=(KubectlError,),
    )
    assert page.strip() == "web"  # the HTTP image answers GET / with its pod name
    status = in_client("sh", "-c", f"timeout 5 wget -S -qO /dev/null http://{WEB}/ 2>&1")
    assert "200 OK" in status, status
    # member pod -> host pod, by pod IP
    assert in_client("timeout", "5", "wget", "-qO-", f"http://{web_ip}:8080/").strip() == "web"

    # the other way: the host pod on the host's real node reaches the member pod's IP
    apply(host, _leaf_pod("echo", HTTP))
    echo_ip = _running_ip(host, "echo")
    assert member_ip != echo_ip
    fetch = [
        "exec",
        "web",
        "-n",
        NS,
        "--",
        "timeout",
        "5",
        "wget",
        "-qO-",
        f"http://{echo_ip}:8080/",
    ]
    answer = wait_for(
        lambda: host.run(*fetch, timeout=30),
        60,
        "the host pod to reach the member pod",
        ignoring=(KubectlError,),
    )
    assert answer.strip() == "echo"
