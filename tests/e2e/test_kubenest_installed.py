"""kubenest as a user installs it: ``kosmosctl install --enable-kubenest`` runs the
virtual-cluster-operator as a Deployment of the host (the Kosmos image, its own least-privilege
ServiceAccount, ``--provider in-cluster``), and the seed's VirtualCluster takes a real node.

An environment of its own, as in test_kubenest_incluster: ``kosmosctl local up --members 0
--nodes 1 --real-nodes 2 --without-kosmos``. The operator and the tenants' control planes are
pinned to ``host-real1`` (``--node-selector``, ``--kubenest-control-plane-node-selector``),
so the VirtualCluster borrows ``host-real2``, whose kubelet joins the tenant through its
node-agent. Nothing of kubenest runs on this machine: the operator reads kwok's stages from
its image, reaches the host apiserver with its ServiceAccount and the node-agent with the
Secret it may read.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kosmos.local.kubectl import Kubectl, KubectlError
from tests.e2e.conftest import ContextKubectl, exports, kosmosctl
from tests.support import get, wait_for

PORT_BASE = int(os.environ.get("KOSMOS_KUBENEST_INSTALLED_E2E_PORT_BASE", "17960"))
NS = "test-521-8"  # the seed's example
CONTROL_PLANES = "host-real1"
BORROWED = "host-real2"
OPERATOR = "kosmos-virtual-cluster-operator"
SYSTEM = "kosmos-system"
COMPLETED_TIMEOUT = 300
GONE_TIMEOUT = 180
LABEL = "kosmos.io/virtual-cluster"
INSTALL = (
    *("install", "--disable-tree", "--disable-link", "--disable-scheduler", "--no-mcs-dns"),
    *("--node-selector", f"kubernetes.io/hostname={CONTROL_PLANES}"),
)


@dataclass
class Env:
    variables: dict[str, str]
    kubeconfig: Path
    kubectl_binary: Path

    def host(self) -> Kubectl:
        return ContextKubectl(self.kubectl_binary, self.kubeconfig, "host")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    base = tmp_path_factory.mktemp("kubenest-installed")
    variables = dict(os.environ)
    variables.setdefault("KOSMOS_LOCAL_DIR", str(base / "local"))
    up = kosmosctl(
        variables,
        *("local", "up", "--members", "0", "--nodes", "1", "--real-nodes", "2"),
        *("--without-kosmos", "--port-base", str(PORT_BASE)),
        check=False,
    )
    try:
        assert up.returncode == 0, f"local up failed:\n{up.stdout}\n{up.stderr}"
        found = exports(up.stdout)
        variables["KUBECONFIG"] = found["KUBECONFIG"]
        kubectl = Path(found["PATH"].split(":")[0]) / "kubectl"
        yield Env(variables, Path(found["KUBECONFIG"]), kubectl)
    finally:
        if os.environ.get("KOSMOS_KEEP_ENV") != "1":
            kosmosctl(variables, "local", "down", check=False)


def virtual_cluster() -> dict[str, object]:
    """The seed's example, taking the second real worker by its hostname."""
    selector = {"matchLabels": {"kubernetes.io/hostname": BORROWED}}
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


def ready(kubectl: Kubectl, node: str) -> bool:
    try:
        body = get(kubectl, "node", node)
    except KubectlError:
        return False
    conditions = (body.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def gone(kubectl: Kubectl, *args: str) -> bool:
    try:
        kubectl.run("get", *args, timeout=20)
    except KubectlError as error:
        return "NotFound" in str(error) or "not found" in str(error)
    return False


def diagnose(host: Kubectl) -> str:
    vc = host.run("get", "virtualcluster", NS, "-n", NS, "-o", "yaml", timeout=20)
    pods = host.run("get", "pods", "-A", "-o", "wide", timeout=20)
    try:
        log = host.run("logs", "-n", SYSTEM, f"deployment/{OPERATOR}", "--tail=40", timeout=20)
    except KubectlError as error:
        log = str(error)
    return f"{vc}\n--- pods ---\n{pods}\n--- operator log ---\n{log}"


def test_the_installed_operator_lends_a_real_node_and_takes_it_back(
    env: Env, tmp_path: Path
) -> None:
    host = env.host()
    started = time.monotonic()
    kosmosctl(
        env.variables,
        *INSTALL,
        "--enable-kubenest",
        *("--kubenest-control-plane-node-selector", f"kubernetes.io/hostname={CONTROL_PLANES}"),
        "--wait",
    )
    print(f"\ninstall --enable-kubenest --wait: {time.monotonic() - started:.1f}s")
    (pod,) = get(host, "pods", "-n", SYSTEM, "-l", f"app.kubernetes.io/name={OPERATOR}")["items"]
    assert pod["spec"]["nodeName"] == CONTROL_PLANES
    assert pod["spec"]["serviceAccountName"] == OPERATOR
    wait_for(
        lambda: get(host, "globalnode", BORROWED)["spec"]["state"] == "free",
        60,
        f"GlobalNode {BORROWED} free",
        ignoring=(KubectlError,),
    )

    host.run("create", "namespace", NS)
    host.run("apply", "-f", "-", stdin=json.dumps(virtual_cluster()))
    started = time.monotonic()
    try:
        wait_for(lambda: phase(host) == "Completed", COMPLETED_TIMEOUT, "phase Completed")
    except AssertionError as error:
        raise AssertionError(f"{error}\n{diagnose(host)}") from None
    print(f"installed operator, real node: Completed in {time.monotonic() - started:.1f}s")

    # the control plane runs as pods of the host, where the selector put it
    pods = get(host, "pods", "-n", NS, "-l", LABEL)["items"]
    components = {p["metadata"]["labels"]["kosmos.io/tenant-component"] for p in pods}
    assert {"etcd", "apiserver", "controller-manager", "scheduler", "kwok"} <= components
    assert {p["spec"]["nodeName"] for p in pods} == {CONTROL_PLANES}

    encoded = get(host, "virtualcluster", NS, "-n", NS)["spec"]["kubeconfig"]
    config = tmp_path / "tenant.kubeconfig"
    config.write_bytes(base64.b64decode(encoded))
    tenant = Kubectl(env.kubectl_binary, config, "tenant")
    assert [n["metadata"]["name"] for n in get(tenant, "nodes")["items"]] == [BORROWED]
    assert wait_for(lambda: ready(tenant, BORROWED), 60, f"{BORROWED} Ready in the tenant")
    assert gone(host, "node", BORROWED)

    # only the operator gives the node back: neither uninstall nor a re-run of install
    # without --enable-kubenest removes it under a tenant
    for argv in (("uninstall",), INSTALL):
        refused = kosmosctl(env.variables, *argv, check=False)
        assert refused.returncode != 0, argv
        assert f"virtual clusters still exist: {NS}/{NS}" in refused.stderr, refused.stderr
    assert get(host, "deployment", OPERATOR, "-n", SYSTEM)["status"]["availableReplicas"] == 1

    host.run("delete", "virtualcluster", NS, "-n", NS, "--wait=false")
    started = time.monotonic()
    wait_for(lambda: gone(host, "virtualcluster", NS, "-n", NS), GONE_TIMEOUT, "VC gone")
    wait_for(lambda: ready(host, BORROWED), GONE_TIMEOUT, f"{BORROWED} Ready in the host")
    print(f"deleted: {BORROWED} Ready in the host after {time.monotonic() - started:.1f}s")
    assert get(host, "globalnode", BORROWED)["spec"]["state"] == "free"
    for kind in ("deployments", "statefulsets", "services", "secrets"):
        assert get(host, kind, "-n", NS, "-l", LABEL)["items"] == [], kind
    host.run("delete", "namespace", NS, "--wait=false")

    # --disable-kubenest removes the operator and its RBAC like the other components'
    kosmosctl(env.variables, *INSTALL, "--disable-kubenest")
    assert gone(host, "deployment", OPERATOR, "-n", SYSTEM)
    assert gone(host, "clusterrole", OPERATOR)
    assert gone(host, "serviceaccount", OPERATOR, "-n", SYSTEM)
