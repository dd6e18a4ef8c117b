"""Pods on real nodes run real containers: logs, exec, Services, the pod network."""

from __future__ import annotations

from ipaddress import ip_network

from kosmos.local import environment
from tests.integration.realnodes.conftest import MEMBER, RealEnv, pod, running
from tests.support import apply, get, wait_for

SERVE = 8080


def test_a_pod_on_each_clusters_real_node_runs_its_own_container(real: RealEnv, namespace: str):
    for cluster in real.env.names:
        kubectl = real.kubectl(cluster)
        node = real.env.real_nodes(cluster)[0]
        script = 'echo "started $(hostname) uid=$(id -u)"; exec sleep 3600'
        apply(kubectl, pod("hello", node, "shell", ["sh", "-c", script]), namespace=namespace)
        body = running(kubectl, namespace, "hello")["hello"]
        assert body["spec"]["nodeName"] == node
        logs = wait_for(
            lambda k=kubectl: (
                "started hello" in (out := k.run("logs", "hello", "-n", namespace)) and out
            ),
            20,
            "the container's own output",
        )
        assert "started hello uid=0" in logs, cluster
        hostname = kubectl.run("exec", "hello", "-n", namespace, "--", "hostname").strip()
        assert hostname == "hello", cluster
        status = body["status"]["containerStatuses"][0]
        assert status["containerID"].startswith("containerd://"), cluster


def _serve(name: str, node: str) -> dict:
    return pod(name, node, "http", ports=[{"containerPort": SERVE}])


def _fetch(real: RealEnv, namespace: str, url: str) -> str:
    out: str = real.kubectl().run(
        "exec", "client", "-n", namespace, "--", "timeout", "3", "wget", "-qO-", url, timeout=20
    )
    return out.strip()


def _answers(real: RealEnv, namespace: str, url: str, want: str) -> str:
    def answer() -> str | None:
        try:
            out = _fetch(real, namespace, url)
        except Exception:  # not yet: endpoints or kube-proxy's rules still syncing
            return None
        return out if out == want else None

    result: str = wait_for(answer, 30, f"{url} to answer {want}")
    return result


def test_a_cluster_ip_service_answers_from_another_pod(real: RealEnv, namespace: str):
    kubectl = real.kubectl()
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "server"}, "ports": [{"port": 80, "targetPort": SERVE}]},
    }
    client = pod("client", real.first, "shell", ["sleep", "3600"])
    apply(kubectl, _serve("server", real.second.name), client, service, namespace=namespace)
    running(kubectl, namespace, "server", "client")
    cluster_ip = get(kubectl, "service", "web", "-n", namespace)["spec"]["clusterIP"]
    assert _answers(real, namespace, f"http://{cluster_ip}/", "server") == "server"


def test_a_pod_reaches_a_pod_on_another_real_node_through_flannel(real: RealEnv, namespace: str):
    kubectl = real.kubectl()
    client = pod("client", real.first, "shell", ["sleep", "3600"])
    apply(kubectl, _serve("server", real.second.name), client, namespace=namespace)
    pods = running(kubectl, namespace, "server", "client")
    server_ip, client_ip = (pods[n]["status"]["podIP"] for n in ("server", "client"))
    plan = real.env.plan(MEMBER)
    nodes = {n["metadata"]["name"]: n for n in get(kubectl, "nodes")["items"]}
    first, second = nodes[real.first], nodes[real.second.name]
    assert first["spec"]["podCIDR"] != second["spec"]["podCIDR"]
    for node in (first, second):
        annotations = node["metadata"]["annotations"]
        assert annotations["flannel.alpha.coreos.com/backend-type"] == "vxlan"
        assert ip_network(node["spec"]["podCIDR"]).subnet_of(ip_network(plan.pod_cidr))
    assert _answers(real, namespace, f"http://{server_ip}:{SERVE}/", "server") == "server"
    logs = kubectl.run("logs", "server", "-n", namespace)
    assert client_ip in logs, f"the server saw the client's own address {client_ip}: {logs}"


def test_status_lists_real_and_kwok_nodes_with_their_runtime(real: RealEnv):
    rows = {row.name: row for row in environment.nodes_status()}
    for cluster in real.env.clusters:
        for node in cluster.nodes:
            assert (rows[node.name].kind, rows[node.name].runtime) == ("kwok", "kwok")
        real_row = rows[f"{cluster.name}-real1"]
        assert real_row.kind == "real" and real_row.cluster == cluster.name
        assert real_row.runtime.startswith("containerd://") and real_row.ready
        assert real_row.processes == "4/4"
    assert rows[real.second.name].kind == "real"
