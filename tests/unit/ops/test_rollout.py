"""Why Kosmos's pods do not run: the reasons a rollout wait reports (pure parts)."""

from __future__ import annotations

from typing import Any

from kosmos.ops import rollout


def _pod(waiting: dict[str, str] | None = None, ready: bool = False, init: bool = False) -> Any:
    state = {"waiting": waiting} if waiting else {"running": {}}
    key = "initContainerStatuses" if init else "containerStatuses"
    return {
        "metadata": {"name": "p", "namespace": "kosmos-system"},
        "status": {
            "phase": "Running" if ready else "Pending",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            key: [{"name": "c", "state": state}],
        },
    }


def test_an_image_that_cannot_be_pulled_is_stuck_with_the_kubelets_message():
    pod = _pod({"reason": "ErrImageNeverPull", "message": 'image "x" is not present'})
    assert rollout.stuck(pod) == ("c", 'ErrImageNeverPull: image "x" is not present')
    assert rollout.stuck(_pod({"reason": "ImagePullBackOff"}, init=True)) == (
        "c",
        "ImagePullBackOff",
    )


def test_a_starting_container_is_pending_not_stuck():
    pod = _pod({"reason": "ContainerCreating"})
    assert rollout.stuck(pod) is None
    assert rollout.pod_pending(pod) == "c ContainerCreating"
    assert rollout.pod_pending(_pod(ready=True)) == ""
    running: Any = _pod()
    running["status"]["phase"] = "Running"
    assert rollout.pod_pending(running) == "Running, not Ready"  # e.g. its caches never sync


def test_daemonset_is_ready_when_every_scheduled_pod_is():
    ds: Any = {"metadata": {"generation": 2}, "status": {"observedGeneration": 2}}
    ds["status"].update(desiredNumberScheduled=3, updatedNumberScheduled=3, numberReady=2)
    assert rollout.daemonset_unready(ds) == "2/3 ready"
    ds["status"]["numberReady"] = 3
    assert rollout.daemonset_unready(ds) == ""
    ds["metadata"]["generation"] = 3
    assert rollout.daemonset_unready(ds) == "rollout not observed yet"


def test_the_selector_is_the_workloads_match_labels():
    body = {"spec": {"selector": {"matchLabels": {"b": "2", "a": "1"}}}}
    assert rollout.selector_of(body) == "a=1,b=2"


def _event(kind: str, name: str, message: str, at: str) -> Any:
    return {
        "involvedObject": {"kind": kind, "name": name},
        "reason": "FailedCreate",
        "message": message,
        "lastTimestamp": at,
    }


def test_failed_creates_name_why_no_pod_exists():
    events = [
        _event("DaemonSet", "kosmos-agent", 'pods "x" is forbidden: violates PodSecurity', "2"),
        _event("DaemonSet", "other", "nope", "1"),
        _event("ReplicaSet", "kosmos-cluster-manager-6f757f794", "exceeded quota", "3"),
    ]
    assert rollout.failed_creates(events, "DaemonSet", "kosmos-agent") == [
        'FailedCreate: pods "x" is forbidden: violates PodSecurity'
    ]
    assert rollout.failed_creates(events, "Deployment", "kosmos-cluster-manager") == [
        "FailedCreate: exceeded quota"
    ]
