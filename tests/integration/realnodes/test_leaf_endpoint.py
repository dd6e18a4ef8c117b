"""The leaf node's kubelet endpoint with real containers behind it: port-forward with
kubectl's defaults (and its SPDY fallback; to a kwok pod too), the node proxy's ``/pods``,
``/stats/summary`` and ``/metrics/resource`` of a leaf, and who may call it."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from kosmos.clustertree.kubeletstats import parse_samples
from tests.fixtures.tree import TreeEnv
from tests.integration.realnodes.conftest import RealEnv, image
from tests.support import apply, get, wait_for

LEAF = "kosmos-cluster1"
OTHER_LEAF = "kosmos-cluster2"
SERVE = 8080
REAL_TAINT = {"key": "local.kosmos.io/real-node", "operator": "Exists"}
LEAF_TAINT = {"key": "kosmos.io/node", "operator": "Exists"}


@pytest.fixture(autouse=True)
def _gone_afterwards(tree: TreeEnv, namespace: str) -> Iterator[None]:
    """Delete the test's pods and wait for their member copies to go: a real container
    still terminating in a member would be counted by the next test that looks there."""
    yield
    tree.host.run("delete", "pods", "--all", "-n", namespace, "--wait=false")
    for member in tree.env.members:
        kubectl = tree.member(member)
        wait_for(
            lambda k=kubectl: not k.run("get", "pods", "-n", namespace, "-o", "name").strip(),
            90,
            f"{member}'s copies in {namespace} gone",
        )


def _host_pod(name: str, leaf: str, real: bool) -> dict[str, Any]:
    """A host pod bound to ``leaf``; its member copy runs on a real node (the copy keeps
    the node selector; the session cordoned the first, ``cluster1-real2`` takes it) or on a
    kwok node."""
    spec: dict[str, Any] = {
        "nodeName": leaf,
        "tolerations": [LEAF_TAINT, REAL_TAINT],
        "terminationGracePeriodSeconds": 1,
        "containers": [
            {
                "name": "main",
                "image": image("http"),
                "imagePullPolicy": "Never",
                "ports": [{"containerPort": SERVE}],
            }
        ],
    }
    if real:
        spec["nodeSelector"] = {"local.kosmos.io/real-node": "true"}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def _running(tree: TreeEnv, namespace: str, name: str) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        pod: dict[str, Any] = get(tree.host, "pod", name, "-n", namespace)
        return pod if pod["status"].get("phase") == "Running" else None

    result: dict[str, Any] = wait_for(ready, 90, f"host pod {name} Running")
    return result


def _raw(tree: TreeEnv, leaf: str, path: str) -> str:
    out: str = tree.host.run("get", "--raw", f"/api/v1/nodes/{leaf}/proxy{path}")
    return out


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextmanager
def _port_forward(tree: TreeEnv, namespace: str, pod: str, **env: str) -> Iterator[int]:
    """``kubectl port-forward <pod> LOCAL:8080`` running; yields LOCAL."""
    local = _free_port()
    argv = [str(tree.host.binary), "--kubeconfig", str(tree.host_kubeconfig), "port-forward",
            "-n", namespace, pod, f"{local}:{SERVE}"]  # fmt: skip
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **env}
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("Forwarding from"), (line, proc.stderr and proc.stderr.read())
        yield local
    finally:
        proc.terminate()
        proc.wait(10)


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read().decode()


def test_port_forward_through_a_leaf_with_kubectls_defaults_and_over_spdy(
    tree: TreeEnv, real: RealEnv, namespace: str
):
    apply(tree.host, _host_pod("web", LEAF, real=True), namespace=namespace)
    _running(tree, namespace, "web")
    member = get(real.kubectl(), "pod", "web", "-n", namespace)
    assert member["spec"]["nodeName"] == real.second.name
    for env in ({}, {"KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"}):
        with _port_forward(tree, namespace, "web", **env) as local:
            status, body = _get(f"http://127.0.0.1:{local}/")
            assert status == 200, env
            assert body.strip() == "web", env  # the member container's own answer
            assert _get(f"http://127.0.0.1:{local}/")[0] == 200  # a second connection


def test_port_forward_through_a_leaf_to_a_kwok_pod(tree: TreeEnv, namespace: str):
    """kwok answers every forwarded port with one HTTP 200 naming its cluster."""
    apply(tree.host, _host_pod("sim", LEAF, real=False), namespace=namespace)
    _running(tree, namespace, "sim")
    with _port_forward(tree, namespace, "sim") as local:
        assert _get(f"http://127.0.0.1:{local}/") == (200, "hello from cluster1\n")


def test_the_node_proxys_pods_of_a_leaf_lists_exactly_the_pods_bound_to_it(
    tree: TreeEnv, namespace: str
):
    apply(
        tree.host,
        _host_pod("one", LEAF, real=False),
        _host_pod("two", LEAF, real=False),
        _host_pod("elsewhere", OTHER_LEAF, real=False),
        namespace=namespace,
    )
    for leaf, want in ((LEAF, {"one", "two"}), (OTHER_LEAF, {"elsewhere"})):
        listed = json.loads(_raw(tree, leaf, "/pods"))
        assert listed["kind"] == "PodList"
        bound = get(tree.host, "pods", "-A", "--field-selector", f"spec.nodeName={leaf}")["items"]
        names = {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in listed["items"]}
        assert names == {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in bound}
        assert {n for ns, n in names if ns == namespace} == want


def test_stats_and_resource_metrics_of_a_leaf_report_the_real_container(
    tree: TreeEnv, real: RealEnv, namespace: str
):
    apply(tree.host, _host_pod("web", LEAF, real=True), namespace=namespace)
    uid = _running(tree, namespace, "web")["metadata"]["uid"]

    def reported() -> dict[str, Any] | None:
        summary = json.loads(_raw(tree, LEAF, "/stats/summary"))
        pods = [p for p in summary["pods"] if p["podRef"]["namespace"] == namespace]
        containers = pods[0].get("containers") if pods else None
        return summary if containers and containers[0].get("memory") else None

    summary = wait_for(reported, 60, "the leaf's Summary to report the container")
    assert summary["node"]["nodeName"] == LEAF
    assert summary["node"]["cpu"]["usageCoreNanoSeconds"] > 0
    assert summary["node"]["memory"]["workingSetBytes"] > 0
    (pod,) = [p for p in summary["pods"] if p["podRef"]["namespace"] == namespace]
    assert pod["podRef"] == {"name": "web", "namespace": namespace, "uid": uid}  # the host's
    assert pod["containers"][0]["memory"]["workingSetBytes"] > 0
    assert pod["containers"][0]["cpu"]["usageCoreNanoSeconds"] > 0

    wanted = [("node_cpu_usage_seconds_total", None, None),
              ("node_memory_working_set_bytes", None, None)]  # fmt: skip
    for metric in ("container_memory_working_set_bytes", "container_cpu_usage_seconds_total",
                   "pod_memory_working_set_bytes", "container_start_time_seconds"):  # fmt: skip
        wanted.append((metric, "web", namespace))

    def metrics() -> list[tuple[str, dict[str, str], float]] | None:
        samples = parse_samples(_raw(tree, LEAF, "/metrics/resource"))
        values = {(n, labels.get("pod"), labels.get("namespace")): v for n, labels, v in samples}
        complete = all(values.get(key, 0) > 0 for key in wanted)
        return samples if complete and values[("scrape_error", None, None)] == 0 else None

    samples = wait_for(metrics, 60, "the leaf's resource metrics of the container")
    # the member's own pods (flannel, kube-proxy are not pods here; its kube-system) stay out
    assert {labels.get("namespace") for _, labels, _ in samples} <= {None, namespace} | {
        p["metadata"]["namespace"]
        for p in get(tree.host, "pods", "-A", "--field-selector", f"spec.nodeName={LEAF}")["items"]
    }


def _call(url: str, token: str | None) -> int:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the leaf's self-signed serving certificate
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_only_authenticated_and_authorized_callers_read_a_leaf(tree: TreeEnv, namespace: str):
    node = get(tree.host, "node", LEAF)
    address = node["status"]["addresses"][0]["address"]
    port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
    assert not address.startswith("127."), "the node proxy refuses loopback node addresses"
    base = f"https://{address}:{port}"
    role = f"{namespace}-leaf-metrics"
    tree.host.run("create", "serviceaccount", "reader", "-n", namespace)
    tree.host.run("create", "clusterrole", role, "--verb=get", "--resource=nodes/metrics")
    try:
        tree.host.run("create", "clusterrolebinding", role, f"--clusterrole={role}",
                      f"--serviceaccount={namespace}:reader")  # fmt: skip
        token = tree.host.run("create", "token", "reader", "-n", namespace).strip()
        assert _call(f"{base}/metrics/resource", None) == 401
        assert _call(f"{base}/metrics/resource", "not-a-token") == 401
        wait_for(lambda: _call(f"{base}/metrics/resource", token) == 200, 30, "RBAC to apply")
        assert _call(f"{base}/stats/summary", token) == 403
        assert _call(f"{base}/pods", token) == 403
    finally:
        tree.host.run("delete", "clusterrolebinding,clusterrole", role, "--ignore-not-found")


def test_a_client_refusing_the_leafs_certificate_leaves_an_event_on_the_leaf(tree: TreeEnv):
    """A caller that verifies kubelet certificates against a CA that did not sign the leaf's
    (an apiserver with --kubelet-certificate-authority) is seen, and the leaf says why."""
    node = get(tree.host, "node", LEAF)
    address = node["status"]["addresses"][0]["address"]
    port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
    strict = ssl.create_default_context()  # the system's CAs: not the leaf's self-signed one
    strict.check_hostname = False
    with (
        socket.create_connection((address, port), timeout=10) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        strict.wrap_socket(raw)

    def events() -> list[Any]:
        selector = f"involvedObject.name={LEAF},reason=KubeletCertificateRefused"
        found: list[Any] = get(tree.host, "events", "-n", "default", "--field-selector", selector)[
            "items"
        ]
        return found

    event = wait_for(events, 30, "the refusal's Event on the leaf node")[0]
    assert event["type"] == "Warning"
    assert "tlsv1_alert_unknown_ca" in event["message"] and "--cert-dir" in event["message"]
