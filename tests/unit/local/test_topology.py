import ipaddress

import pytest

from kosmos.local.topology import (
    CONTROL_PLANE_ROLE,
    CONTROL_PLANE_TAINT,
    KWOK_NODE_SELECTOR,
    MAX_CLUSTERS,
    PORTS_PER_CLUSTER,
    Options,
    PlanError,
    node_drift,
    node_manifest,
    plan,
)


def test_default_plan_is_host_plus_two_members_with_three_nodes():
    clusters = plan(Options())
    assert [c.name for c in clusters] == ["host", "cluster1", "cluster2"]
    assert [c.role for c in clusters] == ["host", "member", "member"]
    assert all(len(c.nodes) == 3 for c in clusters)


def test_ports_are_distinct_and_predictable():
    clusters = plan(Options(members=3, port_base=20000))
    ports = [p for c in clusters for p in c.ports.values()]
    assert len(ports) == len(set(ports))
    assert clusters[0].apiserver_port == 20000
    assert clusters[2].apiserver_port == 20020


def test_cidrs_are_distinct_by_default():
    clusters = plan(Options(members=3))
    nets = [ipaddress.ip_network(c.pod_cidr) for c in clusters]
    nets += [ipaddress.ip_network(c.service_cidr) for c in clusters]
    for i, a in enumerate(nets):
        for b in nets[i + 1 :]:
            assert not a.overlaps(b), (a, b)


def test_overlap_makes_cluster1_and_cluster2_share_cidrs_only():
    host, c1, c2, c3 = plan(Options(members=3, overlap=True))
    assert (c1.pod_cidr, c1.service_cidr) == (c2.pod_cidr, c2.service_cidr)
    assert c3.pod_cidr not in (c1.pod_cidr, host.pod_cidr)


def test_nodes_carry_topology_labels_and_per_node_pod_cidrs_inside_cluster_cidr():
    cluster = plan(Options())[1]
    zones = {n.labels["topology.kubernetes.io/zone"] for n in cluster.nodes}
    assert len(zones) == 3
    for node in cluster.nodes:
        assert node.labels["topology.kubernetes.io/region"] == cluster.region
        assert node.labels["kubernetes.io/hostname"] == node.name
        assert ipaddress.ip_network(node.pod_cidr).subnet_of(ipaddress.ip_network(cluster.pod_cidr))


def test_node_manifest_is_selected_by_kwok_and_has_capacity():
    node = plan(Options())[1].nodes[0]
    manifest = node_manifest(node, "v1.36.3")
    key, value = KWOK_NODE_SELECTOR.split("=")
    assert manifest["metadata"]["labels"][key] == value
    assert manifest["status"]["allocatable"]["cpu"] == str(node.cpu)
    assert manifest["status"]["nodeInfo"]["kubeletVersion"] == "v1.36.3"
    assert manifest["spec"]["podCIDRs"] == [node.pod_cidr]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (Options(members=-1), "--members"),
        (Options(nodes=0), "--nodes"),
        (Options(members=1, overlap=True), "--overlap"),
        (Options(port_base=80), "--port-base"),
        (Options(port_base=65530), "--port-base"),
        (Options(bind_address="10.0.0.1"), "loopback"),
    ],
)
def test_bad_options_are_refused_with_the_flag_named(options, message):
    with pytest.raises(PlanError, match=message):
        plan(options)


def test_host_nodes_are_tainted_control_plane_nodes_and_member_nodes_are_not():
    host, *members = plan(Options())
    for node in host.nodes:
        assert node.labels[CONTROL_PLANE_ROLE] == ""
        assert node.taints == (CONTROL_PLANE_TAINT,)
        assert node_manifest(node, "v1.36.3")["spec"]["taints"] == [CONTROL_PLANE_TAINT]
    for node in (n for m in members for n in m.nodes):
        assert CONTROL_PLANE_ROLE not in node.labels and node.taints == ()
        assert "taints" not in node_manifest(node, "v1.36.3")["spec"]


def test_component_ports_sit_in_the_hosts_spare_ports_for_any_number_of_members():
    clusters = plan(Options(members=MAX_CLUSTERS - 1, port_base=1024))
    host = clusters[0]
    assert host.ports["cluster-manager-kubelet"] == 1024 + 6
    assert host.ports["cluster-manager-health"] == 1024 + 7
    ports = [p for c in clusters for p in c.ports.values()]
    assert len(ports) == len(set(ports))
    assert max(ports) < 1024 + PORTS_PER_CLUSTER * MAX_CLUSTERS


def _live(node_plan, labels=None, taints=None):
    manifest = node_manifest(node_plan, "v1.36.3")
    if labels is not None:
        manifest["metadata"]["labels"] = labels
    manifest["spec"]["taints"] = taints if taints is not None else manifest["spec"].get("taints")
    return manifest


def test_a_node_matching_the_plan_needs_no_patch_whatever_others_added():
    node = plan(Options())[0].nodes[0]
    others = [{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}]
    live = _live(node, {**node.labels, "team": "x"}, [CONTROL_PLANE_TAINT, *others])
    assert node_drift(node, live) is None


def test_an_old_host_node_gets_the_control_plane_taint_and_label_and_keeps_its_own():
    node = plan(Options())[0].nodes[0]
    old_labels = {k: v for k, v in node.labels.items() if k != CONTROL_PLANE_ROLE}
    others = [{"key": "example.com/dedicated", "value": "x", "effect": "NoSchedule"}]
    patch = node_drift(node, _live(node, old_labels, others))
    assert patch == {
        "metadata": {"labels": {CONTROL_PLANE_ROLE: ""}},
        "spec": {"taints": [*others, CONTROL_PLANE_TAINT]},
    }


def test_a_planned_taint_with_another_value_is_replaced_in_place():
    node = plan(Options())[0].nodes[0]
    wrong = {**CONTROL_PLANE_TAINT, "value": "yes"}
    patch = node_drift(node, _live(node, dict(node.labels), [wrong]))
    assert patch == {"spec": {"taints": [CONTROL_PLANE_TAINT]}}


def test_member_nodes_have_no_taints_to_converge():
    node = plan(Options())[1].nodes[0]
    assert node_drift(node, _live(node, dict(node.labels), [])) is None
