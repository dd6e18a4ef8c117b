"""The local Kosmos set-up's data and decisions (kosmos.local.kosmos_plan), without a cluster."""

from __future__ import annotations

import json
import socket

import pytest

from kosmos.local import kosmos_plan
from kosmos.local.images import HTTP_REF
from kosmos.local.topology import Options, plan

WANT = ["/venv/bin/python", "-m", "kosmos.launcher", "cluster-manager", "--kubeconfig", "k"]


@pytest.mark.parametrize(
    ("pid", "argv", "serving", "action"),
    [
        (None, [], False, "start"),
        (42, WANT, True, "keep"),
        (42, ["/usr/bin/python3.11", *WANT[1:]], True, "keep"),  # the venv's other name
        (42, [*WANT, "--heartbeat", "2"], True, "keep"),  # a test's extra flags
        (42, WANT, False, "restart"),  # hung: not serving /healthz
        (42, [*WANT[:4], "--kubeconfig"], True, "restart"),  # an older command line
        (42, [*WANT[:-1], "other"], True, "restart"),  # another environment's kubeconfig
        (42, [], False, "restart"),  # gone between the checks
    ],
)
def test_component_action(pid, argv, serving, action):
    assert kosmos_plan.component_action(pid, argv, WANT, serving) == action


def test_the_lease_must_be_held_by_this_very_process():
    mine = {"spec": {"holderIdentity": f"{socket.gethostname()}_42"}}
    assert kosmos_plan.holds_lease(mine, 42)
    assert not kosmos_plan.holds_lease(mine, 43)
    assert not kosmos_plan.holds_lease({"spec": {}}, 42)
    assert not kosmos_plan.holds_lease(None, 42)


def node(name: str, owner: str | None, ready: bool = True) -> dict:
    labels = {"kosmos.io/node": "true"} | ({"kosmos.io/owner-cluster": owner} if owner else {})
    status = "True" if ready else "False"
    return {
        "metadata": {"name": name, "labels": labels},
        "status": {"conditions": [{"type": "Ready", "status": status}]},
    }


def test_leaves_pending_until_every_member_has_only_ready_leaf_nodes():
    members = ["cluster1", "cluster2"]
    assert kosmos_plan.leaves_pending([], members) == members
    one = [node("kosmos-cluster1", "cluster1")]
    assert kosmos_plan.leaves_pending(one, members) == ["cluster2"]
    both = [*one, node("kosmos-cluster2", "cluster2", ready=False)]
    assert kosmos_plan.leaves_pending(both, members) == ["cluster2"]
    both[1] = node("kosmos-cluster2", "cluster2")
    assert kosmos_plan.leaves_pending(both, members) == []
    assert kosmos_plan.leaves_pending(both, []) == []


def test_leaf_names_are_the_members_leaves_only():
    nodes = [
        node("kosmos-cluster1", "cluster1"),
        node("kosmos-kosmos-control-cluster", "kosmos-control-cluster"),
        node("stray", None),
    ]
    assert kosmos_plan.leaf_names(nodes, ["cluster1"]) == {"kosmos-cluster1"}


def pod(name: str, node_name: str = "", phase: str = "Pending", deleting: bool = False) -> dict:
    meta: dict = {"name": name}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "spec": {"nodeName": node_name}, "status": {"phase": phase}}


def test_sample_pending_counts_live_running_pods_against_replicas():
    deployment = kosmos_plan.sample_app()
    assert kosmos_plan.sample_pending(None, []) == "Deployment not found"
    assert kosmos_plan.sample_pending(deployment, []) == "0/3 pods Running"
    pods = [pod(f"p{i}", "kosmos-cluster1", "Running") for i in range(3)]
    assert kosmos_plan.sample_pending(deployment, pods) == ""
    old = pod("old", "kosmos-cluster2", "Running", deleting=True)
    assert kosmos_plan.sample_pending(deployment, [*pods, old]) == ""
    assert kosmos_plan.sample_pending(deployment, [*pods[:2], pod("p2")]) == "2/3 pods Running"


def test_pods_bound_outside_the_leaf_nodes_are_misplaced():
    leaves = {"kosmos-cluster1", "kosmos-cluster2"}
    pods = [pod("a", "kosmos-cluster1"), pod("b"), pod("c", "host-node1")]
    assert kosmos_plan.misplaced(pods, leaves) == ["host-node1"]
    assert kosmos_plan.misplaced(pods[:2], leaves) == []
    assert kosmos_plan.misplaced([pod("d", "host-node2", deleting=True)], leaves) == []


def test_the_sample_app_is_the_seeds_nginx_deployment_in_default_with_our_http_image():
    body = kosmos_plan.sample_app()
    assert body["metadata"] == {
        "name": "nginx-deployment",
        "labels": {"app": "nginx"},
        "namespace": "default",
    }
    spec = body["spec"]["template"]["spec"]
    assert body["spec"]["replicas"] == 3
    assert spec["tolerations"] == [{"key": "kosmos.io/node", "operator": "Equal", "value": "true"}]
    assert spec["containers"] == [
        {
            "name": "nginx",
            "image": HTTP_REF,
            "imagePullPolicy": "IfNotPresent",
            "env": [{"name": "PORT", "value": "80"}],
            "ports": [{"containerPort": 80}],
        }
    ]
    assert "annotations" not in body["spec"]["template"]["metadata"]  # kwok members: anywhere
    assert "namespace" not in kosmos_plan.SAMPLE_APP["metadata"]  # the constant is untouched


def test_with_real_nodes_the_member_copies_go_to_the_members_real_nodes():
    template = kosmos_plan.sample_app(real_nodes=True)["spec"]["template"]
    intent = json.loads(template["metadata"]["annotations"]["kosmos.io/cluster-selector"])
    assert intent["nodeSelector"] == {"local.kosmos.io/real-node": "true"}
    assert intent["tolerations"][0]["key"] == "local.kosmos.io/real-node"
    assert template["spec"]["nodeSelector"] == {"kosmos.io/node": "true"}  # leaf nodes in the host


def test_cluster_manager_ports_follow_the_host_plan():
    host = plan(Options(port_base=20000))[0]
    assert kosmos_plan.cluster_manager_ports(host).health == 20007


def test_marker_round_trip_and_a_recorded_sample_app_stays(tmp_path, monkeypatch):
    monkeypatch.setenv("KOSMOS_LOCAL_DIR", str(tmp_path))
    assert kosmos_plan.read_marker() is None
    kosmos_plan.write_marker(kosmos_plan.Marker(sample_app=True))
    assert kosmos_plan.read_marker() == kosmos_plan.Marker(sample_app=True)
    assert kosmos_plan.merged_marker(kosmos_plan.read_marker(), sample_app=False).sample_app
    assert not kosmos_plan.merged_marker(None, sample_app=False).sample_app
    kosmos_plan.clear_marker()
    assert kosmos_plan.read_marker() is None


def test_scheduler_leads_reads_kube_schedulers_own_metric():
    lines = [
        "# HELP leader_election_master_status ...",
        'leader_election_master_status{name="kube-scheduler"} 1',
    ]
    assert kosmos_plan.scheduler_leads("\n".join(lines))
    assert not kosmos_plan.scheduler_leads('leader_election_master_status{name="kube-scheduler"} 0')
    assert not kosmos_plan.scheduler_leads("")
