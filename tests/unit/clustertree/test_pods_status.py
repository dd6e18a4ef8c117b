"""Status up: one host write per change burst, readiness never held back."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kosmos.api.resources import PODS
from kosmos.clustertree import pods as pods_module
from kosmos.clustertree.podforge import member_pod
from kosmos.clustertree.pods import PodReconciler
from kosmos.kube.component import HOST
from kosmos.kube.controller import Request, Result
from tests.unit.clustertree.test_tree import MEMBER, one_to_one_tree

WAITING = {"name": "c", "ready": False, "restartCount": 0, "state": {"waiting": {}}}
RUNNING = {"name": "c", "ready": True, "restartCount": 0, "state": {"running": {}}}


def member_status(phase: str, container: dict[str, Any], ready: bool) -> dict[str, Any]:
    return {
        "phase": phase,
        "startTime": "2026-12-07T10:00:00Z",
        "podIP": "10.1.0.5" if phase == "Running" else None,
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        "containerStatuses": [container],
    }


@pytest.fixture
def setup(monkeypatch: pytest.MonkeyPatch) -> tuple[PodReconciler, Any, list[Any], list[float]]:
    tree, _ = one_to_one_tree(2)
    clock = [100.0]
    monkeypatch.setattr(pods_module.time, "monotonic", lambda: clock[0])
    members = tree.member(MEMBER, PODS)
    members._synced.set()
    host = tree.pods.store.get("ns/p0")
    assert host is not None
    host["status"] = {"phase": "Pending"}
    reconciler = PodReconciler(tree)
    member = member_pod(host, reconciler._placement(MEMBER, host), reconciler._context(host))
    member["metadata"]["uid"] = "member-uid"
    members.store.upsert(member)
    writes: list[Any] = []

    async def patch(resource: Any, name: str, body: Any, **kwargs: Any) -> Any:
        writes.append(body)
        current = tree.pods.store.get(f"ns/{name}")
        assert current is not None
        updated = copy.deepcopy(current)
        updated["status"] = {k: v for k, v in body["status"].items() if v is not None}
        tree.pods.store.upsert(updated)  # as the host's watch would bring it back
        return updated

    monkeypatch.setattr(tree.manager.client(HOST), "patch", patch)
    return reconciler, members, writes, clock


def set_member_status(members: Any, status: dict[str, Any]) -> None:
    member = copy.deepcopy(members.store.get("ns/p0"))
    member["status"] = status
    members.store.upsert(member)


async def test_a_start_costs_one_write(setup: Any) -> None:
    reconciler, members, writes, clock = setup
    request = Request(MEMBER, "ns", "p0")
    set_member_status(members, member_status("Pending", WAITING, ready=False))
    held = await reconciler(request)  # a container waiting: held for what follows
    assert isinstance(held, Result) and held.requeue_after == pytest.approx(1.0)
    assert writes == []
    clock[0] += 0.4
    set_member_status(members, member_status("Running", RUNNING, ready=True))
    assert await reconciler(request) is None  # Running and Ready: written at once
    assert len(writes) == 1 and writes[0]["status"]["phase"] == "Running"
    assert await reconciler(request) is None  # in step: nothing more
    assert len(writes) == 1


async def test_a_held_change_is_written_when_nothing_follows(setup: Any) -> None:
    reconciler, members, writes, clock = setup
    request = Request(MEMBER, "ns", "p0")
    set_member_status(members, member_status("Pending", WAITING, ready=False))
    assert isinstance(await reconciler(request), Result)
    clock[0] += 0.6
    again = await reconciler(request)  # a second member event in the window: still held
    assert isinstance(again, Result) and again.requeue_after == pytest.approx(0.4)
    clock[0] += 0.4
    assert await reconciler(request) is None
    assert len(writes) == 1 and writes[0]["status"]["containerStatuses"] == [WAITING]
