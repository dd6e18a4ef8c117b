"""Kosmos in-cluster on real nodes, used the way a user uses it.

The e2e environment (tests/e2e/conftest.py) has one real node per cluster, so ``local up``
installs Kosmos as pods on the host's real node and the sample's member copies run as real
containers on the members' real nodes. Through the leaf nodes a user's ``kubectl logs``,
``exec`` and ``port-forward`` reach those containers; a ConfigMap edited in the host reaches
the container that mounts it. The last test (``env_down``: after every other e2e test, before
``local down``) takes Kosmos away as a user does — a join that cannot start its agents rolls
back, then unjoin and ``kosmosctl uninstall`` — and checks nothing of Kosmos is left: no pod,
RBAC or CRD, no kosmos-coredns or prober, no import, derived Service or MCS slice, no
clusterset.local stanza in the cluster DNS, and no ClusterLink kernel state on the real nodes
(the host's too).
"""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from kosmos.api import names
from kosmos.local import kosmos_plan
from kosmos.local.images import HTTP_REF, SHELL_REF
from kosmos.local.kubectl import KubectlError
from kosmos.local.nodes.plan import REAL_NODE_KEY
from tests.e2e.conftest import PORT_BASE, E2EEnv
from tests.support import get, wait_for

SHELL = SHELL_REF
PLACEMENT = json.dumps(kosmos_plan.REAL_NODE_PLACEMENT, sort_keys=True)
MEMBER_PORTS = {"host": PORT_BASE, "cluster1": PORT_BASE + 10, "cluster2": PORT_BASE + 20}
IMPORTS = f"serviceimports.{names.MCS_GROUP}"


def _sample_pod(e2e_env: E2EEnv) -> Any:
    pods = get(e2e_env.kubectl(), "pods", "-n", "default", "-l", "app=nginx")["items"]
    return sorted(pods, key=lambda p: p["metadata"]["name"])[0]


def test_kubectl_logs_through_the_leaf_node_shows_the_containers_output(e2e_env: E2EEnv):
    name = _sample_pod(e2e_env)["metadata"]["name"]
    out = e2e_env.kubectl().run("logs", name, "-n", "default")
    assert f"serving {name} on :80" in out


def test_kubectl_exec_through_the_leaf_node_runs_in_the_member_pod(e2e_env: E2EEnv):
    name = _sample_pod(e2e_env)["metadata"]["name"]
    assert e2e_env.kubectl().run("exec", name, "-n", "default", "--", "hostname").strip() == name


def test_kubectl_port_forward_through_the_leaf_node_answers_http(e2e_env: E2EEnv):
    name = _sample_pod(e2e_env)["metadata"]["name"]
    argv = [e2e_env.kubectl_binary, "--kubeconfig", e2e_env.kubeconfig, "--context", "host"]
    forward = subprocess.Popen(
        [*argv, "port-forward", "-n", "default", f"pod/{name}", ":80"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert forward.stdout is not None
        line = forward.stdout.readline()
        found = re.search(r"127\.0\.0\.1:(\d+) -> 80", line)
        assert found, f"kubectl port-forward said: {line}{forward.stdout.read(2000)}"
        url = f"http://127.0.0.1:{found.group(1)}/"
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200
            assert response.read().decode().strip() == name
    finally:
        forward.terminate()
        forward.wait(10)


@pytest.fixture
def config_reader(e2e_env: E2EEnv) -> Iterator[tuple[str, str]]:
    """A host pod on a leaf node whose member copy runs for real and prints a ConfigMap key."""
    host = e2e_env.kubectl()
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "e2e-config"}}
    config["data"] = {"key": "first"}
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "e2e-config-reader",
            "annotations": {"kosmos.io/cluster-selector": PLACEMENT},
        },
        "spec": {
            "nodeSelector": {"kosmos.io/node": "true"},
            "tolerations": [{"key": "kosmos.io/node", "operator": "Equal", "value": "true"}],
            "containers": [
                {
                    "name": "reader",
                    "image": SHELL,
                    "imagePullPolicy": "IfNotPresent",
                    "command": [
                        "sh",
                        "-c",
                        "while :; do echo value=$(cat /cfg/key); sleep 1; done",
                    ],
                    "volumeMounts": [{"name": "cfg", "mountPath": "/cfg"}],
                }
            ],
            "volumes": [{"name": "cfg", "configMap": {"name": "e2e-config"}}],
        },
    }
    for body in (config, pod):
        host.run("apply", "-n", "default", "-f", "-", stdin=json.dumps(body))
    try:
        wait_for(
            lambda: (
                get(host, "pod", "e2e-config-reader", "-n", "default")["status"].get("phase")
                == "Running"
            ),
            120,
            "the config reader to run",
        )
        leaf = get(host, "pod", "e2e-config-reader", "-n", "default")["spec"]["nodeName"]
        yield "e2e-config-reader", leaf.removeprefix("kosmos-")
    finally:
        host.run("delete", "pod", "e2e-config-reader", "-n", "default", "--ignore-not-found")
        host.run("delete", "configmap", "e2e-config", "-n", "default", "--ignore-not-found")


def test_a_configmap_edited_in_the_host_is_updated_inside_the_member_container(
    e2e_env: E2EEnv, config_reader: tuple[str, str]
):
    name, member = config_reader
    copy = get(e2e_env.kubectl(member), "pod", name, "-n", "default")
    assert copy["spec"]["nodeName"] == f"{member}-real1"
    logs = lambda: e2e_env.kubectl(member).run("logs", name, "-n", "default", "--tail", "3")  # noqa: E731
    wait_for(lambda: "value=first" in logs(), 60, "the container to print the first value")
    patch = json.dumps({"data": {"key": "second"}})
    e2e_env.kubectl().run("patch", "configmap", "e2e-config", "-n", "default", "-p", patch)
    # ClusterTree updates the member's copy; the kubelet refreshes the volume (up to its sync
    # period plus the ConfigMap cache's TTL).
    wait_for(lambda: "value=second" in logs(), 180, "the edit to reach the container")


HTTP = HTTP_REF


def _leaf_pod(name: str, member: str, image: str, command: list[str] | None = None) -> Any:
    """A host pod on ``member``'s leaf node whose member copy runs on the member's real node."""
    container: dict[str, Any] = {"name": "main", "image": image, "imagePullPolicy": "IfNotPresent"}
    if command:
        container["command"] = command
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": {"kosmos.io/cluster-selector": PLACEMENT}},
        "spec": {
            "nodeName": f"kosmos-{member}",
            "tolerations": [{"key": "kosmos.io/node", "operator": "Equal", "value": "true"}],
            "terminationGracePeriodSeconds": 1,
            "containers": [container],
        },
    }


def _node_config_applied(e2e_env: E2EEnv, name: str) -> bool:
    found = e2e_env.kubectl().run("get", "nodeconfigs", "-o", "name").split()
    if f"nodeconfig.kosmos.io/{name}" not in found:
        return False
    conditions = get(e2e_env.kubectl(), "nodeconfig", name)["status"].get("conditions") or []
    return any(c["type"] == "Applied" and c["status"] == "True" for c in conditions)


def test_pods_in_two_members_reach_each_other_through_the_in_cluster_link(e2e_env: E2EEnv):
    """The network-manager in the host and the agents' DaemonSet that ``join --enable-all``
    installed (both from our image) link the members' real nodes: a container in cluster1
    fetches a page from a container's pod IP in cluster2."""
    host = e2e_env.kubectl()
    client = _leaf_pod("e2e-link-client", "cluster1", SHELL, ["sleep", "3600"])
    server = _leaf_pod("e2e-link-server", "cluster2", HTTP)
    for body in (client, server):
        host.run("apply", "-n", "default", "-f", "-", stdin=json.dumps(body))
    try:
        for name in ("cluster1-cluster1-real1", "cluster2-cluster2-real1"):
            wait_for(lambda n=name: _node_config_applied(e2e_env, n), 120, f"NodeConfig {name}")

        def ip_of(name: str) -> str | None:
            status = get(host, "pod", name, "-n", "default")["status"]
            return status.get("podIP") if status.get("phase") == "Running" else None

        target = wait_for(lambda: ip_of("e2e-link-server"), 120, "the server's pod IP")
        wait_for(lambda: ip_of("e2e-link-client"), 120, "the client to run")
        fetch = ["exec", "e2e-link-client", "-n", "default", "--"]
        fetch += ["timeout", "5", "wget", "-qO-", f"http://{target}:8080/"]

        answer = wait_for(
            lambda: host.run(*fetch, timeout=20).strip(),
            90,
            "cluster1 to reach cluster2's pod IP",
            ignoring=(KubectlError,),  # not routed yet
        )
        assert answer == "e2e-link-server"
    finally:
        host.run("delete", "pod", "e2e-link-client", "e2e-link-server", "-n", "default",
                 "--ignore-not-found", "--wait=false")  # fmt: skip


def _kernel_state(member: str) -> list[str]:
    """ClusterLink's devices, iptables chains and ipsets on a member's real node."""
    netns = f"kosmos-{MEMBER_PORTS[member]}-{member}-real1"

    def run(*argv: str) -> str:
        return subprocess.run(
            ["ip", "netns", "exec", netns, *argv], capture_output=True, text=True, check=False
        ).stdout

    devices = [d for d in run("ip", "-br", "link").split() if d.startswith("vx-")]
    chains = sorted(set(re.findall(r"^:(KOSMOS-\S+)", run("iptables-save"), re.MULTILINE)))
    sets = [s for s in run("ipset", "list", "-n").split() if s.startswith("kosmos-")]
    return [*devices, *chains, *sets]


def _kosmos_left(e2e_env: E2EEnv, cluster: str) -> list[str]:
    """Kosmos's own objects (kosmos-coredns and the prober included), what the MCS controller
    derived (imports, derived Services, slices) and the clusterset.local stanza in the
    cluster's DNS. The MCS CRDs may stay in a member: they may hold its own objects."""
    kubectl = e2e_env.kubectl(cluster)
    kinds = "pods,deployments,daemonsets,serviceaccounts,roles,rolebindings"
    kinds += ",clusterroles,clusterrolebindings,secrets,services,configmaps"
    left = kubectl.run("get", kinds, "-A", "-l", "app.kubernetes.io/part-of=kosmos", "-o", "name")
    derived = kubectl.run("get", "services,endpointslices", "-A", "-o", "name",
                          "-l", f"{names.LABEL_MANAGED_BY}={names.MANAGED_BY_KOSMOS}")  # fmt: skip
    mcs = f"{names.LABEL_SLICE_MANAGED_BY}={names.MCS_CONTROLLER}"
    slices = kubectl.run("get", "endpointslices", "-A", "-o", "name", "-l", mcs)
    all_crds = kubectl.run("get", "crd", "-o", "name").split()
    crds = [c for c in all_crds if "kosmos.io" in c]
    imports = f"customresourcedefinition.apiextensions.k8s.io/{IMPORTS}"
    if imports in all_crds:
        crds += kubectl.run("get", IMPORTS, "-A", "-o", "name").split()
    corefile = kubectl.run("get", "configmap", "coredns", "-n", "kube-system",
                           "-o", "jsonpath={.data.Corefile}")  # fmt: skip
    stanza = ["coredns: clusterset.local stanza"] if names.MCS_ZONE in corefile else []
    namespace = kubectl.run("get", "namespace", "-o", "name").split()
    return [
        *left.split(), *derived.split(), *slices.split(), *crds, *stanza,
        *(n for n in namespace if n == "namespace/kosmos-system"),
    ]  # fmt: skip


@pytest.mark.env_down
def test_joins_that_cannot_start_their_agents_roll_back_and_uninstall_leaves_nothing(
    e2e_env: E2EEnv,
):
    kosmosctl = e2e_env.kosmosctl
    host = ["--kubeconfig", str(e2e_env.state / "kosmos" / "host-pods-kubeconfig")]
    member = str(e2e_env.state / "kosmos" / "cluster2-pods-kubeconfig")
    # an exported Service: every member holds an import, a derived Service and slices
    exported = [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "e2e-left"},
         "spec": {"selector": {"app": "nginx"}, "ports": [{"port": 80}]}},
        {"apiVersion": f"{names.MCS_GROUP}/v1beta1", "kind": "ServiceExport",
         "metadata": {"name": "e2e-left"}},
    ]  # fmt: skip
    for body in exported:
        e2e_env.kubectl().run("apply", "-n", "default", "-f", "-", stdin=json.dumps(body))
    selector = f"{names.LABEL_MCS_SERVICE_NAME}=e2e-left"
    for cluster in ("cluster1", "cluster2"):
        wait_for(lambda c=cluster: e2e_env.kubectl(c).run(
                     "get", "endpointslices", "-n", "default", "-l", selector, "-o", "name"),
                 60, f"the export's slices in {cluster}")  # fmt: skip
    e2e_env.kubectl().run("delete", "deployment", "nginx-deployment", "-n", "default")
    kosmosctl(*host, "unjoin", "cluster", "--name", "cluster2")

    # A member namespace whose PodSecurity forbids the agents: the DaemonSet's FailedCreate
    # event is the reason given, and the join is rolled back (the namespace, not ours, stays).
    cluster2 = e2e_env.kubectl("cluster2")
    cluster2.run("create", "namespace", "kosmos-system")
    cluster2.run(
        "label", "namespace", "kosmos-system", "pod-security.kubernetes.io/enforce=restricted"
    )
    join = ["join", "cluster", "--name", "cluster2", "--kubeconfig", member, "--enable-all"]
    refused = kosmosctl(*host, *join, "--cni", "flannel", check=False)
    assert refused.returncode != 0
    assert "FailedCreate" in refused.stderr and "PodSecurity" in refused.stderr, refused.stderr
    assert "rolled back" in refused.stderr
    assert "cluster2" not in e2e_env.kubectl().run("get", "clusters", "-o", "name")
    assert cluster2.run("get", "daemonsets,secrets", "-n", "kosmos-system", "-o", "name") == ""
    cluster2.run("delete", "namespace", "kosmos-system")

    bad = kosmosctl(*host, *join, "--cni", "flannel", "--version", "v0.0.0-missing", check=False)
    assert bad.returncode != 0
    assert "kosmos:v0.0.0-missing" in bad.stderr and "rolled back" in bad.stderr, bad.stderr
    assert re.search(r"ErrImagePull|ImagePullBackOff|ErrImageNeverPull", bad.stderr), bad.stderr
    assert "cluster2" not in e2e_env.kubectl().run("get", "clusters", "-o", "name")
    agents = e2e_env.kubectl().run("get", "serviceaccounts", "-A", "-o", "name")
    assert "kosmos-agent-cluster2" not in agents
    wait_for(lambda: _kosmos_left(e2e_env, "cluster2") == [], 60, "cluster2 to be clean")

    kosmosctl(*host, "unjoin", "cluster", "--name", "cluster1")
    out = kosmosctl(*host, "uninstall", "--wait")
    assert "deployment.apps/kosmos-cluster-manager deleted" in out.stdout, out.stdout
    assert "daemonset.apps/kosmos-agent deleted" in out.stdout, out.stdout  # the host's agents
    for cluster in ("host", "cluster1", "cluster2"):
        wait_for(lambda c=cluster: _kosmos_left(e2e_env, c) == [], 60, f"{cluster} to be clean")
    for name in ("host", "cluster1", "cluster2"):
        assert _kernel_state(name) == [], name
    nodes = get(e2e_env.kubectl(), "nodes", "-l", REAL_NODE_KEY)["items"]
    assert [n["metadata"]["name"] for n in nodes] == ["host-real1"]  # the node itself stays
