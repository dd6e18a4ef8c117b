"""The network-manager's planner controller: Clusters + ClusterNodes -> NodeConfigs.

One global key: any change to a Cluster or ClusterNode asks for a new plan; the work queue
coalesces a burst of changes into one pass. A pass computes every NodeConfig (pure, see
``planner``), writes only those whose spec changed (server-side apply, so a NodeConfig edited
by hand is put back), deletes NodeConfigs of nodes that left, and tells each Cluster what it
had to leave out in its ``NetworkPlanned`` condition. When a tunnel needs the default master
key and its Secret does not exist, a random one is created.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import Counter, Histogram

from kosmos.api import link, names
from kosmos.api.objects import (
    Obj,
    condition_of,
    conditions_of,
    find_condition,
    now,
    with_condition,
)
from kosmos.api.resources import CLUSTERNODES, CLUSTERS, NODECONFIGS, SECRETS
from kosmos.clusterlink import metrics
from kosmos.clusterlink.planner import inputs, plan
from kosmos.kube.builder import controller
from kosmos.kube.controller import Controller, Request, Result
from kosmos.kube.errors import AlreadyExists, Invalid, NotFound
from kosmos.kube.events import EventRecorder, EventType
from kosmos.kube.informer import ChangeHandler, Informer
from kosmos.kube.manager import Manager
from kosmos.kube.metrics import REGISTRY

log = logging.getLogger("kosmos.clusterlink.nodeconfigs")

CONDITION = "NetworkPlanned"
PLAN_KEY = "plan"

plan_seconds = Histogram(
    "kosmos_clusterlink_plan_seconds",
    "Time to compute the network plan for all nodes",
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=REGISTRY,
)
nodeconfig_writes = Counter(
    "kosmos_clusterlink_nodeconfig_writes_total",
    "NodeConfigs written (apply) or deleted by the planner",
    ["verb"],
    registry=REGISTRY,
)


def nodeconfig(name: str, cluster: str, spec: Obj) -> Obj:
    return {
        "apiVersion": names.API_VERSION,
        "kind": "NodeConfig",
        "metadata": {"name": name, "labels": {link.LABEL_CLUSTER: cluster}},
        "spec": spec,
    }


def planned_condition(problems: list[str], skipped: dict[str, str], generation: int) -> Obj:
    waiting = sorted(skipped)
    notes = list(problems)
    if waiting:
        shown = ", ".join(f"{n} ({skipped[n]})" for n in waiting[:5])
        notes.append(f"{len(waiting)} ClusterNode(s) have no NodeConfig yet: {shown}")
    return {
        "type": CONDITION,
        "status": "False" if problems else "True",
        "reason": "PlanIncomplete" if problems else "Planned",
        "message": "; ".join(notes) or "every node of the cluster has its NodeConfig",
        "observedGeneration": generation,
    }


class PlannerReconciler:
    def __init__(
        self, manager: Manager, *, host: str, recorder: EventRecorder | None = None
    ) -> None:
        self.manager = manager
        self.host_name = host
        self.recorder = recorder
        self.clusters: Informer = manager.informer(host, CLUSTERS)
        self.clusternodes: Informer = manager.informer(host, CLUSTERNODES)
        self.nodeconfigs: Informer = manager.informer(host, NODECONFIGS)
        self._written: dict[str, tuple[Any, int]] = {}  # name -> (spec we applied, generation)
        self._conditions: dict[str, Obj] = {}
        self.last_plan: plan.Plan | None = None

    async def __call__(self, request: Request) -> Result:
        started = time.perf_counter()
        clusters = self.clusters.store.list()
        result = plan.compute(inputs.read(clusters, self.clusternodes.store.list()))
        plan_seconds.observe(time.perf_counter() - started)
        self.last_plan = result
        await self._ensure_keys(result)
        await self._write(result)
        await self._conditions_of(clusters, result)
        return Result()

    async def _write(self, result: plan.Plan) -> None:
        host = self.manager.client(self.host_name)
        members = self.clusternodes.store
        for name, spec in result.configs.items():
            current = self.nodeconfigs.store.get(name)
            if current is not None and self._unchanged(name, spec, current):
                continue
            cluster = (members.get(name) or {}).get("spec", {}).get("clusterName", "")
            try:
                written = await host.apply(
                    NODECONFIGS,
                    nodeconfig(name, cluster, spec),
                    field_manager=link.FIELD_MANAGER_PLANNER,
                    force=True,
                )
            except Invalid as exc:  # e.g. a list over its CRD bound: the others still go out
                message = f"NodeConfig {name} was refused by the API: {exc}"
                result.problems.setdefault(cluster, []).append(message)
                continue
            self._written[name] = (spec, int(written["metadata"].get("generation") or 0))
            nodeconfig_writes.labels("apply").inc()
        for current in self.nodeconfigs.store.list():
            name = current["metadata"]["name"]
            if name not in result.configs:
                with contextlib.suppress(NotFound):
                    await host.delete(NODECONFIGS, name)
                self._written.pop(name, None)
                nodeconfig_writes.labels("delete").inc()

    def _unchanged(self, name: str, spec: Obj, current: Obj) -> bool:
        if current.get("spec") == spec:
            return True
        written = self._written.get(name)
        generation = int(current["metadata"].get("generation") or 0)
        return written is not None and written[0] == spec and written[1] == generation

    async def _conditions_of(self, clusters: Iterable[Obj], result: plan.Plan) -> None:
        host = self.manager.client(self.host_name)
        by_cluster: dict[str, dict[str, str]] = {}
        for node, why in result.skipped.items():
            owner = (self.clusternodes.store.get(node) or {}).get("spec", {}).get("clusterName", "")
            by_cluster.setdefault(owner, {})[node] = why
        for cluster in clusters:
            meta = cluster["metadata"]
            options = cluster.get("spec", {}).get("clusterLinkOptions") or {}
            if not options or options.get("enable") is False or meta.get("deletionTimestamp"):
                continue
            wanted = planned_condition(
                result.problems.get(meta["name"], []),
                by_cluster.get(meta["name"], {}),
                int(meta.get("generation") or 0),
            )
            if self._conditions.get(meta["name"]) == wanted and _has(cluster, wanted):
                continue
            body = {
                "apiVersion": names.API_VERSION,
                "kind": "Cluster",
                "metadata": {"name": meta["name"]},
                "status": {"conditions": [_stamped(cluster, wanted)]},
            }
            try:
                await host.apply(
                    CLUSTERS,
                    body,
                    field_manager=link.FIELD_MANAGER_PLANNER,
                    force=True,
                    subresource="status",
                )
            except NotFound:
                continue
            if wanted["status"] == "False":
                log.warning("cluster %s: %s", meta["name"], wanted["message"])
            await self._record(cluster, wanted)
            self._conditions[meta["name"]] = wanted

    async def _record(self, cluster: Obj, wanted: Obj) -> None:
        """A Warning when the plan leaves something out (or what it leaves out changes), a
        Normal event when the Cluster's nodes are all planned again."""
        previous = condition_of(cluster, CONDITION) or {}
        if self.recorder is None or (
            wanted["status"] == "True" and previous.get("status") != "False"
        ):
            return
        if wanted["status"] == "False" and previous.get("message") == wanted["message"]:
            return
        type_: EventType = "Warning" if wanted["status"] == "False" else "Normal"
        await self.recorder.record(cluster, type_, wanted["reason"], wanted["message"])

    async def _ensure_keys(self, result: plan.Plan) -> None:
        refs = {
            t["keySecretRef"]["name"]
            for spec in result.configs.values()
            for t in spec.get("tunnels") or []
            if t["keySecretRef"]["name"] == link.DEFAULT_KEY_SECRET
        }
        if not refs:
            return
        host = self.manager.client(self.host_name)
        try:
            await host.get(SECRETS, link.DEFAULT_KEY_SECRET, names.SYSTEM_NAMESPACE)
            return
        except NotFound:
            pass
        key = base64.b64encode(secrets.token_bytes(32)).decode()
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": link.DEFAULT_KEY_SECRET, "namespace": names.SYSTEM_NAMESPACE},
            "type": "Opaque",
            "data": {link.DEFAULT_KEY_FIELD: key},
        }
        try:
            await host.create(SECRETS, body)
            log.info(
                "created the tunnel master key Secret %s/%s",
                names.SYSTEM_NAMESPACE,
                link.DEFAULT_KEY_SECRET,
            )
        except AlreadyExists:
            pass


def _has(cluster: Obj, wanted: Obj) -> bool:
    current = condition_of(cluster, CONDITION)
    return current is not None and all(current.get(k) == v for k, v in wanted.items())


def _stamped(cluster: Obj, wanted: Obj) -> Obj:
    """``wanted`` with the transition time ``set_condition`` gives it against the Cluster's
    condition: kept while the status stays, now when it flips."""
    merged = find_condition(with_condition(conditions_of(cluster), wanted), CONDITION) or {}
    return {**wanted, "lastTransitionTime": merged.get("lastTransitionTime") or now()}


def _cluster_inputs(obj: Obj) -> Any:
    status = obj.get("status") or {}
    return (
        obj.get("spec"),
        status.get("clusterLinkStatus"),
        obj["metadata"].get("deletionTimestamp"),
    )


def _node_inputs(obj: Obj) -> Any:
    meta = obj["metadata"]
    return (obj.get("spec"), meta.get("annotations"), meta.get("labels"))


def _config_inputs(obj: Obj) -> Any:
    return (obj.get("spec"), obj["metadata"].get("labels"))


def _replan(controller: Controller, key: Request, relevant: Callable[[Obj], Any]) -> ChangeHandler:
    """Ask for a new plan when what the plan reads changed (not on status-only writes)."""

    def changed(old: Obj | None, new: Obj | None) -> None:
        if old is None or new is None or relevant(old) != relevant(new):
            controller.enqueue(key)

    return ChangeHandler(changed)


def register(
    manager: Manager, *, host: str, recorder: EventRecorder | None = None
) -> tuple[Controller, PlannerReconciler]:
    """Add the planner to ``manager`` (leader-only, like every controller of the manager)."""
    reconciler = PlannerReconciler(manager, host=host, recorder=recorder)
    metrics.node_link_states.source = reconciler.nodeconfigs.store.list
    planner = controller(manager, "clusterlink-planner", reconciler)
    key = Request(host, "", PLAN_KEY)
    reconciler.clusters.add_handler(_replan(planner, key, _cluster_inputs))
    reconciler.clusternodes.add_handler(_replan(planner, key, _node_inputs))
    reconciler.nodeconfigs.add_handler(_replan(planner, key, _config_inputs))
    planner.enqueue(key)
    return planner, reconciler
