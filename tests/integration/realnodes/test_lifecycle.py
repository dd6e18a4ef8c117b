"""A real node survives ``kill -9`` of any of its processes, and leaves nothing when removed."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from kosmos.local.nodes import isolation, layout, lifecycle
from kosmos.local.nodes.artifacts import ensure as artifacts
from kosmos.local.nodes.launch import exited
from kosmos.local.nodes.plan import real_node
from kosmos.net import wiring
from tests.integration.realnodes.conftest import RealEnv, pod, running
from tests.support import apply, get, wait_for

PROCESSES = ("kubelet", "containerd", "kube-proxy", "flanneld", "node-agent")


def _identity(real: RealEnv, namespace: str) -> tuple[str, str]:
    body = get(real.kubectl(), "pod", "survivor", "-n", namespace)
    return body["status"]["containerStatuses"][0]["containerID"], body["status"]["podIP"]


def test_kill_9_of_any_node_process_restarts_only_it_and_running_pods_stay(
    real: RealEnv, namespace: str
):
    kubectl, node = real.kubectl(), real.second
    dirs = layout.NodeDirs(node.name)
    apply(kubectl, pod("survivor", node.name, "shell", ["sleep", "3600"]), namespace=namespace)
    running(kubectl, namespace, "survivor")
    before = _identity(real, namespace)
    found = artifacts(print)
    for process in PROCESSES:
        pid = int(dirs.pid_file(process).read_text())
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda p=pid: exited(p), 10, f"{process} to die")
        outcome = lifecycle.ensure_node(node, found, kubectl, print)
        assert outcome.started == [process]
        fresh = f"after-{process}"
        apply(kubectl, pod(fresh, node.name, "shell", ["sleep", "3600"]), namespace=namespace)
        running(kubectl, namespace, fresh)
        assert _identity(real, namespace) == before, f"the running pod survived {process}"


def test_a_removed_node_leaves_no_process_mount_namespace_or_cgroup(real: RealEnv):
    cluster = real.env.plan("cluster2")
    kubectl = real.kubectl("cluster2")
    node = lifecycle.add_node(cluster, 2, real.env.environment, kubectl, print)
    dirs = layout.NodeDirs(node.name)
    hierarchies = isolation.host_cgroup_mounts()
    assert wiring.netns_exists(node.netns) and isolation.is_pinned(dirs.pin)
    pids = [int(dirs.pid_file(p).read_text()) for p in PROCESSES]
    report = lifecycle.remove_node(node.name, kubectl)
    assert report.left == []
    assert all(exited(pid) for pid in pids)
    assert not wiring.netns_exists(node.netns)
    assert not wiring.link_exists(node.network.netns, node.bridge_peer)
    assert not dirs.base.exists() and not dirs.pin.exists()
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(dirs.base) not in mounts and str(dirs.pin) not in mounts
    assert not [h for h in hierarchies if (Path(h.target) / node.cgroup).exists()]
    wait_for(lambda: not kubectl.ok("get", "node", node.name), 30, "its Node object to go")
    assert real_node(cluster, 1, real.env.environment).name in real.env.real_nodes("cluster2")
