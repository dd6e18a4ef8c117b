"""Which members the extender watches, and what it says when it cannot.

The extender needs each member's nodes and pods (true capacity, see ``cache``), so its
manager follows the Clusters through the shared ``MemberRegistry``: every Cluster with
ClusterTree enabled except the root one (the root has no leaf nodes). It holds no finalizer
(it leaves nothing in members) and keeps no Secret cache: the kubeconfig Secret is read with
a GET, so the extender needs ``get`` on that Secret only, not a watch on every Secret. A
member whose credentials cannot be read gets a Warning event on its Cluster, and its leaf
nodes are not judged for capacity until a retry succeeds.
"""

from __future__ import annotations

import logging

from kosmos.api.leafmodel import tree_enabled
from kosmos.api.objects import Obj, name_of
from kosmos.kube.component import HOST
from kosmos.kube.controller import Result
from kosmos.kube.errors import KubeconfigError
from kosmos.kube.events import EventRecorder
from kosmos.kube.informer import Informer
from kosmos.kube.manager import Manager
from kosmos.kube.members import MemberHooks, MemberPolicy, MemberRegistry

log = logging.getLogger("kosmos.scheduler.members")

RETRY_SECONDS = 30.0


class Unavailable(MemberHooks):
    """A member the extender cannot watch: a log line, a Warning event, a retry."""

    def __init__(self, recorder: EventRecorder) -> None:
        self.recorder = recorder

    async def failed(self, cluster: Obj, error: KubeconfigError) -> Result | None:
        log.warning("member %s: %s; retrying in %.0fs", name_of(cluster), error, RETRY_SECONDS)
        message = f"kosmos-scheduler-extender cannot watch this member ({error}); its leaf "
        message += "nodes are not checked for true capacity until it can"
        await self.recorder.record(cluster, "Warning", "MemberUnavailable", message)
        return Result(requeue_after=RETRY_SECONDS)


def registry(
    manager: Manager, clusters: Informer, recorder: EventRecorder, qps: tuple[float, int]
) -> MemberRegistry:
    """The extender's member set: Clusters with ClusterTree enabled, ``qps`` per member."""
    rate, burst = qps
    policy = MemberPolicy(serves=tree_enabled, finalizer=None, root="skip", qps=rate, burst=burst)
    return MemberRegistry(manager, HOST, clusters, policy, Unavailable(recorder), secrets=None)
