"""Which watch events wake which MCS controller, in the host and in every member.

Work is keyed by service (``Request(HOST, <ns>, <name>)``), whatever cluster the event
came from: an export, an import, a Service or a slice of ``<ns>/<name>`` anywhere
re-plans that service everywhere. Source Services and slices of services nobody exports
wake nothing. A member's caches are made once its MCS CRDs are there (``members``).
"""

from __future__ import annotations

import contextlib
import logging

from kosmos.api import crds, names
from kosmos.api.objects import Obj, annotations_of, labels_of, name_of, namespace_of
from kosmos.api.resources import CUSTOMRESOURCEDEFINITIONS
from kosmos.kube.client import Client
from kosmos.kube.component import HOST
from kosmos.kube.controller import Request, Result
from kosmos.kube.errors import KubeError, NotFound
from kosmos.kube.informer import EnqueueHandler
from kosmos.kube.manager import ClusterNotFound, Manager
from kosmos.mcs import forge
from kosmos.mcs.hub import Hub

log = logging.getLogger("kosmos.mcs.watches")
MCS_KINDS = {"ServiceExport", "ServiceImport"}
#: a member whose CRDs could not be installed is tried again this often
CRD_RETRY_SECONDS = 10.0


def _key(obj: Obj) -> Request:
    return Request(HOST, namespace_of(obj), name_of(obj))


def all_keys(hub: Hub) -> set[tuple[str, str]]:
    """Every service some cluster exports or imports (what a clusterset change re-plans)."""
    keys: set[tuple[str, str]] = set()
    for cluster in hub.members:
        if not hub.ready(cluster):
            continue
        for kind in ("exports", "imports"):
            keys.update(
                (namespace_of(o), name_of(o)) for o in hub.cache(cluster, kind).store.list()
            )
    return keys


def enqueue_all(hub: Hub) -> None:
    for namespace, name in all_keys(hub):
        hub.controllers["services"].enqueue(Request(HOST, namespace, name))


def route_cluster(hub: Hub, cluster: str) -> None:
    """The cluster's caches and the handlers that map their events to services."""
    caches = hub.attach(cluster)
    services = hub.controllers["services"]

    def direct(obj: Obj) -> None:
        services.enqueue(_key(obj))

    def service_changed(obj: Obj) -> None:
        owner = annotations_of(obj).get(forge.ANNOTATION_SERVICE_IMPORT)
        if owner and "/" in owner:
            namespace, _, name = owner.partition("/")
            services.enqueue(Request(HOST, namespace, name))
        elif hub.exported_anywhere(namespace_of(obj), name_of(obj)):
            services.enqueue(_key(obj))
        if cluster == HOST and "auto" in hub.controllers:
            hub.controllers["auto"].enqueue(_key(obj))

    def slice_changed(obj: Obj) -> None:
        labels = labels_of(obj)
        if forge.is_mcs_slice(obj):
            name = labels.get(names.LABEL_MCS_SERVICE_NAME)
        else:
            name = labels.get(names.LABEL_SLICE_SERVICE_NAME)
            if name and not hub.exported_anywhere(namespace_of(obj), name):
                return
        if name:
            services.enqueue(Request(HOST, namespace_of(obj), name))

    def namespace_changed(obj: Obj) -> None:
        for namespace, name in all_keys(hub):
            if namespace == name_of(obj):
                services.enqueue(Request(HOST, namespace, name))

    def export_changed(obj: Obj) -> None:
        direct(obj)
        if cluster == HOST and "auto" in hub.controllers:
            hub.controllers["auto"].enqueue(_key(obj))

    caches["exports"].add_handler(EnqueueHandler(export_changed))
    caches["imports"].add_handler(EnqueueHandler(direct))
    caches["services"].add_handler(EnqueueHandler(service_changed))
    caches["slices"].add_handler(EnqueueHandler(slice_changed))
    caches["namespaces"].add_handler(EnqueueHandler(namespace_changed))


class Members:
    """Reconciler keyed ``Request(<cluster>, "", "")``: a cluster joins the clusterset.

    In a member the MCS CRDs are created when missing (the join kubeconfig may create CRDs;
    an existing CRD, e.g. another MCS implementation's, is left as it is), then the caches
    are made and every known service re-planned so the member gets its imports.
    """

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.routed: set[str] = set()

    async def __call__(self, request: Request) -> Result | None:
        cluster = request.cluster
        if cluster in self.routed:
            return None
        try:
            client = self.hub.manager.client(cluster)
        except ClusterNotFound:
            return None
        if cluster != HOST:
            try:
                await self._ensure_crds(client)
            except KubeError as exc:
                log.warning("member %s: MCS CRDs could not be created: %s", cluster, exc)
                return Result(requeue_after=CRD_RETRY_SECONDS)
        route_cluster(self.hub, cluster)
        self.routed.add(cluster)
        enqueue_all(self.hub)
        return None

    async def _ensure_crds(self, client: Client) -> None:
        for manifest in crds.crd_manifests():
            if manifest["spec"]["names"]["kind"] not in MCS_KINDS:
                continue
            with contextlib.suppress(NotFound):
                await client.get(CUSTOMRESOURCEDEFINITIONS, manifest["metadata"]["name"])
                continue
            await client.apply(
                CUSTOMRESOURCEDEFINITIONS, manifest, field_manager="kosmos-mcs", force=True
            )
            log.info("MCS CRD %s created in %s", manifest["metadata"]["name"], client.cluster)

    def forget(self, cluster: str) -> None:
        self.routed.discard(cluster)
        self.hub.detach(cluster)


def wire(hub: Hub, members: Members) -> None:
    """Clusters joining and leaving the manager join and leave the clusterset."""
    ctl = hub.controllers

    def added(_manager: Manager, cluster: str) -> None:
        ctl["members"].enqueue(Request(cluster, "", ""))

    def removed(_manager: Manager, cluster: str) -> None:
        members.forget(cluster)
        enqueue_all(hub)

    hub.manager.on_cluster_added(added)
    hub.manager.on_cluster_removed(removed)
    hub.clusters.add_handler(EnqueueHandler(lambda _obj: enqueue_all(hub)))
