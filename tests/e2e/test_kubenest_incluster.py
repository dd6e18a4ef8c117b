"""The seed's kubenest example with the in-cluster provider: the tenant's control plane runs
as pods of the host (our images on its real nodes), its apiserver behind a NodePort.

An environment of its own, as in test_kubenest_real: ``kosmosctl local up --members 0
--nodes 1 --real-nodes 2 --without-kosmos`` (the real nodes have the etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, kwok and CoreDNS images), ``kosmosctl install``
with every component off, and ``kosmos virtual-cluster-operator --provider in-cluster`` as a
process of this machine. The VirtualCluster takes a kwok worker (the seed's node name),
which the tenant's own kwok (a pod too) keeps Ready.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kosmos.local.kubectl import Kubectl, KubectlError
from tests.e2e.conftest import ContextKubectl, exports, kosmosctl
from tests.support import get, wait_for

PORT_BASE = int(os.environ.get("KOSMOS_KUBENEST_IC_E2E_PORT_BASE", "17900"))
NS = "test-521-8"
NODE = "kc-aaaaa-s-x6fn2"  # the seed's node name
KOSMOS = str(Path(sys.executable).parent / "kosmos")
COMPLETED_TIMEOUT = 300
GONE_TIMEOUT = 180
LABEL = "kosmos.io/virtual-cluster"


@dataclass
class Env:
    kubeconfig: Path
    kubectl_binary: Path
    operator_log: Path

    def host(self) -> Kubectl:
        return ContextKubectl(self.kubectl_binary, self.kubeconfig, "host")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    base = tmp_path_factory.mktemp("kubenest-incluster")
    variables = dict(os.environ)
    variables.setdefault("KOSMOS_LOCAL_DIR", str(base / "local"))
    up = kosmosctl(
        variables,
        *("local", "up", "--members", "0", "--nodes", "1", "--real-nodes", "2"),
        *("--without-kosmos", "--port-base", str(PORT_BASE)),
        check=False,
    )
    operator: subprocess.Popen[bytes] | None = None
    try:
        assert up.returncode == 0, f"local up failed:\n{up.stdout}\n{up.stderr}"
        found = exports(up.stdout)
        kubeconfig = Path(found["KUBECONFIG"])
        variables["KUBECONFIG"] = str(kubeconfig)
        kosmosctl(
            variables,
            *("install", "--disable-tree", "--disable-link", "--disable-scheduler"),
            "--no-mcs-dns",
        )
        log = base / "operator.log"
        argv = [KOSMOS, "virtual-cluster-operator", "--kubeconfig", str(kubeconfig)]
        argv += ["--context", "host", "--provider", "in-cluster", "--health-port", "0"]
        with log.open("wb") as out:
            operator = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, env=variables, start_new_session=True
            )
        yield Env(kubeconfig, Path(found["PATH"].split(":")[0]) / "kubectl", log)
    finally:
        if operator is not None:
            operator.send_signal(signal.SIGTERM)
            try:
                operator.wait(30)
            except subprocess.TimeoutExpired:
                operator.kill()
        if os.environ.get("KOSMOS_KEEP_ENV") != "1":
            kosmosctl(variables, "local", "down", check=False)


def kwok_node() -> dict[str, object]:
    allocatable = {"cpu": "8", "memory": "32Gi", "pods": "110"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": NODE,
            "labels": {"kubernetes.io/hostname": NODE, "kwok.x-k8s.io/node": "fake"},
            "annotations": {"kwok.x-k8s.io/node": "fake"},
        },
        "status": {"capacity": allocatable, "allocatable": allocatable},
    }


def virtual_cluster() -> dict[str, object]:
    selector = {"matchLabels": {"kubernetes.io/hostname": NODE}}
    return {
        "apiVersion": "kosmos.io/v1alpha1",
        "kind": "VirtualCluster",
        "metadata": {"namespace": NS, "name": NS},
        "spec": {
            "externalIP": "192.168.0.1",
            "promotePolicies": [{"labelSelector": selector, "nodeCount": 1}],
        },
    }


def phase(host: Kubectl) -> str:
    body = get(host, "virtualcluster", NS, "-n", NS)
    return str((body.get("status") or {}).get("phase") or "")


def diagnose(env: Env) -> str:
    host = env.host()
    vc = host.run("get", "virtualcluster", NS, "-n", NS, "-o", "yaml", timeout=20)
    pods = host.run("get", "pods", "-n", NS, "-o", "wide", timeout=20)
    tail = "\n".join(env.operator_log.read_text(errors="replace").splitlines()[-40:])
    return f"{vc}\n--- pods ---\n{pods}\n--- operator log ---\n{tail}"


def gone(kubectl: Kubectl, *args: str) -> bool:
    try:
        kubectl.run("get", *args, timeout=20)
    except KubectlError as error:
        return "NotFound" in str(error) or "not found" in str(error)
    return False


def test_the_seed_example_with_the_control_plane_in_the_host(env: Env, tmp_path: Path) -> None:
    host = env.host()
    host.run("apply", "-f", "-", stdin=json.dumps(kwok_node()))
    wait_for(
        lambda: get(host, "globalnode", NODE)["spec"]["state"] == "free",
        60,
        f"GlobalNode {NODE} free",
        ignoring=(KubectlError,),
    )
    host.run("create", "namespace", NS)
    host.run("apply", "-f", "-", stdin=json.dumps(virtual_cluster()))
    started = time.monotonic()
    try:
        wait_for(lambda: phase(host) == "Completed", COMPLETED_TIMEOUT, "phase Completed")
    except AssertionError as error:
        raise AssertionError(f"{error}\n{diagnose(env)}") from None
    print(f"\nin-cluster VirtualCluster: Completed in {time.monotonic() - started:.1f}s")

    # the control plane is pods of the host, on real nodes
    pods = get(host, "pods", "-n", NS, "-l", LABEL)["items"]
    running = {p["metadata"]["labels"]["kosmos.io/tenant-component"] for p in pods}
    assert {"etcd", "apiserver", "controller-manager", "scheduler", "kwok"} <= running
    assert all("real" in p["spec"]["nodeName"] for p in pods)

    encoded = get(host, "virtualcluster", NS, "-n", NS)["spec"]["kubeconfig"]
    config = tmp_path / "tenant.kubeconfig"
    config.write_bytes(base64.b64decode(encoded))
    tenant = Kubectl(env.kubectl_binary, config, "tenant")
    nodes = get(tenant, "nodes")["items"]
    assert [n["metadata"]["name"] for n in nodes] == [NODE]
    assert gone(host, "node", NODE)

    host.run("delete", "virtualcluster", NS, "-n", NS, "--wait=false")
    started = time.monotonic()
    wait_for(lambda: gone(host, "virtualcluster", NS, "-n", NS), GONE_TIMEOUT, "VC gone")
    print(f"deleted in {time.monotonic() - started:.1f}s")
    assert not gone(host, "node", NODE)  # back in the host
    for kind in ("deployments", "statefulsets", "services", "secrets"):
        assert get(host, kind, "-n", NS, "-l", LABEL)["items"] == [], kind
    host.run("delete", "namespace", NS, "--wait=false")
