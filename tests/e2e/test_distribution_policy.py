"""The seed's distribution-policy sample with kosmos-scheduler installed in-cluster.

``kosmosctl install`` (run by ``local up`` with real nodes) deploys kosmos-scheduler as a
Deployment of the host: the upstream kube-scheduler and our extender in one pod on
``host-real1``. The seed's DistributionPolicy and ClusterDistributionPolicy are applied as
written, then its busybox Deployment unchanged (three replicas, one per node by
anti-affinity, ``schedulerName: kosmos-scheduler``; ``busybox:latest`` is our shell image on
the real nodes, imported under that name too). Its pods match the
DistributionPolicy's ``labelSelector`` (term ``mix``), so they land on host and leaf nodes
alike, the seed's "hybrid scheduling" table: the host's real worker and both leaf nodes (the
host's kwok nodes are control-plane nodes the pods do not tolerate). Each pod runs: a real
container on ``host-real1``, a member copy behind each leaf node.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import E2EEnv
from tests.support import get, wait_for

ROOT = Path(__file__).parents[2]
POLICIES = ROOT / "tests" / "integration" / "api" / "seed_examples"
SAMPLE = ROOT / "tests" / "integration" / "scheduler" / "seed_examples" / "busybox.yaml"
NS = "test-name-scope"
CLUSTER_POLICY = "kosmos-node-cluster-distribution-policy"
NODES = {"host-real1", "kosmos-cluster1", "kosmos-cluster2"}


@pytest.fixture
def seed_policies(e2e_env: E2EEnv) -> Iterator[None]:
    host = e2e_env.kubectl()
    host.run("create", "namespace", NS)
    try:
        for seed in (
            "04-distributionpolicy-busybox.yaml",
            "05-clusterdistributionpolicy-cluster-busybox.yaml",
        ):
            host.run("apply", "-f", str(POLICIES / seed))
        yield
    finally:
        host.run("delete", "namespace", NS, "--ignore-not-found", "--wait=false")
        host.run("delete", "clusterdistributionpolicy", CLUSTER_POLICY, "--ignore-not-found")


def test_seed_busybox_sample_runs_on_the_host_and_both_leaf_nodes(
    e2e_env: E2EEnv, seed_policies: None
) -> None:
    host = e2e_env.kubectl()
    scheduler = get(host, "deployment", "kosmos-scheduler", "-n", "kosmos-system")
    assert scheduler["status"].get("availableReplicas") == 1, scheduler["status"]
    host.run("apply", "-f", str(SAMPLE))

    def running() -> list[dict[str, Any]] | None:
        pods = get(host, "pods", "-n", NS, "-l", "app=busybox")["items"]
        done = len(pods) == 3 and all(p["status"].get("phase") == "Running" for p in pods)
        return pods if done else None

    pods = wait_for(running, 180, "the three busybox pods Running")
    assert all(p["spec"]["schedulerName"] == "kosmos-scheduler" for p in pods)
    assert {p["spec"]["nodeName"] for p in pods} == NODES
    table = host.run("get", "pods", "-n", NS, "-o", "wide")
    assert all(node in table for node in NODES), table
    for pod in pods:
        node = pod["spec"]["nodeName"]
        if node.startswith("kosmos-"):  # a leaf node: the pod runs in that member
            member = e2e_env.kubectl(node.removeprefix("kosmos-"))
            copy_ = get(member, "pod", pod["metadata"]["name"], "-n", NS)
            assert copy_["status"]["phase"] == "Running", (node, copy_["status"])
