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
from kosmos.local.topology import PORTS_PER_CLUSTER
from tests.e2e.conftest import PORT_BASE, UP_ARGS, E2EEnv, kosmosctl
from tests.support import get

#: Where the bad-option tests point: nothing may ever start there.
SPARE_PORT_BASE = PORT_BASE - 100


def test_up_exports_a_kubeconfig_in_its_own_state_dir(e2e_env: E2EEnv):
    assert e2e_env.kubeconfig.startswith(str(e2e_env.state))
    nodes = e2e_env.kubectl("cluster1").run("get", "nodes", "-o", "name").split()
    assert nodes == [f"node/cluster1-node{i}" for i in (1, 2, 3)]


def test_status_shows_healthy_clusters_and_the_component_processes(e2e_env: E2EEnv):
    status = json.loads(e2e_env.kosmosctl("local", "status", "-o", "json").stdout)
    assert [(c["name"], c["healthy"]) for c in status["clusters"]] == [
        ("host", True),
        ("cluster1", True),
        ("cluster2", True),
    ]
    ports = {c["name"]: c["health_port"] for c in status["components"]}
    assert ports == {
        "cluster-manager": PORT_BASE + 7,
        "scheduler-extender": PORT_BASE + 8,  # HTTPS
        "kosmos-scheduler": PORT_BASE + 9,  # kube-scheduler's secure port
    }
    ours = {str(p.pid) for p in procs.processes_under(e2e_env.state)}
    for component in status["components"]:
        assert component["healthy"] and component["rss_mib"] > 10, component
        assert str(component["pid"]) in ours
    table = e2e_env.kosmosctl("local", "status").stdout
    assert "cluster-manager" in table and f":{PORT_BASE + 7}" in table
    assert "kosmos-scheduler" in table and f":{PORT_BASE + 9}" in table


def _generations(e2e_env: E2EEnv) -> dict[str, object]:
    """What a second ``up`` must not change: specs (generations), pod identities, secrets."""
    deployment = get(e2e_env.kubectl(), "deployment", "nginx-deployment")
    clusters = get(e2e_env.kubectl(), "clusters")["items"]
    secrets = get(e2e_env.kubectl(), "secrets", "-n", "kosmos-system")["items"]
    pods = get(e2e_env.kubectl(), "pods", "-l", "app=nginx")["items"]
    return {
        "deployment": deployment["metadata"]["generation"],
        "clusters": {c["metadata"]["name"]: c["metadata"]["generation"] for c in clusters},
        "secrets": {s["metadata"]["name"]: s["metadata"]["resourceVersion"] for s in secrets},
        "pods": sorted(p["metadata"]["uid"] for p in pods),
    }


def test_second_up_is_fast_and_changes_nothing(e2e_env: E2EEnv):
    before = _generations(e2e_env)
    components = json.loads(e2e_env.kosmosctl("local", "status", "-o", "json").stdout)
    pid = {c["name"]: c["pid"] for c in components["components"]}["cluster-manager"]
    started = time.monotonic()
    again = e2e_env.kosmosctl("local", "up", *UP_ARGS)
    seconds = time.monotonic() - started
    log = again.stderr
    assert "creating" not in log and "created" not in log, log
    assert log.count("already running") == 6, log  # three clusters and three components
    assert f"cluster-manager: already running (pid {pid}," in log
    assert "19 objects: 19 unchanged" in log
    assert "cluster1: already joined" in log and "cluster2: already joined" in log
    assert "deployment.apps/nginx-deployment unchanged" in log
    assert _generations(e2e_env) == before
    assert seconds < 30, f"second up took {seconds:.1f}s (first: {e2e_env.first_up_seconds:.1f}s)"


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
