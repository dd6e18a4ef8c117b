"""Events ClusterLink adds for transitions: the network plan leaving nodes out of a Cluster
(and planning them all again), an agent failing to apply items of its NodeConfig (and
being in sync again)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from kosmos.clusterlink.agent.reconciler import NodeConfigReconciler
from kosmos.clusterlink.nodeconfigs import CONDITION, PlannerReconciler
from kosmos.kube.client import Client
from kosmos.kube.component import HOST
from kosmos.kube.config import ClusterConfig
from kosmos.kube.manager import Manager


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str, str]] = []

    async def record(self, obj: Any, type_: str, reason: str, message: str) -> None:
        self.events.append((obj["metadata"]["name"], type_, reason, message))


async def accept(*args: Any, **kwargs: Any) -> Any:
    return {"metadata": {}}


def linked_cluster(condition: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "kind": "Cluster",
        "metadata": {"name": "c1", "generation": 1},
        "spec": {"clusterLinkOptions": {"enable": True}},
        "status": {"conditions": [condition] if condition else []},
    }


async def test_the_planner_warns_when_nodes_are_left_out_and_tells_when_all_are_planned() -> None:
    manager = Manager("test")
    manager.add_cluster(HOST, Client(ClusterConfig(HOST, "https://127.0.0.1:1")))
    recorder = Recorder()
    planner = PlannerReconciler(manager, host=HOST, recorder=recorder)  # type: ignore[arg-type]
    planner.manager.client(HOST).apply = accept  # type: ignore[method-assign]
    broken = SimpleNamespace(problems={"c1": ["pod CIDR 10.1.0.0/16 overlaps c2"]}, skipped={})
    await planner._conditions_of([linked_cluster(None)], broken)  # type: ignore[arg-type]
    ((name, type_, reason, message),) = recorder.events
    assert (name, type_, reason) == ("c1", "Warning", "PlanIncomplete")
    assert "overlaps c2" in message

    was = {"type": CONDITION, "status": "False", "reason": "PlanIncomplete", "message": message}
    fixed = SimpleNamespace(problems={}, skipped={})
    await planner._conditions_of([linked_cluster(was)], fixed)  # type: ignore[arg-type]
    assert recorder.events[1][:3] == ("c1", "Normal", "Planned")
    now = {**was, "status": "True", "reason": "Planned"}
    planner._conditions.clear()
    await planner._conditions_of([linked_cluster(now)], fixed)  # type: ignore[arg-type]
    assert len(recorder.events) == 2  # planned all along: nothing to tell


async def test_the_agent_warns_when_items_fail_and_tells_when_the_node_is_in_sync() -> None:
    recorder = Recorder()
    host = SimpleNamespace(patch=accept)
    agent = NodeConfigReconciler(SimpleNamespace(host=host), None, recorder)  # type: ignore[arg-type]
    config: dict[str, Any] = {"kind": "NodeConfig", "metadata": {"name": "n1", "generation": 3}}
    unchanged = SimpleNamespace(changes=0)
    await agent._report(config, [("route 10.2.0.0/16", "no such device")], unchanged)  # type: ignore[arg-type]
    ((name, type_, reason, message),) = recorder.events
    assert (name, type_, reason) == ("n1", "Warning", "ItemsFailed")
    assert "route 10.2.0.0/16: no such device" in message

    failed = {"type": "Applied", "status": "False", "reason": "ItemsFailed", "message": message}
    config["status"] = {"conditions": [{**failed, "observedGeneration": 3}]}
    await agent._report(config, [("route 10.2.0.0/16", "no such device")], unchanged)  # type: ignore[arg-type]
    assert len(recorder.events) == 1  # the same failure again: the condition already says it
    await agent._report(config, [], unchanged)  # type: ignore[arg-type]
    assert recorder.events[1][:3] == ("n1", "Normal", "InSync")


async def test_a_node_that_cannot_get_its_clusternode_is_a_warning_on_its_cluster() -> None:
    from kosmos.clusterlink.clusternodes import report_on_cluster
    from kosmos.clusterlink.link import Link, Options
    from kosmos.kube.controller import Request, TerminalError

    manager = Manager("test")
    manager.add_cluster(HOST, Client(ClusterConfig(HOST, "https://127.0.0.1:1")))
    recorder = Recorder()
    link = Link(manager, Options(), recorder)  # type: ignore[arg-type]
    link.clusters.store.upsert(linked_cluster(None))
    report = report_on_cluster(link)
    await report(
        Request("c1", "", "n1"), TerminalError("pod CIDR 'x' is invalid", "InvalidPodCIDRs")
    )
    await report(Request("gone", "", "n1"), TerminalError("whatever", "NameTooLong"))
    assert recorder.events == [
        ("c1", "Warning", "InvalidPodCIDRs", "node n1: pod CIDR 'x' is invalid")
    ]
