"""The local environment runs real control planes: versions, controllers, scheduler, GC."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import time
from datetime import datetime

import yaml

from kosmos.local import kwokctl
from kosmos.local.toolchain import GROUPS
from kosmos.local.topology import CONTROL_PLANE_ROLE, CONTROL_PLANE_TAINT, KWOK_NODE_SELECTOR
from tests.fixtures.clusters import LocalEnv
from tests.support import get, wait_for

PINNED = next(g for g in GROUPS if g.name == "k8s").version()


def test_every_apiserver_reports_the_pinned_release(local_env: LocalEnv):
    for cluster in local_env.names:
        version = json.loads(local_env.kubectl(cluster).run("get", "--raw", "/version"))
        assert version["gitVersion"] == PINNED, cluster


def test_each_cluster_has_its_own_kwok_nodes_with_topology_labels(local_env: LocalEnv):
    for plan in local_env.clusters:
        nodes = get(local_env.kubectl(plan.name), "nodes", "-l", KWOK_NODE_SELECTOR)["items"]
        assert sorted(n["metadata"]["name"] for n in nodes) == sorted(n.name for n in plan.nodes)
        for node in nodes:
            labels = node["metadata"]["labels"]
            assert labels["topology.kubernetes.io/region"] == plan.region
            assert labels["topology.kubernetes.io/zone"].startswith(plan.region)
            ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"]
            assert ready == "True"
            taints = node["spec"].get("taints") or []
            if plan.role == "host":  # the control cluster: ordinary pods go to the members
                assert labels[CONTROL_PLANE_ROLE] == ""
                assert CONTROL_PLANE_TAINT in taints
            else:
                assert CONTROL_PLANE_ROLE not in labels and CONTROL_PLANE_TAINT not in taints


def test_deployment_gets_replicaset_pods_scheduled_running_and_gc_on_namespace_delete(
    local_env: LocalEnv, namespace: str
):
    member = local_env.members[0]
    kubectl = local_env.kubectl(member)
    kubectl.run("create", "deployment", "web", "--image=nginx", "--replicas=3", "-n", namespace)

    replicasets = wait_for(
        lambda: get(local_env.kubectl(member), "rs", "-n", namespace)["items"],
        60,
        "kube-controller-manager to create a ReplicaSet",
    )
    assert replicasets[0]["metadata"]["ownerReferences"][0]["kind"] == "Deployment"

    def running_pods():
        pods = get(local_env.kubectl(member), "pods", "-n", namespace)["items"]
        running = [p for p in pods if p["status"].get("phase") == "Running"]
        return running if len(running) == 3 else None

    pods = wait_for(running_pods, 60, "3 pods Running")
    kwok_nodes = {n.name for n in local_env.plan(member).nodes}
    for pod in pods:
        assert pod["spec"]["nodeName"] in kwok_nodes
        assert pod["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"
        scheduled = {c["type"]: c for c in pod["status"]["conditions"]}["PodScheduled"]
        assert scheduled["status"] == "True"
    assert any(
        e["source"].get("component") == "default-scheduler"
        or e.get("reportingComponent") == "default-scheduler"
        for e in get(local_env.kubectl(member), "events", "-n", namespace)["items"]
        if e["reason"] == "Scheduled"
    )

    kubectl.run("delete", "namespace", namespace, "--wait=false")
    wait_for(
        lambda: not kubectl.ok("get", "namespace", namespace),
        120,
        "namespace deletion to garbage-collect its objects",
    )
    leftover = get(local_env.kubectl(member), "pods", "-A", "-l", "app=web")["items"]
    assert [p for p in leftover if p["metadata"]["namespace"] == namespace] == []


def test_kwok_leaves_nodes_without_its_label_alone(local_env: LocalEnv):
    """Kosmos will add leaf nodes to the host: kwok must never adopt them.

    A labelled control node created at the same time proves kwok was given the chance.
    """
    host = local_env.kubectl(local_env.host)
    key, value = KWOK_NODE_SELECTOR.split("=")
    nodes = {
        "kosmos-untouched-by-kwok": {},
        "kwok-adopted-control": {key: value},
    }
    for name in nodes:
        host.run("delete", "node", name, "--ignore-not-found")
    items = [
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": n, "labels": labels}}
        for n, labels in nodes.items()
    ]
    host.run(
        "create", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    )
    try:
        wait_for(
            lambda: get(local_env.kubectl(local_env.host), "node", "kwok-adopted-control")[
                "status"
            ].get("conditions"),
            30,
            "kwok to adopt the labelled control node",
        )
        time.sleep(2)
        node = get(local_env.kubectl(local_env.host), "node", "kosmos-untouched-by-kwok")
        assert node["status"].get("conditions") is None
        assert node["status"].get("addresses") is None
    finally:
        for name in nodes:
            host.run("delete", "node", name, "--ignore-not-found")


def test_kubeconfigs_have_one_context_per_cluster_with_inline_credentials(local_env: LocalEnv):
    for plan in local_env.clusters:
        config = yaml.safe_load(local_env.kubeconfig(plan.name).read_text())
        assert [c["name"] for c in config["contexts"]] == [plan.name]
        assert config["clusters"][0]["cluster"]["server"] == (
            f"https://127.0.0.1:{plan.apiserver_port}"
        )
        user = config["users"][0]["user"]
        assert "client-certificate-data" in user and "client-key-data" in user


def test_pod_and_service_cidrs_are_the_planned_ones(local_env: LocalEnv, namespace: str):
    for plan in local_env.clusters:
        kubectl = local_env.kubectl(plan.name)
        kubectl.run("create", "service", "clusterip", "probe", "--tcp=80:80", "-n", namespace)
        svc = get(local_env.kubectl(plan.name), "service", "probe", "-n", namespace)
        assert ipaddress.ip_address(svc["spec"]["clusterIP"]) in ipaddress.ip_network(
            plan.service_cidr
        ), plan.name


#: The host's kwok nodes are control-plane nodes (tainted NoSchedule): pods meant to run
#: there say so, as control-plane workloads do.
CONTROL_PLANE_TOLERATION = json.dumps(
    {
        "spec": {
            "tolerations": [
                {
                    "key": "node-role.kubernetes.io/control-plane",
                    "operator": "Exists",
                    "effect": "NoSchedule",
                }
            ]
        }
    }
)


def run_pod(env: LocalEnv, cluster: str, namespace: str, name: str) -> None:
    """One pod on a kwok node, Running (on the host it tolerates the control-plane taint)."""
    kubectl = env.kubectl(cluster)
    overrides = [f"--overrides={CONTROL_PLANE_TOLERATION}"] if cluster == env.host else []
    kubectl.run("run", name, "--image=nginx", "--restart=Never", "-n", namespace, *overrides)
    kubectl.run("wait", "--for=condition=Ready", f"pod/{name}", "-n", namespace, "--timeout=60s")


def follow_logs(env: LocalEnv, cluster: str, namespace: str, pod: str, seconds: float) -> str:
    """``kubectl logs -f`` for ``seconds``: what it printed; it must still be following then."""
    argv = [str(env.kubectl_binary), "--kubeconfig", str(env.kubeconfig(cluster))]
    argv += ["logs", "-f", pod, "-n", namespace]
    try:
        subprocess.run(argv, capture_output=True, timeout=seconds, check=False)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout or b""
        return out.decode() if isinstance(out, bytes) else out
    raise AssertionError(f"{cluster}: `kubectl logs -f` exited instead of following")


def test_kubectl_logs_and_exec_reach_kwok_on_every_cluster(local_env: LocalEnv, namespace: str):
    """The member's log file and a locally run command come back through each apiserver.

    This is what the Kosmos leaf-node proxy will forward: the output must be the member's own.
    """
    for cluster in local_env.names:
        kubectl = local_env.kubectl(cluster)
        run_pod(local_env, cluster, namespace, "talk")
        # The file kosmosctl wrote: "<time> stdout F <message>" lines (appends may follow).
        written = [
            line.split(" ", 3) for line in kwokctl.pod_log_path(cluster).read_text().splitlines()
        ]

        logs = kubectl.run("logs", "talk", "-n", namespace)
        assert f"hello from {cluster}" in logs.splitlines(), (cluster, logs)
        assert logs.splitlines() == [message for *_, message in written]
        assert kubectl.run("logs", "talk", "-n", namespace, "--tail=1") == written[-1][3] + "\n"
        stamped = kubectl.run("logs", "talk", "-n", namespace, "--timestamps", "--tail=2")
        assert len(stamped.splitlines()) == 2, stamped
        for line, (time_written, *_, message) in zip(
            stamped.splitlines(), written[-2:], strict=True
        ):
            stamp, shown = line.split(" ", 1)
            assert datetime.fromisoformat(stamp) == datetime.fromisoformat(time_written), line
            assert shown == message

        assert kubectl.run("exec", "talk", "-n", namespace, "--", "echo", "hi") == "hi\n"
        ran_in = kubectl.run(
            "exec", "talk", "-n", namespace, "--", "sh", "-c", "echo $KOSMOS_CLUSTER"
        )
        assert ran_in == f"{cluster}\n", "exec must run in the pod's own cluster"


def test_kubectl_logs_follow_keeps_streaming_a_member_pod(local_env: LocalEnv, namespace: str):
    member = local_env.members[0]
    run_pod(local_env, member, namespace, "tail")
    printed = follow_logs(local_env, member, namespace, "tail", seconds=4)
    assert f"hello from {member}" in printed.splitlines(), printed
