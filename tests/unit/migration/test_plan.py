"""The migration's pure rules: namespaces, precheck, orders, member -> host objects."""

from __future__ import annotations

from typing import Any

from kosmos.api import names
from kosmos.migration import plan

POLICY = "default/promote"


def facts(**overrides: Any) -> plan.Facts:
    values: dict[str, Any] = {
        "cluster_known": True,
        "leaf_nodes": ["kosmos-cluster1"],
        "member_namespaces": frozenset({"nginx-test", "kube-system", "other"}),
        "host_namespaces": frozenset({"default", "kube-system"}),
        "member_version": "v1.36.3",
        "host_version": "v1.36.3",
        "member_counts": {"pods": 1, "deployments.apps": 1},
        "host_resources": frozenset({"pods", "deployments.apps"}),
    }
    values.update(overrides)
    return plan.Facts(**values)


def spec(**overrides: Any) -> dict[str, Any]:
    return {"clusterName": "cluster1", "includedNamespaces": ["nginx-test"], **overrides}


def test_star_means_every_namespace_but_the_clusters_own_minus_excludes():
    members = ["kube-system", "a", "b", "kosmos-system", "kube-public"]
    got = plan.namespaces({"includedNamespaces": ["*"], "excludedNamespaces": ["b"]}, members)
    assert got == ["a"]


def test_a_good_policy_passes_precheck():
    assert plan.precheck(spec(), ["nginx-test"], facts()) == []


def test_unknown_cluster_is_the_only_error_reported():
    errors = plan.precheck(spec(), ["nginx-test"], facts(cluster_known=False))
    assert errors == ["cluster 'cluster1' is not joined (no Cluster of that name)"]


def test_pods_cannot_be_excluded_in_either_spelling():
    for excluded in (["pods"], ["events", "pods"]):
        errors = plan.precheck(
            spec(excludedNamespaceScopedResources=excluded), ["nginx-test"], facts()
        )
        assert any(e.startswith("pods cannot be excluded") for e in errors)


def test_namespace_checks():
    errors = plan.precheck(
        spec(),
        ["kube-system", "gone", "default"],
        facts(member_namespaces=frozenset({"kube-system", "default"})),
    )
    assert "namespace kube-system cannot be migrated (the cluster's own)" in errors
    assert "namespace gone does not exist in cluster cluster1" in errors
    assert "namespace default already exists in the host" in errors


def test_daemonsets_and_unserved_resources_cannot_be_carried():
    counts = {"daemonsets.apps": 2, "widgets.example.com": 1, "pods": 3}
    errors = plan.precheck(spec(), ["nginx-test"], facts(member_counts=counts))
    assert "2 daemonsets.apps: DaemonSets run a pod on every member node" in errors
    assert "1 widgets.example.com: the host does not serve this resource" in errors


def test_an_earlier_policy_on_the_same_namespace_wins():
    earlier = [
        ("default/first", "cluster1", ["nginx-test"]),
        ("default/x", "cluster2", ["nginx-test"]),
    ]
    errors = plan.precheck(spec(), ["nginx-test"], facts(earlier=earlier))
    assert errors == ["PromotePolicy default/first already migrates nginx-test"]


def test_versions_must_agree():
    errors = plan.precheck(spec(), ["nginx-test"], facts(member_version="v1.35.0"))
    assert errors and "versions differ" in errors[0]


def test_included_and_excluded_resources():
    s = {"excludedNamespaceScopedResources": ["events", "endpointslices.discovery.k8s.io"]}
    assert plan.included("pods", s)
    assert not plan.included("events", s)
    assert not plan.included("endpointslices.discovery.k8s.io", s)
    assert plan.included("events.events.k8s.io", s)  # a bare plural names the core group
    assert not plan.included("configmaps", {"includedNamespaceScopedResources": ["pods"]})


def test_rebuild_order_is_bottom_up():
    items = [
        ("services", {"metadata": {"name": "s", "namespace": "n"}}),
        ("deployments.apps", {"metadata": {"name": "d", "namespace": "n"}}),
        ("pods", {"metadata": {"name": "p", "namespace": "n"}}),
        ("replicasets.apps", {"metadata": {"name": "r", "namespace": "n"}}),
        ("configmaps", {"metadata": {"name": "c", "namespace": "n"}}),
        ("widgets.example.com", {"metadata": {"name": "w", "namespace": "n"}}),
    ]
    order = [[r for r, _ in stage] for stage in plan.rebuild_order(items)]
    assert order == [
        ["configmaps"],
        ["pods"],
        ["replicasets.apps"],
        ["deployments.apps"],
        ["services"],
        ["widgets.example.com"],
    ]


def member_pod() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "nginx-abc",
            "namespace": "nginx-test",
            "uid": "u-1",
            "resourceVersion": "9",
            "creationTimestamp": "2026-12-07T00:00:00Z",
            "labels": {"app": "nginx", "pod-template-hash": "abc"},
            "ownerReferences": [{"kind": "ReplicaSet", "name": "nginx-abc", "uid": "r"}],
            "managedFields": [{}],
        },
        "spec": {"nodeName": "member-node", "priority": 0, "containers": [{"name": "c"}]},
        "status": {"phase": "Running"},
    }


def test_host_pod_is_bound_to_the_leaf_and_names_the_member_pod():
    pod = plan.host_pod(member_pod(), "kosmos-cluster1", POLICY)
    meta = pod["metadata"]
    assert set(meta) == {"name", "namespace", "labels", "annotations"}
    assert meta["labels"] == {"app": "nginx", "pod-template-hash": "abc"}
    assert meta["annotations"] == {
        names.ANNOTATION_PROMOTE_POLICY: POLICY,
        names.ANNOTATION_MEMBER_POD_UID: "u-1",
    }
    assert pod["spec"] == {"nodeName": "kosmos-cluster1", "containers": [{"name": "c"}]}
    assert "status" not in pod


def test_services_get_their_own_addresses_in_the_host_but_headless_stays():
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s", "namespace": "n"},
        "spec": {
            "clusterIP": "10.1.0.5",
            "clusterIPs": ["10.1.0.5"],
            "ipFamilies": ["IPv4"],
            "type": "NodePort",
            "ports": [{"port": 80, "nodePort": 30080}],
        },
    }
    out = plan.host_object("services", svc, POLICY)["spec"]
    assert out == {"type": "NodePort", "ports": [{"port": 80}]}
    svc["spec"] = {"clusterIP": "None", "clusterIPs": ["None"]}
    assert plan.host_object("services", svc, POLICY)["spec"]["clusterIP"] == "None"


def test_jobs_keep_their_selector_and_volumes_lose_the_claim_uid():
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "j", "namespace": "n"},
        "spec": {"selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "x"}}},
    }
    assert plan.host_object("jobs.batch", job, POLICY)["spec"]["manualSelector"] is True
    assert plan.member_object("jobs.batch", job, POLICY)["spec"]["manualSelector"] is True
    pv = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": "pv"},
        "spec": {"claimRef": {"name": "c", "namespace": "n", "uid": "u", "resourceVersion": "1"}},
    }
    ref = plan.host_object("persistentvolumes", pv, POLICY)["spec"]["claimRef"]
    assert ref == {"name": "c", "namespace": "n"}


def test_member_owners_are_restored_without_our_marks_or_old_owners():
    rs = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "r", "namespace": "n", "uid": "x", "ownerReferences": [{"uid": "d"}]},
    }
    out = plan.member_object("replicasets.apps", rs, POLICY)
    assert out["metadata"] == {"name": "r", "namespace": "n"}


def test_leaf_for_prefers_the_one_to_one_leaf_of_the_pods_node():
    leaves = [
        {"metadata": {"name": "kosmos-cluster1", "labels": {}}},
        {"metadata": {"name": "leaf-b", "labels": {names.LABEL_HOSTNAME: "member-node"}}},
    ]
    assert plan.leaf_for(member_pod(), leaves) == "leaf-b"
    assert plan.leaf_for(member_pod(), leaves[:1]) == "kosmos-cluster1"


def test_adopted_needs_the_label_and_this_host_pods_uid():
    pod = member_pod()
    assert not plan.adopted(pod, "h")
    pod["metadata"]["labels"][names.LABEL_POD] = "true"
    pod["metadata"]["annotations"] = {names.ANNOTATION_HOST_POD_UID: "h"}
    assert plan.adopted(pod, "h") and not plan.adopted(pod, "other")


def test_a_cluster_manager_without_migration_rights_is_told_how_to_get_them():
    errors = plan.precheck(spec(), ["nginx-test"], facts(host_writable=False))
    assert errors == [
        "the cluster-manager may not create objects in the host: install Kosmos with "
        "--enable-migration"
    ]


def test_new_pods_go_to_the_whole_cluster_leaf_else_the_first():
    leaves = [{"metadata": {"name": n}} for n in ("z-leaf", "kosmos-cluster1", "a-leaf")]
    assert plan.default_leaf("cluster1", leaves) == "kosmos-cluster1"
    assert plan.default_leaf("cluster1", leaves[::2]) == "a-leaf"


def test_a_claim_loses_its_old_binding_marks_so_it_binds_to_its_volume_again():
    pvc = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": "data",
            "namespace": "n",
            "annotations": {
                "pv.kubernetes.io/bind-completed": "yes",
                "pv.kubernetes.io/bound-by-controller": "yes",
            },
        },
        "spec": {"volumeName": "pv-1"},
    }
    out = plan.host_object("persistentvolumeclaims", pvc, POLICY)
    assert out["metadata"]["annotations"] == {names.ANNOTATION_PROMOTE_POLICY: POLICY}
    assert out["spec"] == {"volumeName": "pv-1"}


def test_owners_are_the_built_in_controllers_top_down():
    def obj(api_version: str, kind: str, name: str) -> dict[str, Any]:
        return {"apiVersion": api_version, "kind": kind, "metadata": {"name": name}}

    items = [
        obj("apps/v1", "ReplicaSet", "r"),
        obj("v1", "Pod", "p"),
        obj("apps/v1", "Deployment", "d"),
        obj("batch/v1", "CronJob", "c"),
        obj("v1", "ReplicationController", "rc"),
        obj("example.com/v1", "Deployment", "not-apps"),
    ]
    got = [(r, o["metadata"]["name"]) for r, o in plan.owners(items)]
    assert got == [
        ("cronjobs.batch", "c"),
        ("deployments.apps", "d"),
        ("replicasets.apps", "r"),
        ("replicationcontrollers", "rc"),
    ]
