"""The seed's quick start, replayed on the local environment.

The seed installs Kosmos into the host, joins cluster1 and cluster2, and then uses the
clusters "like a single cluster": ``kubectl get nodes`` in the host lists the members as
Ready ``agent`` nodes, and its nginx Deployment (3 replicas, tolerating only the leaf-node
taint) ends up Running on those leaf nodes, each pod really running in its member.
``kosmosctl local up --real-nodes 1 --sample-app`` does all of that (tests/e2e/conftest.py):
Kosmos installed in-cluster from our image, and the sample's image swapped for our HTTP image
so its member copies run as real containers on the members' real nodes. Here we check what a
user would see, then that ``down`` leaves nothing behind.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

from kosmos.local import procs
from kosmos.local.images import HTTP_REF, TAG
from kosmos.local.topology import Options, plan
from tests.e2e.conftest import PORT_BASE, E2EEnv
from tests.support import get

LEAVES = ("kosmos-cluster1", "kosmos-cluster2")


def test_up_set_kosmos_up_after_the_clusters_and_said_so(e2e_env: E2EEnv):
    log = e2e_env.first_up.stderr
    steps = [
        "environment up: host, cluster1, cluster2",
        # the managers, the scheduler, the endpoint prober and kosmos-coredns
        "waiting for 5 Deployments to be Available",
        "host: ClusterLink agents (DaemonSet kosmos-system/kosmos-agent) set up",
        f"installed Kosmos {TAG} in namespace kosmos-system",
        "kosmos: installed in-cluster (",
        "cluster1: ClusterLink agents (DaemonSet kosmos-system/kosmos-agent) set up in the member",
        "cluster1: endpoint prober (Deployment kosmos-system/kosmos-eps-probe) set up",
        "cluster1: kosmos-coredns set up in the member",
        "cluster1: joined",
        "cluster2: joined",
        "kosmos: leaf nodes Ready: kosmos-cluster1, kosmos-cluster2",
        "Kosmos pods Ready (",  # the host's: checked below
        "cluster1: 6 Kosmos pods Ready (",
        "sample app: deployment.apps/nginx-deployment created in namespace default",
        "sample app: 3 pods Running",
        "kosmos: ready (in-cluster)",
    ]
    positions = [log.find(step) for step in steps]
    assert -1 not in positions and positions == sorted(positions), log
    # five Deployments and one of the host's agents on host-real1 (agents also on kwok nodes)
    assert re.search(r"host: \d+ Kosmos pods Ready \((?:[^)]*, )?6 on host-real1\)", log), log
    hints = e2e_env.first_up.stdout
    assert "kubectl get nodes" in hints and "kubectl get pods -o wide" in hints


def test_get_nodes_shows_both_members_as_ready_agents_and_the_host_as_control_plane(
    e2e_env: E2EEnv,
):
    header, *lines = e2e_env.kubectl().run("get", "nodes").splitlines()
    assert header.split()[:3] == ["NAME", "STATUS", "ROLES"]
    rows = {line.split()[0]: line.split()[1:3] for line in lines}
    for leaf in LEAVES:
        assert rows[leaf] == ["Ready", "agent"], rows
    hosts = {name: row for name, row in rows.items() if name.startswith("host-node")}
    assert len(hosts) == 3 and all(row == ["Ready", "control-plane"] for row in hosts.values())
    assert rows["host-real1"] == ["Ready", "worker"]  # where the Kosmos pods run
    assert set(rows) == {*LEAVES, *hosts, "host-real1"}, "no leaf node for the host itself"


def test_nginx_runs_on_both_leaf_nodes_and_each_pod_in_its_member(e2e_env: E2EEnv):
    pods = get(e2e_env.kubectl(), "pods", "-n", "default", "-l", "app=nginx")["items"]
    assert len(pods) == 3
    placed = Counter(p["spec"]["nodeName"] for p in pods)
    assert set(placed) == set(LEAVES), f"3 replicas should use both leaf nodes: {placed}"
    assert all(p["status"]["phase"] == "Running" for p in pods)
    for pod in pods:
        name, member = pod["metadata"]["name"], pod["spec"]["nodeName"].removeprefix("kosmos-")
        copy = get(e2e_env.kubectl(member), "pod", name, "-n", "default")
        assert copy["status"]["phase"] == "Running", (member, name)
        assert copy["spec"]["nodeName"] == f"{member}-real1", "a real container, on the real node"
        assert copy["spec"]["containers"][0]["image"] == HTTP_REF
        assert copy["metadata"]["annotations"]["kosmos.io/host-pod-uid"] == pod["metadata"]["uid"]
    wide = e2e_env.kubectl().run("get", "pods", "-o", "wide")
    assert all(leaf in wide for leaf in LEAVES)


@pytest.mark.env_down
def test_down_stops_every_process_components_included_and_frees_every_port(e2e_env: E2EEnv):
    running = procs.processes_under(e2e_env.state)
    assert "kubelet" in " ".join(p.name for p in running)  # the real nodes' processes
    ports = {p for c in plan(Options(port_base=PORT_BASE)) for p in c.ports.values()}
    assert PORT_BASE in ports & set(procs.listening_ports())

    out = e2e_env.kosmosctl("local", "down")
    removed = next(line for line in out.stderr.splitlines() if "removed real nodes:" in line)
    assert {"host-real1", "cluster1-real1", "cluster2-real1"} <= set(
        removed.replace(",", " ").split()
    )
    assert procs.processes_under(e2e_env.state) == []
    still = ports & set(procs.listening_ports())
    assert still == set(), f"ports still listening after down: {sorted(still)}"
    assert e2e_env.kosmosctl("local", "status", check=False).returncode != 0
