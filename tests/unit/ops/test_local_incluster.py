"""Kosmos in-cluster on the local environment: placement, addresses, the status rows."""

from __future__ import annotations

from typing import Any

from kosmos.local.topology import Options, plan
from kosmos.ops import local_incluster, manifests


def test_every_kosmos_pod_selects_the_real_nodes():
    options = local_incluster.options()
    pods = [
        body["spec"]["template"]["spec"]
        for resource, body in manifests.install_objects(options)
        if resource.kind == "Deployment"
    ]
    assert pods and all(p["nodeSelector"] == {"local.kosmos.io/real-node": "true"} for p in pods)
    assert options.image == "docker.io/kosmos/kosmos:" + options.version
    assert options.cni == "flannel"


def test_pods_reach_the_apiservers_at_their_relay_address():
    host, member = plan(Options(port_base=18200, real_nodes=1))[:2]
    assert local_incluster.relay_server(host) == "https://10.207.28.1:18200"
    assert local_incluster.relay_server(member) == "https://10.207.29.1:18210"


def test_status_rows_count_the_sidecar_and_name_both_images():
    pod: Any = {
        "metadata": {"name": "kosmos-scheduler-x", "namespace": "kosmos-system"},
        "spec": {
            "nodeName": "host-real1",
            "initContainers": [{"name": "ext", "image": "k:v1", "restartPolicy": "Always"}],
            "containers": [{"name": "sched", "image": "s:v1"}],
        },
        "status": {
            "initContainerStatuses": [{"name": "ext", "ready": True, "restartCount": 1}],
            "containerStatuses": [{"name": "sched", "ready": False, "restartCount": 2}],
        },
    }
    assert local_incluster.pod_rows("host", [pod]) == [
        ["host", "kosmos-system/kosmos-scheduler-x", "host-real1", "k:v1,s:v1", "1/2", "3"]
    ]


def test_the_image_digest_annotates_every_kosmos_pod_template():
    options = local_incluster.options("abc123")
    templates = [
        body["spec"]["template"]["metadata"]
        for resource, body in manifests.install_objects(options)
        if resource.kind == "Deployment"
    ]
    assert len(templates) == 5  # cluster-manager, network-manager, eps-probe, scheduler, coredns
    assert all(t["annotations"] == {"local.kosmos.io/kosmos-image": "abc123"} for t in templates)
    assert all(
        "annotations" not in body["spec"]["template"]["metadata"]
        for resource, body in manifests.install_objects(local_incluster.options())
        if resource.kind == "Deployment"
    )
