"""``kosmosctl local up/status/down`` as a user runs them, in an isolated environment.

The environment (tests/e2e/conftest.py) has its own state dir and port range, so it never
disturbs the session's shared environment; ``down`` is checked to leave nothing behind in
test_quick_start.py, the last test of the tier.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from kosmos.local import procs
from kosmos.local.images import KOSMOS_REF
from kosmos.local.topology import PORTS_PER_CLUSTER
from tests.e2e.conftest import PORT_BASE, UP_ARGS, E2EEnv, kosmosctl
from tests.support import get

IMAGE = KOSMOS_REF
#: Where the bad-option tests point: nothing may ever start there.
SPARE_PORT_BASE = PORT_BASE - 100


def test_up_exports_a_kubeconfig_in_its_own_state_dir(e2e_env: E2EEnv):
    assert e2e_env.kubeconfig.startswith(str(e2e_env.state))
    nodes = e2e_env.kubectl("cluster1").run("get", "nodes", "-o", "name").split()
    assert nodes == [*(f"node/cluster1-node{i}" for i in (1, 2, 3)), "node/cluster1-real1"]


def test_status_shows_healthy_clusters_and_the_kosmos_pods(e2e_env: E2EEnv):
    status = json.loads(e2e_env.kosmosctl("local", "status", "-o", "json").stdout)
    assert [(c["name"], c["healthy"]) for c in status["clusters"]] == [
        ("host", True),
        ("cluster1", True),
        ("cluster2", True),
    ]
    assert status["components"] == []  # in-cluster: no component runs as a local process
    on_host = [p for p in status["pods"] if p["cluster"] == "host"]
    # the host is a ClusterLink peer: its agents (a DaemonSet) run on every host node
    agents = [p for p in on_host if p["pod"].startswith("kosmos-system/kosmos-agent-")]
    assert "host-real1" in {p["node"] for p in agents}
    host = {p["pod"].split("/")[1].rsplit("-", 2)[0]: p for p in on_host if p not in agents}
    assert set(host) == {
        "kosmos-cluster-manager",
        "kosmos-network-manager",
        "kosmos-scheduler",
        "kosmos-coredns",  # clusterset.local (with its zone writer)
        "kosmos-eps-probe",
    }
    for pod in host.values():
        assert pod["node"] == "host-real1" and pod["restarts"] == "0", pod
        have, want = pod["ready"].split("/")
        assert have == want, pod
    assert host["kosmos-cluster-manager"]["image"] == IMAGE
    assert host["kosmos-scheduler"]["image"] == f"{IMAGE},registry.k8s.io/kube-scheduler:v1.36.3"
    agents = [p for p in status["pods"] if p["cluster"] == "cluster1"]
    assert {p["node"] for p in agents} == {
        "cluster1-real1",
        *(f"cluster1-node{i}" for i in (1, 2, 3)),
    }
    table = e2e_env.kosmosctl("local", "status").stdout
    assert "kosmos-system/kosmos-cluster-manager-" in table and "host-real1" in table


def _generations(e2e_env: E2EEnv) -> dict[str, object]:
    """What a second ``up`` must not change: specs (generations), pod identities, secrets."""
    deployment = get(e2e_env.kubectl(), "deployment", "nginx-deployment")
    clusters = get(e2e_env.kubectl(), "clusters")["items"]
    secrets = get(e2e_env.kubectl(), "secrets", "-n", "kosmos-system")["items"]
    pods = get(e2e_env.kubectl(), "pods", "-l", "app=nginx")["items"]
    kosmos = get(e2e_env.kubectl(), "pods", "-n", "kosmos-system")["items"]
    return {
        "deployment": deployment["metadata"]["generation"],
        "clusters": {c["metadata"]["name"]: c["metadata"]["generation"] for c in clusters},
        "secrets": {s["metadata"]["name"]: s["metadata"]["resourceVersion"] for s in secrets},
        "pods": sorted(p["metadata"]["uid"] for p in pods),
        "kosmos pods": sorted(p["metadata"]["uid"] for p in kosmos),
    }


def test_second_up_is_fast_and_changes_nothing(e2e_env: E2EEnv):
    before = _generations(e2e_env)
    started = time.monotonic()
    again = e2e_env.kosmosctl("local", "up", *UP_ARGS)
    seconds = time.monotonic() - started
    log = again.stderr
    assert "creating" not in log and " created" not in log, log
    assert log.count("already running") == 6, log  # three clusters and their real nodes
    assert "kosmos: installed in-cluster (" in log and "unchanged)" in log, log
    assert "cluster1: already joined" in log and "cluster2: already joined" in log
    assert "deployment.apps/nginx-deployment unchanged" in log
    assert _generations(e2e_env) == before
    assert seconds < 45, f"second up took {seconds:.1f}s (first: {e2e_env.first_up_seconds:.1f}s)"


def test_bad_options_fail_clearly_and_create_nothing(tmp_path: Path):
    state = tmp_path / "local"
    out = kosmosctl(_env(state), "local", "up", "--members", "1", "--overlap", check=False)
    assert out.returncode != 0
    assert "--overlap" in out.stderr
    assert not (state / "kwok").exists()


def test_up_refuses_ports_held_by_another_process_and_writes_nothing(tmp_path: Path):
    state = tmp_path / "local"
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", SPARE_PORT_BASE + 1))  # the host cluster's etcd port
        squatter.listen()
        out = kosmosctl(
            _env(state),
            "local",
            "up",
            "--members",
            "1",
            "--port-base",
            str(SPARE_PORT_BASE),
            check=False,
        )
    assert out.returncode == 1
    assert f"{SPARE_PORT_BASE + 1} (etcd)" in out.stderr
    assert not state.exists()
    assert SPARE_PORT_BASE + PORTS_PER_CLUSTER not in procs.listening_ports()


def _env(state: Path) -> dict[str, str]:
    return dict(os.environ, KOSMOS_LOCAL_DIR=str(state))
