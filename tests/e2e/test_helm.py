"""Kosmos installed with ``helm install`` on a fresh host with a real node, as docs/helm.md says.

The module brings up an environment of its own: ``kosmosctl local up --members 1 --nodes 1
--real-nodes 1 --without-kosmos`` (a host and a member, each with a kwok node and a real
worker, no Kosmos at all). Then, in order: a values error fails ``helm install`` naming the key
and leaves no release; ``helm install --wait`` of charts/kosmos brings every component to
Available (the pods on the host's real node, from our image) and its post-install hook points
the cluster DNS at kosmos-coredns; ``kosmosctl join`` makes the member a leaf node and a pod of
the host runs, as a real container, in the member; ``helm uninstall`` refuses while the member
is joined (the pre-delete hook names it) and, after ``unjoin``, leaves nothing of Kosmos but
what docs/helm.md says stays: the CRDs and the release namespace.
``KOSMOS_KEEP_ENV=1`` (with ``KOSMOS_LOCAL_DIR``) keeps the environment for the next run.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from kosmos.api import names
from kosmos.local import kosmos_plan
from kosmos.local.kubectl import Kubectl
from kosmos.local.nodes.plan import REAL_NODE_KEY
from tests.e2e.conftest import ContextKubectl, exports, kosmosctl
from tests.helm import Helm, helm
from tests.support import get, wait_for

#: A fresh environment with real nodes, then install, join and uninstall: beyond the default
#: 600 s per test on a loaded machine (the environment comes up in the first test's setup).
pytestmark = pytest.mark.timeout(2400)
PORT_BASE = int(os.environ.get("KOSMOS_HELM_E2E_PORT_BASE", "17700"))
MEMBER = "cluster1"
SYSTEM = names.SYSTEM_NAMESPACE
#: What the local environment's Kosmos pods need (as ``local up`` gives ``kosmosctl install``):
#: the host's real node, whose containerd imported our image, and its pod network, flannel.
VALUES = {
    "nodeSelector": {REAL_NODE_KEY: "true"},
    "clusterLink": {"cni": "flannel"},
}
DEPLOYMENTS = {
    "kosmos-cluster-manager",
    "kosmos-network-manager",
    "kosmos-scheduler",
    "kosmos-coredns",
    "kosmos-eps-probe",
}


@dataclass
class HelmEnv:
    variables: dict[str, str]
    base: Path
    kubeconfig: Path
    kubectl_binary: Path
    helm: Helm

    def kubectl(self, context: str = "host") -> Kubectl:
        return ContextKubectl(self.kubectl_binary, self.kubeconfig, context)

    def helm_run(self, *args: str, check: bool = True) -> Any:
        env = {"KUBECONFIG": str(self.kubeconfig), "PATH": os.environ.get("PATH", "")}
        return self.helm.run(*args, "--kube-context", "host", env=env, check=check)

    def pods_kubeconfig(self, cluster: str) -> Path:
        """The cluster's kubeconfig naming its apiserver as pods reach it (the relay on the
        cluster network's ``.1``, which the apiserver's certificate names)."""
        body = yaml.safe_load(self.kubeconfig.read_text())
        body["contexts"] = [c for c in body["contexts"] if c["name"] == cluster]
        body["current-context"] = cluster
        wanted = body["contexts"][0]["context"]
        body["clusters"] = [c for c in body["clusters"] if c["name"] == wanted["cluster"]]
        body["users"] = [u for u in body["users"] if u["name"] == wanted["user"]]
        node = get(self.kubectl(cluster), "nodes", "-l", REAL_NODE_KEY)["items"][0]
        ip = next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")
        relay = ip.rsplit(".", 1)[0] + ".1"
        server = body["clusters"][0]["cluster"]["server"]
        body["clusters"][0]["cluster"]["server"] = server.replace("127.0.0.1", relay)
        path = self.base / f"{cluster}-pods-kubeconfig"
        path.write_text(yaml.safe_dump(body))
        path.chmod(0o600)
        return path


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HelmEnv]:
    base = tmp_path_factory.mktemp("helm-e2e")
    variables = dict(os.environ)
    variables.setdefault("KOSMOS_LOCAL_DIR", str(base / "local"))
    try:
        up = kosmosctl(
            variables,
            *("local", "up", "--members", "1", "--nodes", "1", "--real-nodes", "1"),
            *("--without-kosmos", "--port-base", str(PORT_BASE)),
            check=False,
            timeout=1200,
        )
        assert up.returncode == 0, f"local up failed:\n{up.stdout}\n{up.stderr}"
        found = exports(up.stdout)
        kubectl_binary = Path(found["PATH"].split(":")[0]) / "kubectl"
        yield HelmEnv(
            variables, base, Path(found["KUBECONFIG"]), kubectl_binary, helm(base / "helm")
        )
    finally:
        if os.environ.get("KOSMOS_KEEP_ENV") != "1":
            kosmosctl(variables, "local", "down", check=False)


def _values_file(env: HelmEnv, values: dict[str, Any]) -> str:
    path = env.base / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return str(path)


def test_a_values_error_fails_the_install_naming_the_key(env: HelmEnv):
    bad = _values_file(env, {**VALUES, "scheduler": {"enabled": "no"}})
    chart = str(Path(__file__).resolve().parents[2] / "charts" / "kosmos")
    out = env.helm_run("install", "kosmos", chart, "-n", SYSTEM, "--create-namespace",
                       "-f", bad, check=False)  # fmt: skip
    assert out.returncode != 0
    assert "'/scheduler/enabled': got string, want boolean" in out.stderr, out.stderr
    assert env.helm_run("list", "-A", "-q").stdout.strip() == ""
    assert env.kubectl().run("get", "deployments", "-A", "-l", "app.kubernetes.io/part-of=kosmos",
                             "-o", "name") == ""  # fmt: skip


def test_helm_install_brings_every_component_to_available(env: HelmEnv):
    chart = str(Path(__file__).resolve().parents[2] / "charts" / "kosmos")
    started = time.monotonic()
    env.helm_run("install", "kosmos", chart, "-n", SYSTEM, "--create-namespace",
                 "-f", _values_file(env, VALUES), "--wait", "--timeout", "6m")  # fmt: skip
    seconds = time.monotonic() - started
    host = env.kubectl()
    deployments = get(host, "deployments", "-n", SYSTEM)["items"]
    available = {
        d["metadata"]["name"]
        for d in deployments
        if any(
            c["type"] == "Available" and c["status"] == "True"
            for c in d["status"].get("conditions") or []
        )
    }
    assert available == DEPLOYMENTS, deployments
    agents = get(host, "daemonset", "kosmos-agent", "-n", SYSTEM)
    wait_for(lambda: agents_ready(host), 120, "the host's ClusterLink agents Ready")
    for pod in get(host, "pods", "-n", SYSTEM, "-l", "app.kubernetes.io/part-of=kosmos")["items"]:
        if pod["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet":
            continue  # the agents: one per node (kwok nodes' stand for no node)
        node = get(host, "node", pod["spec"]["nodeName"])
        assert node["metadata"]["labels"].get(REAL_NODE_KEY) == "true", pod["metadata"]["name"]
    assert agents["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    # the post-install hook: clusterset.local goes to kosmos-coredns; its Job is gone
    corefile = host.run("get", "configmap", "coredns", "-n", "kube-system",
                        "-o", "jsonpath={.data.Corefile}")  # fmt: skip
    assert names.MCS_ZONE in corefile, corefile
    assert host.run("get", "jobs", "-n", SYSTEM, "-o", "name") == ""
    root = get(host, "cluster", names.ROOT_CLUSTER_NAME)
    assert root["metadata"]["annotations"][names.ANNOTATION_CLUSTER_ROLE] == "root"
    print(f"helm install --wait: {seconds:.0f}s")


def agents_ready(host: Kubectl) -> bool:
    status = get(host, "daemonset", "kosmos-agent", "-n", SYSTEM)["status"]
    return bool(status.get("desiredNumberScheduled")) and status.get("numberReady") == status.get(
        "desiredNumberScheduled"
    )


def test_a_joined_member_runs_a_host_pod_through_its_leaf(env: HelmEnv):
    host_config = str(env.pods_kubeconfig("host"))
    member_config = str(env.pods_kubeconfig(MEMBER))
    kosmosctl(env.variables, "--kubeconfig", host_config, "join", "cluster", "--name", MEMBER,
              "--kubeconfig", member_config, "--enable-all", "--cni", "flannel")  # fmt: skip
    host = env.kubectl()
    leaf = kosmos_plan.leaf_node_name(MEMBER)
    wait_for(lambda: _ready(host, leaf), 180, f"leaf node {leaf} Ready")
    host.run("apply", "-f", "-", stdin=json.dumps(_pod()))
    wait_for(lambda: _phase(host) == "Running", 180, "the pod Running through the leaf")
    pod = get(host, "pod", "helm-e2e", "-n", "default")
    assert pod["spec"]["nodeName"] == leaf
    wait_for(lambda: "serving helm-e2e on :80" in host.run("logs", "helm-e2e", "-n", "default"),
             60, "the member container's own output")  # fmt: skip
    member_pod = get(env.kubectl(MEMBER), "pod", "helm-e2e", "-n", "default")
    member_node = get(env.kubectl(MEMBER), "node", member_pod["spec"]["nodeName"])
    assert member_node["metadata"]["labels"].get(REAL_NODE_KEY) == "true"
    host.run("delete", "pod", "helm-e2e", "-n", "default", "--wait=true", timeout=120)


def _ready(host: Kubectl, node: str) -> bool:
    body = get(host, "nodes")["items"]
    return any(
        n["metadata"]["name"] == node
        and any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])
        for n in body
    )


def _phase(host: Kubectl) -> str:
    return str(get(host, "pod", "helm-e2e", "-n", "default").get("status", {}).get("phase"))


def _pod() -> dict[str, Any]:
    """One pod of the sample app's kind: on a leaf node, its member copy on a real node."""
    spec = kosmos_plan.sample_app(real_nodes=True)["spec"]["template"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "helm-e2e",
            "namespace": "default",
            "annotations": spec["metadata"]["annotations"],
        },
        "spec": spec["spec"],
    }


def test_helm_uninstall_refuses_while_a_member_is_joined(env: HelmEnv):
    out = env.helm_run("uninstall", "kosmos", "-n", SYSTEM, "--wait", "--timeout", "3m",
                       check=False)  # fmt: skip
    assert out.returncode != 0, out.stdout
    assert "pre-delete" in out.stderr, out.stderr
    host = env.kubectl()
    log = host.run("logs", "-n", SYSTEM, "job/kosmos-helm-pre-delete")
    assert f"member clusters still joined: {MEMBER}" in log, log
    assert get(host, "cluster", names.ROOT_CLUSTER_NAME)["metadata"]["name"]  # nothing deleted
    assert _ready(host, kosmos_plan.leaf_node_name(MEMBER))
    assert len(get(host, "deployments", "-n", SYSTEM)["items"]) == len(DEPLOYMENTS)


def test_helm_uninstall_leaves_only_the_crds_and_the_namespace(env: HelmEnv):
    host_config = str(env.pods_kubeconfig("host"))
    kosmosctl(env.variables, "--kubeconfig", host_config, "unjoin", "cluster", "--name", MEMBER)
    env.helm_run("uninstall", "kosmos", "-n", SYSTEM, "--wait", "--timeout", "5m")
    host = env.kubectl()
    wait_for(lambda: _kosmos_left(host) == [], 120, lambda: f"left: {_kosmos_left(host)}")
    assert env.helm_run("list", "-A", "-q").stdout.strip() == ""
    crds = [c for c in host.run("get", "crd", "-o", "name").split() if "kosmos.io" in c]
    assert len(crds) == 10, crds  # docs/helm.md: Helm never deletes the crds/ directory's CRDs
    assert host.run("get", "namespace", SYSTEM, "-o", "name").strip() == f"namespace/{SYSTEM}"
    kinds = host.run("api-resources", "--verbs=list", "--namespaced", "-o", "name").split()
    inside = host.run("get", ",".join(k for k in kinds if not k.startswith("events")),
                      "-n", SYSTEM, "-o", "name").split()  # fmt: skip
    assert sorted(inside) == ["configmap/kube-root-ca.crt", "serviceaccount/default"], inside


def _kosmos_left(host: Kubectl) -> list[str]:
    """Kosmos's objects in the host: labelled ones, Clusters and their network objects, the
    hook's identity, workloads in the namespace, and the clusterset.local stanza."""
    kinds = "pods,deployments,daemonsets,jobs,serviceaccounts,roles,rolebindings,clusterroles"
    kinds += ",clusterrolebindings,secrets,services,configmaps,storageclasses"
    kinds += ",mutatingadmissionpolicies,mutatingadmissionpolicybindings"
    left = host.run("get", kinds, "-A", "-l", "app.kubernetes.io/part-of=kosmos", "-o", "name")
    owned = host.run("get", "clusters,clusternodes,nodeconfigs", "-o", "name")
    inside = host.run("get", "pods,deployments,daemonsets,services,leases", "-n", SYSTEM,
                      "-o", "name")  # fmt: skip
    corefile = host.run("get", "configmap", "coredns", "-n", "kube-system",
                        "-o", "jsonpath={.data.Corefile}")  # fmt: skip
    stanza = ["coredns: clusterset.local stanza"] if names.MCS_ZONE in corefile else []
    return [*left.split(), *owned.split(), *inside.split(), *stanza]
