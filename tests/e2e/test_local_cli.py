"""``kosmosctl local up/status/down`` as a user runs them, in an isolated environment.

The environment here has its own state dir and port range, so it never disturbs the
session's shared environment, and ``down`` can be checked to leave nothing behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kosmos.local import procs
from kosmos.local.topology import PORTS_PER_CLUSTER

KOSMOSCTL = str(Path(sys.executable).parent / "kosmosctl")
PORT_BASE = 17400


def kosmosctl(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run(
        [KOSMOSCTL, *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    if check and out.returncode != 0:
        raise AssertionError(f"kosmosctl {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return out


@pytest.fixture
def isolated(tmp_path: Path):
    env = dict(os.environ, KOSMOS_LOCAL_DIR=str(tmp_path / "local"))
    yield env, tmp_path / "local"
    kosmosctl(env, "local", "down", check=False)


def test_up_status_kubectl_idempotent_up_then_down_leaves_nothing(isolated):
    env, state = isolated
    args = ["--members", "1", "--nodes", "2", "--port-base", str(PORT_BASE)]
    first = kosmosctl(env, "local", "up", *args)
    exports = dict(
        line.removeprefix("export ").split("=", 1)
        for line in first.stdout.splitlines()
        if line.startswith("export ")
    )
    kubeconfig = exports["KUBECONFIG"]
    assert kubeconfig.startswith(str(state))

    status = json.loads(kosmosctl(env, "local", "status", "-o", "json").stdout)
    assert [(c["name"], c["healthy"]) for c in status] == [("host", True), ("cluster1", True)]

    kubectl = exports["PATH"].split(":")[0] + "/kubectl"
    nodes = subprocess.run(
        [
            kubectl,
            "--kubeconfig",
            kubeconfig,
            "--context",
            "cluster1",
            "get",
            "nodes",
            "-o",
            "name",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert nodes == ["node/cluster1-node1", "node/cluster1-node2"]

    again = kosmosctl(env, "local", "up", *args)
    assert "already running" in again.stderr
    assert "creating" not in again.stderr

    running = procs.processes_under(state)
    assert {p.name for p in running} >= {
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kwok-controller",
    }
    ports = procs.listening_ports([p.pid for p in running])
    assert PORT_BASE in ports and PORT_BASE + PORTS_PER_CLUSTER in ports

    kosmosctl(env, "local", "down")
    assert procs.processes_under(state) == []
    still = set(procs.listening_ports()) & set(ports)
    assert still == set(), f"ports still listening after down: {sorted(still)}"
    assert kosmosctl(env, "local", "status", check=False).returncode != 0


def test_bad_options_fail_clearly_and_create_nothing(isolated):
    env, state = isolated
    out = kosmosctl(env, "local", "up", "--members", "1", "--overlap", check=False)
    assert out.returncode != 0
    assert "--overlap" in out.stderr
    assert not (state / "kwok").exists()


def test_up_refuses_ports_held_by_another_process_and_writes_nothing(isolated):
    env, state = isolated
    import socket

    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", PORT_BASE + 1))  # the host cluster's etcd port
        squatter.listen()
        out = kosmosctl(
            env, "local", "up", "--members", "1", "--port-base", str(PORT_BASE), check=False
        )
    assert out.returncode == 1
    assert f"{PORT_BASE + 1} (etcd)" in out.stderr
    assert not state.exists()
