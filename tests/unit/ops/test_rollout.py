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
