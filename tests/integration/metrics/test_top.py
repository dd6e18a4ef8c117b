"""``kubectl top`` in the host: its real node and pods on it, and a leaf node with a pod that
runs on a member's real node (served by the leaf node's kubelet endpoint)."""

from __future__ import annotations

import json

from kosmos.api import names
from kosmos.api.quantity import parse_quantity
from kosmos.local.nodes.artifacts import image_refs
from kosmos.local.nodes.plan import REAL_NODE_TAINT
from tests.fixtures.tree import TreeEnv
from tests.integration.metrics.conftest import MetricsEnv, busy_container, pod_running
from tests.support import apply

LEAF = "kosmos-cluster1"
MEMBER = "cluster1"
SHELL = image_refs()["shell"]
LEAF_TOLERATION = {"key": "kosmos.io/node", "operator": "Equal", "value": "true"}


def test_top_node_answers_for_the_hosts_real_node(metrics: MetricsEnv) -> None:
    (worker,) = metrics.env.real_nodes(metrics.env.host)
    usage = metrics.top("node", worker)
    assert usage.name == worker
    assert usage.cpu_millis > 0, usage
    assert usage.memory_mib > 0, usage


def test_top_pod_answers_for_a_pod_on_the_hosts_real_node(
    metrics: MetricsEnv, namespace: str
) -> None:
    (worker,) = metrics.env.real_nodes(metrics.env.host)
    host = metrics.env.kubectl(metrics.env.host)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "busy"},
        "spec": {
            "nodeName": worker,  # a cordoned node still runs a pod bound to it
            "terminationGracePeriodSeconds": 1,
            "containers": [busy_container(SHELL)],
        },
    }
    apply(host, pod, namespace=namespace)
    pod_running(host, namespace, "busy")
    usage = metrics.top("pod", "busy", "-n", namespace)
    assert usage.memory_mib > 0, usage
    (container,) = metrics.pod_metrics(namespace, "busy")["containers"]
    assert parse_quantity(container["usage"]["cpu"]) > 0, container
    assert parse_quantity(container["usage"]["memory"]) > 2**20, container


def test_top_answers_for_a_leaf_node_and_its_pod_on_a_member_real_node(
    metrics: MetricsEnv, tree: TreeEnv, namespace: str
) -> None:
    """Needs the leaf node's kubelet read API (``/metrics/resource``) in the cluster-manager."""
    host = metrics.env.kubectl(metrics.env.host)
    member = metrics.env.kubectl(MEMBER)
    (member_worker,) = metrics.env.real_nodes(MEMBER)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "busy-leaf",
            # the member pod's node selector (a host pod's hostname selector names host nodes)
            "annotations": {
                names.ANNOTATION_CLUSTER_SELECTOR: json.dumps(
                    {"nodeSelector": {"kubernetes.io/hostname": member_worker}}
                )
            },
        },
        "spec": {
            "nodeName": LEAF,
            "tolerations": [LEAF_TOLERATION, {**REAL_NODE_TAINT, "operator": "Equal"}],
            "terminationGracePeriodSeconds": 1,
            "containers": [busy_container(SHELL)],
        },
    }
    member.run("uncordon", member_worker)  # the session cordons real nodes
    try:
        apply(host, pod, namespace=namespace)
        assert pod_running(member, namespace, "busy-leaf")["spec"]["nodeName"] == member_worker
        pod_running(host, namespace, "busy-leaf")
        usage = metrics.top("pod", "busy-leaf", "-n", namespace)
        assert usage.memory_mib > 0, usage
        (container,) = metrics.pod_metrics(namespace, "busy-leaf")["containers"]
        assert parse_quantity(container["usage"]["cpu"]) > 0, container
        leaf = metrics.top("node", LEAF)
        assert leaf.cpu_millis > 0, leaf
        assert leaf.memory_mib > 0, leaf
    finally:
        member.run("cordon", member_worker)
