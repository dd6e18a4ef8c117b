"""The VirtualCluster controllers of ``kosmos virtual-cluster-operator``: the control-plane
(VirtualClusterInit) reconciler and the Node reconciler, both keyed by the VirtualCluster's
namespace/name and woken by VirtualClusters and GlobalNodes.

Two reconcilers, as in the seed's design, because they wait on different things: the
control plane on the provider, the nodes on the pool and the tenant's kwok. They meet in
the VirtualCluster: ``spec.kubeconfig`` starts the node reconciler, an empty ``nodeInfos``
in Deleting lets the control plane go (``kubenest.phases``).
"""

from __future__ import annotations

from collections.abc import Iterable

from kosmos.api import names
from kosmos.api.objects import Obj, namespace_of
from kosmos.api.resources import GLOBAL_NODES, PODS, VIRTUAL_CLUSTERS
from kosmos.kube import component
from kosmos.kube.builder import Mapper, Watch, by_name, controller
from kosmos.kube.controller import Request
from kosmos.kube.informer import Informer
from kosmos.kubenest import phases, pool
from kosmos.kubenest.agent import AgentClient
from kosmos.kubenest.controlplane import ControlPlaneReconciler
from kosmos.kubenest.nodes import NodeReconciler
from kosmos.kubenest.provider import Provider, for_settings
from kosmos.kubenest.settings import Settings
from kosmos.kubenest.tenants import Tenants
from kosmos.kubenest.treesetup import TreeSetup

CONTROL_PLANE = "virtual-cluster-init"
NODES = "virtual-cluster-node"
WORKERS = 2


def build(runtime: component.Runtime, settings: Settings, provider: Provider | None = None) -> None:
    """Declare both reconcilers on ``runtime``'s manager."""
    manager = runtime.manager
    virtualclusters = manager.informer(component.HOST, VIRTUAL_CLUSTERS)
    globalnodes = manager.informer(component.HOST, GLOBAL_NODES)
    tenants = Tenants()
    runtime.on_stop(tenants.close)
    provider = provider or for_settings(settings, runtime.host)
    plane = ControlPlaneReconciler(
        runtime.host,
        runtime.recorder,
        provider,
        advertise_address=settings.advertise_address,
        virtualclusters=virtualclusters,
        occupied=lambda key: held_by(globalnodes, key),
        forget=tenants.forget,
        tree=TreeSetup(runtime.host, tenants.client, provider),
    )
    controller(
        manager,
        CONTROL_PLANE,
        plane,
        workers=WORKERS,
        watches=[
            Watch(virtualclusters, same_namespace(virtualclusters)),
            Watch(globalnodes, holder_keys(virtualclusters)),
        ],
    )
    agents = AgentClient(runtime.host)
    runtime.on_stop(agents.close)
    control_planes = manager.informer(
        component.HOST, PODS, label_selector=names.LABEL_TENANT_COMPONENT
    )
    nodes = NodeReconciler(
        runtime.host,
        runtime.recorder,
        globalnodes,
        tenants.client,
        agents,
        control_planes=control_planes,
    )
    controller(
        manager,
        NODES,
        nodes,
        workers=WORKERS,
        watches=[
            Watch(virtualclusters, by_name(component.HOST)),
            Watch(globalnodes, holder_keys(virtualclusters)),
        ],
    )


def held_by(globalnodes: Informer, key: str) -> list[str]:
    return [g["metadata"]["name"] for g in globalnodes.store.list() if pool.holder_of(g) == key]


def same_namespace(virtualclusters: Informer) -> Mapper:
    """A VirtualCluster's change wakes every VirtualCluster of its namespace: one refused
    because the namespace was taken may go once the holder is deleted."""

    def keys(obj: Obj) -> Iterable[Request]:
        namespace = namespace_of(obj)
        names = {obj["metadata"]["name"]}
        names |= {
            v["metadata"]["name"]
            for v in virtualclusters.store.list()
            if namespace_of(v) == namespace
        }
        return [Request(component.HOST, namespace, n) for n in sorted(names)]

    return keys


def holder_keys(virtualclusters: Informer) -> Mapper:
    """A GlobalNode wakes the VirtualCluster holding it; a free one wakes those waiting for
    nodes (Pending), which may now be served."""

    def keys(obj: Obj) -> Iterable[Request]:
        holder = pool.holder_of(obj)
        if holder:
            namespace, _, name = holder.partition("/")
            return [Request(component.HOST, namespace, name)]
        if pool.state_of(obj) != "free":
            return []
        return [
            Request(component.HOST, namespace_of(v), v["metadata"]["name"])
            for v in virtualclusters.store.list()
            if phases.phase_of(v) == phases.PENDING
        ]

    return keys
