"""Scale-down keeps the split: a pod-deletion-cost on every pod of a placed ReplicaSet.

When a ReplicaSet shrinks, its controller picks the victims itself, in this order: unbound,
pending, not ready, then the lowest ``controller.kubernetes.io/pod-deletion-cost``, and only
then its own preferences. The cost is the lever: each bound pod of a ReplicaSet whose policy
term has a ``placement`` carries minus the index of the placement seat it holds (see
``placement.deletion_costs``), so the pods holding the last seats — the newest pods of the
clusters most over their share — go first, and after any scale-down the survivors hold the
first seats, which is the split for the new replica count.

The costs must be in place *before* a scale-down (the ReplicaSet controller acts at once), so
they are maintained continuously: every pod event of such a ReplicaSet re-computes its costs
and patches only the pods whose cost changed (usually just the pod that was bound). Only the
extender holding the Lease ``kosmos-scheduler-extender`` writes, so replicas do not compete.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable

from kosmos.api import names
from kosmos.api.objects import Obj, is_deleting
from kosmos.api.resources import PODS
from kosmos.kube.component import HOST
from kosmos.kube.controller import Controller, Request, Result
from kosmos.kube.errors import KubeError, NotFound
from kosmos.kube.leader import LeaderElector, LeadershipLost
from kosmos.kube.manager import Manager
from kosmos.scheduler import metrics, placement, policy
from kosmos.scheduler.cache import Caches
from kosmos.scheduler.decide import live
from kosmos.scheduler.nodetype import cluster_of

log = logging.getLogger("kosmos.scheduler.deletioncost")

COST = names.ANNOTATION_DELETION_COST


def _replicaset(pod: Obj) -> str | None:
    for ref in pod.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == "ReplicaSet":
            return str(ref.get("name", ""))
    return None


def _keep_order(pod: Obj) -> tuple[str, str]:
    meta = pod.get("metadata", {})
    return str(meta.get("creationTimestamp", "")), str(meta.get("name", ""))


def wanted_costs(
    pods: list[Obj], term_of: Callable[[Obj], Obj | None], cluster: Callable[[str], str | None]
) -> dict[str, str]:
    """Pod name -> the cost it should carry (only pods whose current cost differs).

    ``term_of`` gives each pod's policy term (None: not placed); ``cluster`` maps a node
    name to its cluster. Pods of one ReplicaSet under different terms are costed per term.
    """
    groups: dict[str, tuple[Obj, dict[str, list[str]]]] = {}
    current: dict[str, str] = {}
    for pod in sorted(pods, key=_keep_order):
        meta, spec = pod.get("metadata", {}), pod.get("spec", {})
        if not live(pod):
            continue
        term = term_of(pod)
        where = cluster(spec.get("nodeName") or "")
        if term is None or where is None or not placement.shares_of(term):
            continue
        key = str(term.get("name", ""))
        _, by_cluster = groups.setdefault(key, (term, defaultdict(list)))
        by_cluster[where].append(str(meta.get("name", "")))
        current[str(meta.get("name", ""))] = str((meta.get("annotations") or {}).get(COST, ""))
    out: dict[str, str] = {}
    for term, by_cluster in groups.values():
        costs = placement.deletion_costs(placement.shares_of(term), by_cluster)
        for name, cost in costs.items():
            if current.get(name) != str(cost):
                out[name] = str(cost)
    return out


class CostReconciler:
    """Keyed by ReplicaSet (``Request(HOST, namespace, name)``)."""

    def __init__(self, manager: Manager, caches: Caches) -> None:
        self.manager = manager
        self.caches = caches

    def _term(self, pod: Obj) -> Obj | None:
        namespace = pod.get("metadata", {}).get("namespace", "")
        found = policy.match(pod, self.caches.policies(namespace), self.caches.cluster_policies())
        return found.term if found is not None else None

    def _cluster(self, node_name: str) -> str | None:
        node = self.caches.node(node_name) if node_name else None
        return cluster_of(node) if node is not None else None

    async def __call__(self, request: Request) -> Result | None:
        key = f"{request.namespace}/{request.name}"
        replicaset = self.caches.workloads["ReplicaSet"].store.get(key)
        if replicaset is None:
            return None
        pods = self.caches.owner_pods(replicaset["metadata"]["uid"])
        client = self.manager.client(HOST)
        for name, cost in wanted_costs(pods, self._term, self._cluster).items():
            patch = {"metadata": {"annotations": {COST: cost}}}
            with contextlib.suppress(NotFound):
                await client.patch(PODS, name, patch, namespace=request.namespace)
            metrics.deletion_cost_patches.inc()
        return None


class CostTrigger:
    """Host pod and policy events -> the ReplicaSets whose costs may change."""

    def __init__(self, controller: Controller, caches: Caches) -> None:
        self.controller = controller
        self.caches = caches

    def _pod(self, pod: Obj) -> None:
        name = _replicaset(pod)
        if name:
            namespace = pod["metadata"].get("namespace", "")
            self.controller.enqueue(Request(HOST, namespace, name))

    def on_add(self, obj: Obj) -> None:
        self._pod(obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        moved = old.get("spec", {}).get("nodeName") != new.get("spec", {}).get("nodeName")
        ended = old.get("status", {}).get("phase") != new.get("status", {}).get("phase")
        leaving = is_deleting(new) != is_deleting(old)
        if moved or ended or leaving:
            self._pod(new)

    def on_delete(self, obj: Obj) -> None:
        self._pod(obj)

    def policy_changed(self, obj: Obj) -> None:
        """A policy changed: every ReplicaSet it may cover (its namespace, or all)."""
        namespace = obj.get("metadata", {}).get("namespace")
        store = self.caches.workloads["ReplicaSet"].store
        sets = store.by_index("namespace", namespace) if namespace else store.list()
        for replicaset in sets:
            meta = replicaset["metadata"]
            self.controller.enqueue(Request(HOST, meta.get("namespace", ""), meta["name"]))


async def run_elected(
    make: Callable[[], Controller],
    trigger: CostTrigger,
    elector: LeaderElector,
    synced: Callable[[], Awaitable[bool]],
) -> None:
    """Run a fresh controller while holding the lease; after a loss, compete again.

    Every ReplicaSet is enqueued when leading starts: costs a former leader missed are
    caught up.
    """
    await synced()
    while True:
        controller = make()
        trigger.controller = controller
        trigger.policy_changed({"metadata": {}})
        try:
            await elector.run(controller.run)
            return
        except LeadershipLost as exc:
            log.warning("%s; competing for the lease again", exc)
        except KubeError as exc:
            log.warning("deletion costs: %s; retrying", exc)
        await asyncio.sleep(elector.config.retry_period)
