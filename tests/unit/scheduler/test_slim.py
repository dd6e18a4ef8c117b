from kosmos.scheduler.slim import slim_pod, slim_workload


def test_slim_pod_keeps_what_decisions_read():
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "p",
            "namespace": "ns",
            "uid": "u",
            "resourceVersion": "7",
            "labels": {"app": "x"},
            "annotations": {
                "controller.kubernetes.io/pod-deletion-cost": "-1",
                "kosmos.io/host-pod-uid": "h",
                "big": "x" * 1000,
            },
            "ownerReferences": [{"kind": "ReplicaSet", "uid": "rs", "controller": True}],
            "managedFields": [{}],
        },
        "spec": {
            "nodeName": "n",
            "schedulerName": "kosmos-scheduler",
            "containers": [{"name": "c", "image": "i", "env": [{}], "resources": {"a": 1}}],
            "initContainers": [{"name": "i", "restartPolicy": "Always", "resources": {}}],
            "volumes": [
                {"name": "d", "persistentVolumeClaim": {"claimName": "d"}},
                {"name": "e", "ephemeral": {"volumeClaimTemplate": {}}},
                {"name": "cfg", "configMap": {"name": "c"}},
            ],
            "affinity": {"big": True},
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready"}, {"type": "PodScheduled", "status": "True"}],
            "containerStatuses": [{}],
        },
    }
    slim = slim_pod(pod)
    assert slim["metadata"]["annotations"] == {
        "controller.kubernetes.io/pod-deletion-cost": "-1",
        "kosmos.io/host-pod-uid": "h",
    }
    assert "managedFields" not in slim["metadata"]
    assert slim["spec"]["containers"] == [{"name": "c", "resources": {"a": 1}}]
    assert slim["spec"]["initContainers"] == [
        {"name": "i", "resources": {}, "restartPolicy": "Always"}
    ]
    assert [v["name"] for v in slim["spec"]["volumes"]] == ["d", "e"]
    assert "affinity" not in slim["spec"]
    assert slim["status"] == {
        "phase": "Running",
        "conditions": [{"type": "PodScheduled", "status": "True"}],
    }


def test_slim_workload():
    rs = {"kind": "ReplicaSet", "metadata": {"name": "r", "uid": "u"}, "spec": {"replicas": 3}}
    assert slim_workload(rs)["spec"] == {"replicas": 3}
