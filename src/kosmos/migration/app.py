"""The migration controller as a part of ``kosmos cluster-manager``: a builder.

It needs the member clients ClusterTree registers (the policy names a joined Cluster) and
ClusterTree's adoption of the pods it rebuilds, so it runs in the same process; the launcher
composes it. It has no flags of its own: the namespaces it never migrates are fixed
(``plan.FORBIDDEN_NAMESPACES``).
"""

from __future__ import annotations

from kosmos.api.resources import PROMOTE_POLICIES
from kosmos.kube import component
from kosmos.kube.builder import Watch, by_name, controller
from kosmos.migration.controller import PromoteReconciler


def build(runtime: component.Runtime) -> None:
    policies = runtime.manager.informer(component.HOST, PROMOTE_POLICIES)
    reconcile = PromoteReconciler(runtime.manager, policies, runtime.recorder)
    controller(
        runtime.manager,
        "promote-policy",
        reconcile,
        watches=[Watch(policies, by_name(component.HOST))],
    )
