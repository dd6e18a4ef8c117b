"""ClusterTree under failure: a member away for two minutes, a cluster-manager killed mid-sync."""

from __future__ import annotations

import os
import random
import signal
import time
from typing import Any

from kosmos.api.objects import node_ready
from kosmos.local import paths
from tests.fixtures.tree import TreeEnv
from tests.integration.clustertree.test_tree import deployment, pods, running
from tests.support import apply, get, wait_for

OUTAGE_SECONDS = 120


def apiserver_pid(cluster: str) -> int:
    pid_file = paths.local_dir() / "kwok" / "clusters" / cluster / "pids" / "kube-apiserver.pid"
    return int(pid_file.read_text().strip())


def leaf(tree: TreeEnv, name: str) -> dict[str, Any]:
    node: dict[str, Any] = get(tree.host, "node", name)
    return node


def identities(items: list[dict[str, Any]]) -> dict[str, tuple[str, int]]:
    """name -> (uid, restarts): what must not change while a member is away."""
    return {
        p["metadata"]["name"]: (
            p["metadata"]["uid"],
            sum(c.get("restartCount", 0) for c in p["status"].get("containerStatuses") or []),
        )
        for p in items
    }


def test_leaf_pods_get_unbounded_outage_tolerations(tree: TreeEnv, namespace: str) -> None:
    apply(tree.host, deployment("tolerant", 1), namespace=namespace)
    pod = wait_for(lambda: pods(tree.host, namespace, "app=tolerant"), 30, "pod created")[0]
    outage = {t["key"]: t for t in pod["spec"]["tolerations"] if t.get("effect") == "NoExecute"}
    for key in ("node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready"):
        assert "tolerationSeconds" not in outage[key], outage
    plain = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "plain"},
        "spec": {"containers": [{"name": "c", "image": "x"}]},
    }
    apply(tree.host, plain, namespace=namespace)
    seconds = get(tree.host, "pod", "plain", "-n", namespace)["spec"]["tolerations"]
    assert all(t.get("tolerationSeconds") == 300 for t in seconds)  # untouched: not a leaf pod


def test_member_outage_turns_leaf_not_ready_and_touches_no_pod(
    tree: TreeEnv, namespace: str
) -> None:
    spec = {"nodeSelector": {"kubernetes.io/hostname": "kosmos-cluster1"}}
    apply(tree.host, deployment("steady", 3, **spec), namespace=namespace)
    wait_for(lambda: running(pods(tree.host, namespace, "app=steady"), 3), 60, "3 pods Running")
    member = tree.member("cluster1")
    before_member = identities(pods(member, namespace, "app=steady"))
    before_host = identities(pods(tree.host, namespace, "app=steady"))
    pid = apiserver_pid("cluster1")
    os.kill(pid, signal.SIGSTOP)
    stopped = time.monotonic()
    try:
        wait_for(
            lambda: not node_ready(leaf(tree, "kosmos-cluster1")), 70, "kosmos-cluster1 NotReady"
        )
        went_not_ready = time.monotonic() - stopped
        assert node_ready(leaf(tree, "kosmos-cluster2"))  # the other member is unaffected
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - stopped)))
        during = pods(tree.host, namespace, "app=steady")
        assert identities(during).keys() == before_host.keys()
        assert not any(p["metadata"].get("deletionTimestamp") for p in during)
    finally:
        os.kill(pid, signal.SIGCONT)
    resumed = time.monotonic()
    wait_for(lambda: node_ready(leaf(tree, "kosmos-cluster1")), 10, "kosmos-cluster1 Ready again")
    back_in = time.monotonic() - resumed
    # converged without churn: same pods, same uids, no restarts, statuses Running again
    wait_for(lambda: running(pods(tree.host, namespace, "app=steady"), 3), 30, "host Running")
    assert identities(pods(tree.host, namespace, "app=steady")) == before_host
    assert identities(pods(member, namespace, "app=steady")) == before_member
    print(f"NotReady after {went_not_ready:.1f}s, Ready {back_in:.1f}s after the member returned")
    # both transitions are Events on the leaf node, as a kubelet reports its node's
    wait_for(
        lambda: {"NodeNotReady", "NodeReady"} <= leaf_event_reasons(tree, "kosmos-cluster1"),
        30,
        "NodeNotReady and NodeReady events on kosmos-cluster1",
    )


def leaf_event_reasons(tree: TreeEnv, node: str) -> set[str]:
    selector = f"involvedObject.kind=Node,involvedObject.name={node}"
    items = get(tree.host, "events", "-n", "default", "--field-selector", selector)["items"]
    return {
        e["reason"] for e in items if e.get("source", {}).get("component", "").startswith("kosmos")
    }


def test_killing_the_cluster_manager_mid_sync_loses_and_duplicates_nothing(
    tree: TreeEnv, namespace: str
) -> None:
    total = 500
    apply(tree.host, deployment("crowd", total), namespace=namespace)
    rng = random.Random(5)
    for _ in range(3):
        time.sleep(rng.uniform(1.0, 6.0))
        tree.kill()
        tree.start()
    wait_for(
        lambda: running(pods(tree.host, namespace, "app=crowd"), total),
        240,
        f"{total} host pods Running",
        interval=2,
    )
    host = {
        p["metadata"]["name"]: p["metadata"]["uid"] for p in pods(tree.host, namespace, "app=crowd")
    }
    copies: dict[str, str] = {}
    for member in tree.env.members:
        for pod in pods(tree.member(member), namespace, "app=crowd"):
            name = pod["metadata"]["name"]
            assert name not in copies, f"{name} exists in two members"
            copies[name] = pod["metadata"]["annotations"]["kosmos.io/host-pod-uid"]
    assert copies == host
