"""The floater objects, and deploy / wait / clean against an in-memory cluster."""

from __future__ import annotations

from typing import Any

import pytest

from kosmos.api import names
from kosmos.api.resources import DAEMONSETS, EVENTS, NAMESPACES, PODS, SERVICEACCOUNTS
from kosmos.ops.errors import OperationError
from kosmos.ops.netdoctor import floater

from .fakes import FakeCluster

IMAGE = "docker.io/kosmos/kosmos:v0.1.0"


def test_the_floater_runs_on_every_real_node_with_no_api_access():
    ds = floater.daemonset(names.FLOATER, "kosmos-system", IMAGE, 8889)
    meta, pod = ds["metadata"], ds["spec"]["template"]["spec"]
    assert meta["labels"] == {
        "app.kubernetes.io/name": "kosmos-floater",
        "app.kubernetes.io/managed-by": "kosmosctl-netdoctor",
    }
    assert ds["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": "kosmos-floater"}
    assert ds["spec"]["template"]["metadata"]["labels"] == meta["labels"]
    (container,) = pod["containers"]
    assert container["name"] == "floater" and container["args"] == ["floater"]
    assert container["image"] == IMAGE and container["imagePullPolicy"] == "IfNotPresent"
    assert container["env"][0] == {"name": "PORT", "value": "8889"}
    assert container["env"][1]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    assert container["readinessProbe"]["tcpSocket"] == {"port": 8889}
    assert {p["protocol"] for p in container["ports"]} == {"TCP", "UDP"}
    assert pod["tolerations"] == [{"operator": "Exists"}]
    assert pod["automountServiceAccountToken"] is False and "hostNetwork" not in pod
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"][0]["matchExpressions"] == [
        {"key": "kosmos.io/node", "operator": "DoesNotExist"},
        {"key": "kosmos.io/exclude", "operator": "NotIn", "values": ["true"]},
        {"key": "kwok.x-k8s.io/node", "operator": "DoesNotExist"},
    ]
    host = floater.daemonset(names.FLOATER_HOST, "ns", IMAGE, 9000)["spec"]["template"]["spec"]
    assert host["hostNetwork"] is True and host["dnsPolicy"] == "ClusterFirstWithHostNet"
    account = floater.service_account("ns")
    assert account["automountServiceAccountToken"] is False
    assert account["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "kosmosctl-netdoctor"


def _pod(name: str, node: str, ready: bool = True, waiting: dict[str, str] | None = None) -> Any:
    status: Any = {
        "phase": "Running" if ready else "Pending",
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        "podIPs": [{"ip": "10.244.0.9"}],
    }
    if waiting:
        status["containerStatuses"] = [{"name": "floater", "state": {"waiting": waiting}}]
    return {
        "metadata": {"name": name, "namespace": "ns", "labels": floater.labels(names.FLOATER)},
        "spec": {"nodeName": node},
        "status": status,
    }


def _status(cluster: FakeCluster, desired: int, ready: int) -> None:
    ds = cluster.find(DAEMONSETS, names.FLOATER, "ns")
    assert ds is not None
    ds["status"] = {
        "observedGeneration": 1,
        "desiredNumberScheduled": desired,
        "updatedNumberScheduled": desired,
        "numberReady": ready,
    }


async def _deployed() -> tuple[FakeCluster, list[str]]:
    cluster, lines = FakeCluster(), []
    await floater.deploy(cluster, "ns", IMAGE, 8889, sets=[names.FLOATER], log=lines.append)
    return cluster, lines


async def test_deploy_creates_a_labelled_namespace_and_is_rerunnable():
    cluster, lines = await _deployed()
    ns = cluster.find(NAMESPACES, "ns")
    assert ns is not None and ns["metadata"]["labels"] == {
        names.LABEL_MANAGED_BY: names.NETDOCTOR_MANAGED_BY
    }
    assert cluster.find(SERVICEACCOUNTS, names.FLOATER, "ns") is not None
    assert "src cluster: namespace ns created" in lines
    await floater.deploy(cluster, "ns", IMAGE, 8889, sets=[names.FLOATER], log=lines.append)
    assert "src cluster: namespace ns exists" in lines


async def test_wait_returns_the_ready_pods_and_logs_each_once():
    cluster, lines = await _deployed()
    _status(cluster, 2, 2)
    cluster.put(PODS, _pod("f-1", "n1"))
    cluster.put(PODS, _pod("f-2", "n2"))
    ready = await floater.wait_ready(cluster, "ns", [names.FLOATER], 5, lines.append)
    assert [p["metadata"]["name"] for p in ready[names.FLOATER]] == ["f-1", "f-2"]
    assert lines.count("src cluster: pod f-1 on n1 is ready") == 1


async def test_no_node_for_a_floater_fails_at_once():
    cluster, lines = await _deployed()
    _status(cluster, 0, 0)
    with pytest.raises(floater.FloaterNotReady, match="no node can run a floater"):
        await floater.wait_ready(cluster, "ns", [names.FLOATER], 30, lines.append)


async def test_an_image_that_cannot_be_pulled_names_the_pod_node_and_reason():
    cluster, lines = await _deployed()
    _status(cluster, 2, 1)
    cluster.put(PODS, _pod("f-1", "n1"))
    waiting = {"reason": "ErrImagePull", "message": "pull access denied"}
    cluster.put(PODS, _pod("f-2", "n2", ready=False, waiting=waiting))
    with pytest.raises(floater.FloaterNotReady) as caught:
        await floater.wait_ready(cluster, "ns", [names.FLOATER], 30, lines.append)
    assert str(caught.value) == (
        "src cluster: pod ns/f-2 on n2: container floater ErrImagePull: pull access denied"
    )


async def test_the_deadline_names_each_pod_never_ready():
    cluster, lines = await _deployed()
    _status(cluster, 2, 1)
    cluster.put(PODS, _pod("f-1", "n1"))
    pending = _pod("f-2", "n2", ready=False)
    pending["status"]["conditions"].append(
        {"type": "PodScheduled", "status": "False", "message": "0/3 nodes: Insufficient cpu"}
    )
    cluster.put(PODS, pending)
    with pytest.raises(floater.FloaterNotReady) as caught:
        await floater.wait_ready(cluster, "ns", [names.FLOATER], 0.1, lines.append)
    assert str(caught.value) == (
        "floaters not ready after 0.1 s (podWaitTime): src cluster: pod ns/f-2 on n2: "
        "unschedulable: 0/3 nodes: Insufficient cpu"
    )


async def test_the_deadline_without_pods_says_why_none_was_created():
    cluster, lines = await _deployed()
    _status(cluster, 1, 0)
    event = {
        "metadata": {"name": "e", "namespace": "ns"},
        "involvedObject": {"kind": "DaemonSet", "name": names.FLOATER},
        "reason": "FailedCreate",
        "message": "pods is forbidden: exceeded quota",
    }
    cluster.put(EVENTS, event)
    with pytest.raises(floater.FloaterNotReady, match="FailedCreate: pods is forbidden"):
        await floater.wait_ready(cluster, "ns", [names.FLOATER], 0.1, lines.append)


async def test_clean_deletes_a_namespace_netdoctor_made_and_is_idempotent():
    cluster, lines = await _deployed()
    await floater.clean(cluster, "ns", lines.append, timeout=1)
    assert cluster.objects == {}
    await floater.clean(cluster, "ns", lines.append, timeout=1)
    assert lines[-1] == "src cluster: namespace ns not found, nothing to clean"


async def test_clean_keeps_a_namespace_it_found():
    cluster = FakeCluster()
    cluster.put(NAMESPACES, {"metadata": {"name": "kosmos-system"}})
    lines: list[str] = []
    await floater.deploy(
        cluster, "kosmos-system", IMAGE, 8889, sets=[names.FLOATER], log=lines.append
    )
    assert "src cluster: namespace kosmos-system exists" in lines
    await floater.clean(cluster, "kosmos-system", lines.append, timeout=1)
    assert [k[0] for k in cluster.objects] == [str(NAMESPACES)]
    assert "src cluster: DaemonSet kosmos-floater deleted" in lines


async def test_clean_reports_what_did_not_go():
    cluster = FakeCluster()
    cluster.put(NAMESPACES, {"metadata": {"name": "ns"}})
    stuck = _pod("f-1", "n1")
    cluster.put(PODS, stuck)
    with pytest.raises(OperationError, match="still present after 0.1 s: pod ns/f-1"):
        await floater.clean(cluster, "ns", [].append, timeout=0.1)
