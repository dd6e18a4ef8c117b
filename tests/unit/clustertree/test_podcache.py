"""What a cached pod costs: a typical Deployment pod as the apiserver returns it, Running."""

import copy
import gc
import tracemalloc

import orjson

from kosmos.clustertree.placement import Placement
from kosmos.clustertree.podcache import pod_transform
from kosmos.clustertree.podforge import HostContext, dependencies, member_pod
from kosmos.clustertree.tree import by_node, pod_dependency_keys
from kosmos.kube.compact import Sharer
from kosmos.kube.informer import strip_bulk
from kosmos.kube.store import Store

#: bytes per cached pod after the transform (the informer before it held ~15.4 KB for this pod)
BUDGET = 5000


def typical_pod(i: int, node: str = "kosmos-cluster1") -> dict:
    """One replica of a Deployment (labels, env, ports, requests, the ServiceAccount
    admission's token volume with its random name), Running, as `kubectl get -o json`."""
    token = f"kube-api-access-{i:05x}"
    second = f"2026-12-07T10:{i // 60 % 60:02d}:{i % 60:02d}Z"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "annotations": {"kosmos.io/bench": "true"},
            "creationTimestamp": second,
            "generateName": "web-6548fb5f6d-",
            "generation": 1,
            "labels": {"app": "web", "pod-template-hash": "6548fb5f6d", "release": "v1"},
            "name": f"web-6548fb5f6d-{i:05x}",
            "namespace": "cm",
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "blockOwnerDeletion": True,
                    "controller": True,
                    "kind": "ReplicaSet",
                    "name": "web-6548fb5f6d",
                    "uid": "086a6c3c-b6a2-4bf4-8bf6-8f06f5357918",
                }
            ],
            "resourceVersion": str(1000 + i),
            "uid": f"588000c4-4891-41c6-a085-{i:012x}",
            "managedFields": [{"manager": "kube-controller-manager", "operation": "Update"}],
        },
        "spec": {
            "containers": [
                {
                    "env": [{"name": f"VAR_{n}", "value": f"value-{n}"} for n in range(5)],
                    "image": "registry.example/bench/app:1.0",
                    "imagePullPolicy": "IfNotPresent",
                    "name": "app",
                    "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                    "volumeMounts": [
                        {
                            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                            "name": token,
                            "readOnly": True,
                        }
                    ],
                }
            ],
            "dnsPolicy": "ClusterFirst",
            "enableServiceLinks": True,
            "nodeName": node,
            "preemptionPolicy": "PreemptLowerPriority",
            "priority": 0,
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "securityContext": {},
            "serviceAccount": "default",
            "serviceAccountName": "default",
            "terminationGracePeriodSeconds": 30,
            "tolerations": [
                {"key": "kosmos.io/node", "operator": "Exists"},
                {
                    "effect": "NoExecute",
                    "key": "node.kubernetes.io/unreachable",
                    "operator": "Exists",
                    "tolerationSeconds": 300,
                },
                {
                    "effect": "NoExecute",
                    "key": "node.kubernetes.io/not-ready",
                    "operator": "Exists",
                    "tolerationSeconds": 300,
                },
            ],
            "volumes": [
                {
                    "name": token,
                    "projected": {
                        "defaultMode": 420,
                        "sources": [
                            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                            {
                                "configMap": {
                                    "items": [{"key": "ca.crt", "path": "ca.crt"}],
                                    "name": "kube-root-ca.crt",
                                }
                            },
                            {
                                "downwardAPI": {
                                    "items": [
                                        {
                                            "fieldRef": {
                                                "apiVersion": "v1",
                                                "fieldPath": "metadata.namespace",
                                            },
                                            "path": "namespace",
                                        }
                                    ]
                                }
                            },
                        ],
                    },
                }
            ],
        },
        "status": {
            "conditions": [
                {"lastProbeTime": None, "lastTransitionTime": second, "status": "True", "type": t}
                for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")
            ],
            "containerStatuses": [
                {
                    "image": "registry.example/bench/app:1.0",
                    "imageID": "",
                    "lastState": {},
                    "name": "app",
                    "ready": True,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": second}},
                }
            ],
            "hostIP": "127.0.0.1",
            "hostIPs": [{"ip": "127.0.0.1"}],
            "phase": "Running",
            "podIP": f"10.11.{i // 250}.{i % 250 + 2}",
            "podIPs": [{"ip": f"10.11.{i // 250}.{i % 250 + 2}"}],
            "qosClass": "Burstable",
            "startTime": second,
        },
    }


def cached_bytes_per_pod(transform, count: int = 300) -> float:
    """As the host pod informer holds them: decoded one by one, transformed, indexed."""
    payloads = [orjson.dumps(typical_pod(i)) for i in range(count)]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        store = Store({"node": by_node, "deps": pod_dependency_keys})
        for payload in payloads:
            store.upsert(transform(orjson.loads(payload)))
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(store) == count
    return held / count


def test_a_typical_pod_costs_at_most_the_budget() -> None:
    before = cached_bytes_per_pod(strip_bulk)
    after = cached_bytes_per_pod(pod_transform(Sharer()))
    assert after <= BUDGET, f"{after:.0f} bytes per pod (strip_bulk alone: {before:.0f})"
    assert after < before / 2


def test_the_transform_changes_nothing_the_controllers_compute() -> None:
    transform = pod_transform(Sharer())
    placement = Placement(cluster="cluster1", host_node="kosmos-cluster1")
    for i in range(3):
        original = typical_pod(i)
        cached = transform(orjson.loads(orjson.dumps(original)))
        assert member_pod(cached, placement, HostContext()) == member_pod(
            original, placement, HostContext()
        )
        assert dependencies(cached) == dependencies(original)
        want = copy.deepcopy(original)
        del want["metadata"]["managedFields"]
        del want["spec"]["volumes"], want["spec"]["containers"][0]["volumeMounts"]
        assert cached == want  # only the bulk and the token volume went
