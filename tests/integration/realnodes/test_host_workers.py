"""The host's real node is a worker: the seed's distribution-policy sample runs on it for real."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tests.fixtures.scheduler import SchedulerEnv
from tests.integration.realnodes.conftest import RealEnv
from tests.support import get, wait_for

EXAMPLES = Path(__file__).parent.parent
POLICY = EXAMPLES / "api" / "seed_examples" / "04-distributionpolicy-busybox.yaml"
BUSYBOX = EXAMPLES / "scheduler" / "seed_examples" / "busybox.yaml"
SEED_NAMESPACE = "test-name-scope"
LEAVES = {"kosmos-cluster1", "kosmos-cluster2"}


def test_seed_busybox_sample_runs_on_the_hosts_real_node_and_both_leaves(
    real: RealEnv, scheduler: SchedulerEnv
):
    host = real.kubectl(real.env.host)
    (worker,) = real.env.real_nodes(real.env.host)
    if host.ok("get", "namespace", SEED_NAMESPACE):  # left by another run: start afresh
        host.run("delete", "namespace", SEED_NAMESPACE, timeout=120)
    host.run("create", "namespace", SEED_NAMESPACE)
    host.run("uncordon", worker)  # the session cordons it (tests/fixtures/clusters.py)
    try:
        host.run("apply", "-f", str(POLICY))
        host.run("apply", "-f", str(BUSYBOX))

        def running() -> list | None:
            pods = get(host, "pods", "-n", SEED_NAMESPACE, "-l", "app=busybox")["items"]
            up = [p for p in pods if p["status"].get("phase") == "Running"]
            return up if len(up) == 3 else None

        pods = wait_for(running, 120, "the sample's 3 pods Running")
        placed = Counter(p["spec"]["nodeName"] for p in pods)
        assert set(placed) == {worker, *LEAVES}, placed  # anti-affinity: one per node
        on_worker = next(p for p in pods if p["spec"]["nodeName"] == worker)
        status = on_worker["status"]["containerStatuses"][0]
        assert status["containerID"].startswith("containerd://"), status
        assert status["imageID"], "a real image (our shell image answers to busybox:latest)"
    finally:
        host.run("cordon", worker)
        host.run("delete", "namespace", SEED_NAMESPACE, "--wait=false")
