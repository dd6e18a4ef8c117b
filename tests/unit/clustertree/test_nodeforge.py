import copy
import json

import pytest

from kosmos.api import names
from kosmos.api.leafmodel import LeafNode
from kosmos.clustertree.capacity import Free
from kosmos.clustertree.nodeforge import (
    ANNOTATION_MANAGED_LABELS,
    ANNOTATION_MANAGED_TAINTS,
    leaf_node,
    metadata_patch,
    status_patch,
)

T0 = "2026-01-01T00:00:00Z"
T1 = "2026-01-01T00:05:00Z"
LEAF_TAINT = dict(names.TAINT_LEAF)
FREE = Free(
    allocatable={"cpu": "6", "memory": "12Gi", "pods": "200"},
    largest_node={"memory": "8Gi", "cpu": "4", "pods": "100"},
    nodes=2,
)
WHOLE = LeafNode("kosmos-m1", "m1", "whole-cluster", taints=(LEAF_TAINT,))
NODE_INFO_FIELDS = {
    "machineID", "systemUUID", "bootID", "kernelVersion", "osImage", "containerRuntimeVersion",
    "kubeletVersion", "kubeProxyVersion", "operatingSystem", "architecture",
}  # fmt: skip


def member(name, labels=None, taints=None, arch=None):
    obj = {"metadata": {"name": name, "labels": dict(labels or {})}, "spec": {}, "status": {}}
    if taints is not None:
        obj["spec"]["taints"] = taints
    if arch:
        obj["status"]["nodeInfo"] = {"architecture": arch}
    return obj


def forge(leaf=WHOLE, members=(), now=T0, **kwargs):
    kwargs.setdefault("address", "10.0.0.9")
    kwargs.setdefault("port", 10250)
    kwargs.setdefault("kubelet_version", "v1.36.0")
    return leaf_node(leaf, list(members), FREE, now=now, **kwargs)


# --- the Node object ---------------------------------------------------------------------------


def test_whole_cluster_node():
    node = forge(members=[member("a"), member("b")])
    assert node["apiVersion"] == "v1"
    assert node["kind"] == "Node"
    assert node["metadata"]["name"] == "kosmos-m1"
    assert node["metadata"]["labels"] == {
        "kosmos.io/node": "true",
        "kubernetes.io/role": "agent",
        "kubernetes.io/hostname": "kosmos-m1",
        "kubernetes.io/os": "linux",
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/arch": "amd64",
        "kosmos.io/owner-cluster": "m1",
    }
    annotations = node["metadata"]["annotations"]
    assert annotations == {
        "kosmos-io/owned-by-cluster": "m1",
        "kosmos.io/leaf-mode": "whole-cluster",
        "kosmos.io/largest-free-node": '{"cpu":"4","memory":"8Gi","pods":"100"}',
        "node.alpha.kubernetes.io/ttl": "0",
        ANNOTATION_MANAGED_LABELS: ",".join(sorted(node["metadata"]["labels"])),
        ANNOTATION_MANAGED_TAINTS: "kosmos.io/node:NoSchedule",
    }
    assert json.loads(annotations["kosmos.io/largest-free-node"]) == FREE.largest_node
    assert node["spec"] == {"taints": [LEAF_TAINT]}
    status = node["status"]
    assert status["capacity"] == status["allocatable"] == FREE.allocatable
    assert status["capacity"] is not status["allocatable"]
    assert status["addresses"] == [{"type": "InternalIP", "address": "10.0.0.9"}]
    assert status["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 10250}}
    assert status["declaredFeatures"] == ["ExtendWebSocketsToKubelet"]
    info = status["nodeInfo"]
    assert set(info) == NODE_INFO_FIELDS
    assert all(isinstance(v, str) for v in info.values())
    assert info["kubeletVersion"] == "v1.36.0"
    assert info["kubeProxyVersion"] == ""
    assert info["containerRuntimeVersion"] == "kosmos://m1"
    assert (info["operatingSystem"], info["architecture"]) == ("linux", "amd64")


def test_ready_conditions():
    conditions = forge()["status"]["conditions"]
    by_type = {c["type"]: c for c in conditions}
    assert list(by_type) == [
        "Ready", "MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable",
    ]  # fmt: skip
    assert by_type["Ready"]["status"] == "True"
    assert by_type["Ready"]["reason"] == "KubeletReady"
    assert by_type["Ready"]["message"] == "member cluster m1 is reachable"
    assert all(c["status"] == "False" for t, c in by_type.items() if t != "Ready")
    assert all(c["lastHeartbeatTime"] == c["lastTransitionTime"] == T0 for c in conditions)


@pytest.mark.parametrize(
    ("reason", "message", "expected_reason"),
    [
        ("ClusterNotReachable", "dial tcp: refused", "ClusterNotReachable"),
        ("", "", "ClusterNotReady"),
    ],
)
def test_not_ready_condition(reason, message, expected_reason):
    node = forge(ready=False, reason=reason, message=message)
    ready = node["status"]["conditions"][0]
    assert (ready["type"], ready["status"]) == ("Ready", "False")
    assert (ready["reason"], ready["message"]) == (expected_reason, message)


@pytest.mark.parametrize(
    ("members", "expected"),
    [
        ([], "amd64"),
        ([member("a", {"kubernetes.io/arch": "arm64"})], "arm64"),
        ([member("a", arch="arm64"), member("b", {"kubernetes.io/arch": "arm64"})], "arm64"),
        ([member("a", {"kubernetes.io/arch": "arm64"}), member("b", arch="s390x")], "amd64"),
        ([member("a", {"kubernetes.io/arch": "arm64"}), member("b")], "amd64"),
    ],
)
def test_arch(members, expected):
    node = forge(members=members)
    labels = node["metadata"]["labels"]
    assert labels["kubernetes.io/arch"] == labels["beta.kubernetes.io/arch"] == expected
    assert node["status"]["nodeInfo"]["architecture"] == expected


Z, R, IT = names.LABEL_ZONE, names.LABEL_REGION, "node.kubernetes.io/instance-type"


@pytest.mark.parametrize(
    ("member_labels", "expected"),
    [
        ([], {}),
        ([{Z: "z1", R: "r1", IT: "m5"}], {Z: "z1", R: "r1", IT: "m5"}),
        ([{Z: "z1", R: "r", IT: "m5"}, {Z: "z1", R: "r", IT: "m5"}], {Z: "z1", R: "r", IT: "m5"}),
        # several zones: the member cluster is one failure domain named after the leaf
        ([{Z: "z1", R: "r1", IT: "m5"}, {Z: "z2", R: "r1", IT: "c6"}], {Z: "kosmos-m1", R: "r1"}),
        ([{Z: "z1", R: "r1"}, {Z: "z2", R: "r2"}], {Z: "kosmos-m1"}),
        ([{Z: "z1"}, {}], {Z: "kosmos-m1"}),  # partly unlabelled counts as several
        ([{}, {}], {}),
    ],
)  # fmt: skip
def test_topology_and_instance_type(member_labels, expected):
    members = [member(f"n{i}", labels) for i, labels in enumerate(member_labels)]
    labels = forge(members=members)["metadata"]["labels"]
    assert {k: labels[k] for k in (Z, R, IT) if k in labels} == expected


def test_model_labels_win_over_derived_but_not_identity():
    leaf = LeafNode(
        "kosmos-m1",
        "m1",
        "whole-cluster",
        labels={
            Z: "custom-zone",
            "kubernetes.io/hostname": "custom-host",
            "tier": "gold",
            "kosmos.io/node": "false",
            "kubernetes.io/role": "master",
            "kosmos.io/owner-cluster": "other",
        },
        taints=(LEAF_TAINT,),
    )
    labels = forge(leaf, [member("a", {Z: "z1"})])["metadata"]["labels"]
    assert labels[Z] == "custom-zone"
    assert labels["kubernetes.io/hostname"] == "custom-host"
    assert labels["tier"] == "gold"
    assert labels["kosmos.io/node"] == "true"
    assert labels["kubernetes.io/role"] == "agent"
    assert labels["kosmos.io/owner-cluster"] == "m1"


def test_one_to_one_copies_member_labels_and_taints():
    leaf = LeafNode(
        "edge-n1",
        "m1",
        "one-to-one",
        member_node="n1",
        labels={"tier": "gold"},
        taints=({"key": "dedicated", "value": "ml", "effect": "NoSchedule"}, LEAF_TAINT),
    )
    n1 = member(
        "n1",
        {
            "kubernetes.io/hostname": "n1",
            "node-role.kubernetes.io/control-plane": "",
            "node.kubernetes.io/exclude-from-external-load-balancers": "",
            "kubernetes.io/role": "master",
            "disk": "ssd",
            "tier": "silver",
            Z: "z1",
            "kubernetes.io/arch": "arm64",
        },
        taints=[
            {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
            {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute", "timeAdded": T0},
            {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
            {"key": "dedicated", "value": "member-value", "effect": "NoSchedule"},
            {"key": "gpu", "effect": "NoExecute", "timeAdded": T0},
        ],
    )
    node = forge(leaf, [member("other"), n1])
    labels = node["metadata"]["labels"]
    assert labels["disk"] == "ssd"
    assert labels["tier"] == "gold"  # the model wins over the member
    assert labels["kubernetes.io/hostname"] == "edge-n1"
    assert labels["kubernetes.io/role"] == "agent"
    assert labels[Z] == "z1"
    assert labels["kubernetes.io/arch"] == "arm64"
    assert not [k for k in labels if k.startswith(("node-role.", "node.kubernetes.io/exclude"))]
    assert node["spec"]["taints"] == [
        {"key": "dedicated", "value": "ml", "effect": "NoSchedule"},
        LEAF_TAINT,
        {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
        {"key": "gpu", "effect": "NoExecute"},
    ]
    assert node["metadata"]["annotations"]["kosmos.io/leaf-mode"] == "one-to-one"


def test_one_to_one_without_its_member():
    leaf = LeafNode("n1", "m1", "one-to-one", member_node="n1", taints=(LEAF_TAINT,))
    node = forge(leaf, [member("n2", {"disk": "ssd", Z: "z9", "kubernetes.io/arch": "arm64"})])
    labels = node["metadata"]["labels"]
    assert "disk" not in labels
    assert Z not in labels
    assert labels["kubernetes.io/arch"] == "amd64"
    assert node["spec"]["taints"] == [LEAF_TAINT]


def test_group_mode_does_not_copy_member_labels():
    leaf = LeafNode("kosmos-m1-0", "m1", "group", node_selector={}, taints=(LEAF_TAINT,))
    node = forge(
        leaf, [member("a", {"disk": "ssd"}, taints=[{"key": "x", "effect": "NoSchedule"}])]
    )
    assert "disk" not in node["metadata"]["labels"]
    assert node["spec"]["taints"] == [LEAF_TAINT]
    assert node["metadata"]["annotations"]["kosmos.io/leaf-mode"] == "group"


def test_inputs_are_not_mutated():
    leaf = LeafNode("kosmos-m1", "m1", "whole-cluster", labels={"a": "b"}, taints=(LEAF_TAINT,))
    members = [member("a", {Z: "z"})]
    before = copy.deepcopy((leaf, members, FREE))
    node = forge(leaf, members)
    node["metadata"]["labels"]["x"] = "y"
    node["spec"]["taints"][0]["value"] = "mutated"
    node["status"]["allocatable"]["cpu"] = "0"
    assert (leaf, members, FREE) == before


# --- status_patch ------------------------------------------------------------------------------


def live(node):
    """What the apiserver would hand back: same content, re-spelled quantities."""
    stored = copy.deepcopy(node)
    stored["status"]["capacity"]["memory"] = "12884901888"
    stored["status"]["allocatable"]["cpu"] = "6000m"
    stored["status"]["nodeInfo"]["swap"] = {}  # fields others (or defaults) add are left alone
    stored["status"]["images"] = []
    return stored


def test_status_patch_without_current_is_whole_status():
    desired = forge()
    assert status_patch(None, desired) == {"status": desired["status"]}


def test_status_patch_nothing_changed():
    current = live(forge(now=T0))
    assert status_patch(current, forge(now=T1)) is None
    patch = status_patch(current, forge(now=T1), heartbeat=True)
    assert patch is not None
    assert list(patch["status"]) == ["conditions"]
    for cond in patch["status"]["conditions"]:
        assert (cond["lastHeartbeatTime"], cond["lastTransitionTime"]) == (T1, T0)


def test_status_patch_heartbeat_when_already_fresh():
    current = live(forge(now=T1))
    assert status_patch(current, forge(now=T1), heartbeat=True) is None


def test_status_patch_ready_flip_moves_transition_time():
    current = live(forge(now=T0))
    patch = status_patch(current, forge(now=T1, ready=False, reason="ClusterNotReachable"))
    assert patch is not None
    assert list(patch["status"]) == ["conditions"]
    ready, *quiet = patch["status"]["conditions"]
    assert (ready["status"], ready["lastTransitionTime"], ready["lastHeartbeatTime"]) == (
        "False",
        T1,
        T1,
    )
    assert all(
        (c["lastTransitionTime"], c["lastHeartbeatTime"]) == (T0, T0) for c in quiet
    )  # unchanged conditions keep both times


def test_status_patch_reason_change_keeps_transition_time():
    current = live(forge(now=T0, ready=False, reason="A", message="a"))
    patch = status_patch(current, forge(now=T1, ready=False, reason="B", message="b"))
    assert patch is not None
    ready = patch["status"]["conditions"][0]
    assert (ready["reason"], ready["lastTransitionTime"], ready["lastHeartbeatTime"]) == (
        "B",
        T0,
        T1,
    )


def test_status_patch_keeps_conditions_of_others():
    current = live(forge(now=T0))
    extra = {"type": "KernelDeadlock", "status": "False", "lastHeartbeatTime": T0}
    current["status"]["conditions"].append(extra)
    assert status_patch(current, forge(now=T1)) is None
    patch = status_patch(current, forge(now=T1, ready=False))
    assert patch is not None
    assert patch["status"]["conditions"][-1] == extra


def test_status_patch_capacity_change_deletes_stale_resources():
    current = live(forge())
    current["status"]["allocatable"]["nvidia.com/gpu"] = "2"
    current["status"]["capacity"]["nvidia.com/gpu"] = "2"
    desired = forge()
    desired["status"]["allocatable"]["cpu"] = "5"
    patch = status_patch(current, desired)
    assert patch == {
        "status": {
            "capacity": {**FREE.allocatable, "nvidia.com/gpu": None},
            "allocatable": {**FREE.allocatable, "cpu": "5", "nvidia.com/gpu": None},
        }
    }


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda s: s["addresses"][0].update(address="10.0.0.1"), "addresses"),
        (lambda s: s["daemonEndpoints"]["kubeletEndpoint"].update(Port=1), "daemonEndpoints"),
        (lambda s: s["nodeInfo"].update(kubeletVersion="v1.35.0"), "nodeInfo"),
        (lambda s: s.pop("declaredFeatures"), "declaredFeatures"),
        (lambda s: s["capacity"].pop("pods"), "capacity"),
        (lambda s: s["capacity"].update(pods="garbage"), "capacity"),
    ],
)
def test_status_patch_other_fields(change, key):
    current = live(forge())
    change(current["status"])
    patch = status_patch(current, forge(now=T1))
    assert patch is not None
    assert list(patch["status"]) == [key]


# --- metadata_patch ----------------------------------------------------------------------------


def test_metadata_patch_without_current():
    desired = forge()
    assert metadata_patch(None, desired) == {
        "metadata": {
            "labels": desired["metadata"]["labels"],
            "annotations": desired["metadata"]["annotations"],
        },
        "spec": {"taints": [LEAF_TAINT]},
    }


def test_metadata_patch_nothing_changed():
    current = forge()
    current["metadata"]["labels"]["team"] = "user-added"
    current["metadata"]["annotations"]["note"] = "user-added"
    current["spec"]["taints"].insert(
        0, {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute", "timeAdded": T0}
    )
    assert metadata_patch(current, forge()) is None


def test_metadata_patch_labels():
    old_leaf = LeafNode("kosmos-m1", "m1", "whole-cluster", labels={"old": "1", "keep": "1"})
    new_leaf = LeafNode("kosmos-m1", "m1", "whole-cluster", labels={"keep": "2", "new": "3"})
    current = forge(old_leaf, [member("a", {Z: "z1"})])
    current["metadata"]["labels"]["team"] = "user-added"
    desired = forge(new_leaf, [member("a", {Z: "z1"}), member("b", {Z: "z2"})])
    patch = metadata_patch(current, desired)
    assert patch is not None
    assert patch["metadata"]["labels"] == {"keep": "2", "new": "3", "old": None, Z: "kosmos-m1"}
    assert patch["metadata"]["annotations"] == {
        ANNOTATION_MANAGED_LABELS: desired["metadata"]["annotations"][ANNOTATION_MANAGED_LABELS]
    }
    assert "spec" not in patch


def test_metadata_patch_label_gone_by_hand_is_not_deleted_again():
    leaf = LeafNode("kosmos-m1", "m1", "whole-cluster", labels={"old": "1"})
    current = forge(leaf)
    del current["metadata"]["labels"]["old"]
    patch = metadata_patch(current, forge())
    assert patch is not None
    assert "labels" not in patch["metadata"]


def test_metadata_patch_unmanaged_node_keeps_unknown_labels():
    current = forge()
    del current["metadata"]["annotations"][ANNOTATION_MANAGED_LABELS]
    current["metadata"]["labels"]["leftover"] = "x"
    patch = metadata_patch(current, forge())
    assert patch == {
        "metadata": {
            "annotations": {
                ANNOTATION_MANAGED_LABELS: forge()["metadata"]["annotations"][
                    ANNOTATION_MANAGED_LABELS
                ]
            }
        }
    }


def test_metadata_patch_taints():
    ours = {"key": "dedicated", "value": "ml", "effect": "NoSchedule"}
    lifecycle = {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute", "timeAdded": T0}
    user = {"key": "maintenance", "effect": "NoSchedule"}
    old_leaf = LeafNode("kosmos-m1", "m1", "whole-cluster", taints=(ours, LEAF_TAINT))
    current = forge(old_leaf)
    current["spec"]["taints"] += [lifecycle, user]
    # the leaf taint was edited by hand: ours is restored
    current["spec"]["taints"][1] = {**LEAF_TAINT, "value": "false"}
    patch = metadata_patch(current, forge())
    assert patch is not None
    assert patch["spec"] == {"taints": [LEAF_TAINT, lifecycle, user]}
    assert patch["metadata"]["annotations"] == {
        ANNOTATION_MANAGED_TAINTS: "kosmos.io/node:NoSchedule"
    }


def test_metadata_patch_taint_order_and_time_added_do_not_matter():
    leaf = LeafNode(
        "kosmos-m1", "m1", "whole-cluster", taints=({"key": "a", "effect": "NoExecute"}, LEAF_TAINT)
    )
    current = forge(leaf)
    current["spec"]["taints"] = [
        LEAF_TAINT,
        {"key": "a", "effect": "NoExecute", "timeAdded": T0},
    ]
    assert metadata_patch(current, forge(leaf)) is None


def test_the_ttl_controllers_annotation_is_set_once_not_fought_over() -> None:
    desired = {"metadata": {"annotations": {"node.alpha.kubernetes.io/ttl": "0"}}}
    current = {"metadata": {"annotations": {"node.alpha.kubernetes.io/ttl": "60"}}}
    assert metadata_patch(current, desired) is None
    patch = metadata_patch({"metadata": {}}, desired)
    assert patch == {"metadata": {"annotations": {"node.alpha.kubernetes.io/ttl": "0"}}}
