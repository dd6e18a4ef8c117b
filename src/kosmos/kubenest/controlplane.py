"""The VirtualClusterInit reconciler: a tenant's control plane, from nothing to a published
admin kubeconfig, and its teardown once the nodes are back in the host.

Every step is idempotent and re-reads the VirtualCluster (not the cache: the phase this
process wrote a moment ago decides the next step), so an operator killed at any point
resumes where the object says. The PKI is made once and kept in Secret ``<name>-cert``
(the provider's processes trust it across restarts); the admin kubeconfig goes to
``spec.kubeconfig`` (base64, the seed's contract) and Secret ``<name>-admin-config``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import Awaitable, Callable

from kosmos.api import names
from kosmos.api.objects import Obj, name_of, namespace_of
from kosmos.api.resources import SECRETS, VIRTUAL_CLUSTERS
from kosmos.kube.client import Client
from kosmos.kube.controller import Request, Result
from kosmos.kube.errors import AlreadyExists, KubeError, NotFound
from kosmos.kube.events import EventRecorder
from kosmos.kube.informer import Informer
from kosmos.kubenest import kubeconfig, phases, pki, status, treeplugin
from kosmos.kubenest.provider import ControlPlane, Provider, ProviderError
from kosmos.kubenest.treesetup import TreeSetup

log = logging.getLogger("kosmos.kubenest")

STARTING_POLL = 1.0  # while the control plane starts
ERROR_RETRY = 10.0  # after a provider error
RECHECK = 30.0  # a running control plane: ensure restarts what died
TEARDOWN_POLL = 1.0  # while the node reconciler returns the nodes
#: what the provider may raise that a condition should report (not a crash)
PROVIDER_FAILURES = (ProviderError, pki.PkiError, OSError, ValueError)
#: ... and what the ClusterTree plugin's steps may raise (the host or the tenant refusing)
TREE_FAILURES = (*PROVIDER_FAILURES, KubeError)


class ControlPlaneReconciler:
    def __init__(
        self,
        host: Client,
        recorder: EventRecorder,
        provider: Provider,
        *,
        advertise_address: str,
        virtualclusters: Informer,
        occupied: Callable[[str], list[str]],
        forget: Callable[[str], Awaitable[None]] | None = None,
        tree: TreeSetup | None = None,
    ) -> None:
        self.host = host
        self.recorder = recorder
        self.provider = provider
        self.advertise = advertise_address
        self.virtualclusters = virtualclusters
        self.occupied = occupied  # vc key -> GlobalNodes it still holds
        self.forget = forget  # drop cached tenant clients of a destroyed tenant
        self.tree = tree  # the ClusterTree plugin (k8s-in-k8s); None: not offered

    async def __call__(self, request: Request) -> Result | None:
        try:
            vc = await self.host.get(VIRTUAL_CLUSTERS, request.name, request.namespace)
        except NotFound:
            return None
        holder = phases.namespace_holder(vc, self.virtualclusters.store.list())
        action = phases.init_action(vc, holder)
        if action == "teardown":
            return await self._teardown(vc)
        if action == "refuse":
            assert holder is not None
            if phases.phase_of(vc) in (phases.PREPARING, phases.PENDING):
                await self._undo(vc)  # started before the cache showed the holder
            await status.apply(self.host, self.recorder, vc, phases.refused(holder))
            return None
        vc = await self._ensure_finalizer(vc)
        if action == "start":
            vc = await status.apply(self.host, self.recorder, vc, phases.started())
        return await self._build(vc)

    async def _build(self, vc: Obj) -> Result | None:
        try:
            tenant_pki = await self._pki(vc)
            plane = await self.provider.ensure(vc, tenant_pki)
        except PROVIDER_FAILURES as error:
            log.warning("VirtualCluster %s: %s", phases.vc_key(vc), error)
            change = phases.control_plane(vc, error=str(error) or type(error).__name__)
            await status.apply(self.host, self.recorder, vc, change)
            return Result(requeue_after=ERROR_RETRY)
        change = phases.control_plane(vc, ready=plane.ready, message=plane.message)
        if plane.ready and not phases.published(vc):
            await self._publish(vc, plane, tenant_pki)
        poll = RECHECK if plane.ready else STARTING_POLL
        if plane.ready and self.tree is not None and treeplugin.enabled(vc):
            change, poll = await self._tree(vc, change)
        if plane.ready and plane.ports != (vc.get("status") or {}).get("portMap"):
            change = phases.Transition(
                change.phase,
                change.conditions,
                change.event,
                {**change.status, "portMap": dict(plane.ports)},
            )
        await status.apply(self.host, self.recorder, vc, change)
        return Result(requeue_after=poll)

    async def _tree(self, vc: Obj, change: phases.Transition) -> tuple[phases.Transition, float]:
        """The ClusterTree plugin's steps for the nodes the VirtualCluster holds."""
        assert self.tree is not None
        try:
            waiting = await self.tree.ensure(vc, self.occupied(phases.vc_key(vc)))
        except TREE_FAILURES as error:
            log.warning("VirtualCluster %s: ClusterTree: %s", phases.vc_key(vc), error)
            return phases.with_tree(change, "", str(error) or type(error).__name__), ERROR_RETRY
        return phases.with_tree(change, waiting), STARTING_POLL if waiting else RECHECK

    async def _pki(self, vc: Obj) -> pki.TenantPKI:
        """The tenant's PKI from Secret ``<name>-cert``, made (once) when missing."""
        name, namespace = phases.cert_secret(vc), namespace_of(vc)
        try:
            secret = await self.host.get(SECRETS, name, namespace)
        except NotFound:
            wanted = await self.provider.addresses(vc)
            made = await asyncio.to_thread(  # key generation: not on the event loop
                pki.TenantPKI.create,
                phases.vc_key(vc),
                phases.certificate_addresses(vc, self.advertise, *wanted.apiserver),
                wanted.etcd,
            )
            body = _secret(vc, name, made.to_secret_data())
            try:
                await self.host.create(SECRETS, body)
                return made
            except AlreadyExists:  # another worker was first: use theirs
                secret = await self.host.get(SECRETS, name, namespace)
        return pki.TenantPKI.from_secret(secret)

    async def _publish(self, vc: Obj, plane: ControlPlane, tenant_pki: pki.TenantPKI) -> None:
        """The admin kubeconfig: Secret first, then ``spec.kubeconfig`` (which marks the
        control plane as built: the node reconciler starts on it)."""
        cert, key = tenant_pki.pair(pki.ADMIN)
        text = kubeconfig.admin_kubeconfig(
            plane.endpoint, tenant_pki.files[f"{pki.CA}.crt"], cert, key, name_of(vc)
        )
        body = _secret(vc, phases.admin_secret(vc), {"kubeconfig": text})
        try:
            await self.host.create(SECRETS, body)
        except AlreadyExists:
            await self.host.patch(
                SECRETS,
                body["metadata"]["name"],
                {"stringData": body["stringData"]},
                namespace=namespace_of(vc),
            )
        encoded = base64.b64encode(text.encode()).decode()
        await self.host.patch(
            VIRTUAL_CLUSTERS,
            name_of(vc),
            {"spec": {"kubeconfig": encoded}},
            namespace=namespace_of(vc),
        )
        vc.setdefault("spec", {})["kubeconfig"] = encoded

    async def _teardown(self, vc: Obj) -> Result | None:
        key = phases.vc_key(vc)
        action = phases.teardown_action(vc, self.occupied(key))
        if action == "mark":
            message = "returning nodes, then destroying the control plane"
            change = phases.Transition(phases.DELETING, (), ("Normal", phases.DELETING, message))
            await status.apply(self.host, self.recorder, vc, change)
            return Result(requeue_after=TEARDOWN_POLL)
        if action == "wait":
            return Result(requeue_after=TEARDOWN_POLL)
        try:
            if self.tree is not None and treeplugin.enabled(vc):
                await self.tree.remove(vc)
            await self.provider.destroy(vc)
        except TREE_FAILURES as error:
            text = f"destroying the control plane: {error}"
            change = phases.Transition(
                "",
                (phases.condition(phases.CONTROL_PLANE_READY, False, phases.PROVIDER_ERROR, text),),
                ("Warning", phases.PROVIDER_ERROR, text),
            )
            await status.apply(self.host, self.recorder, vc, change)
            return Result(requeue_after=ERROR_RETRY)
        await self._forget(vc)
        await self._finalizers(
            vc, [f for f in _finalizers(vc) if f != names.FINALIZER_VIRTUAL_CLUSTER]
        )
        await self.recorder.record(vc, "Normal", "Deleted", "control plane destroyed")
        return None

    async def _undo(self, vc: Obj) -> None:
        """Stop what was started for a VirtualCluster that turns out to be refused."""
        try:
            await self.provider.destroy(vc)
        except PROVIDER_FAILURES as error:
            log.warning("VirtualCluster %s: undoing its start: %s", phases.vc_key(vc), error)
        await self._forget(vc)

    async def _forget(self, vc: Obj) -> None:
        """Its Secrets and cached client go with its control plane."""
        for secret in (phases.admin_secret(vc), phases.cert_secret(vc)):
            with contextlib.suppress(NotFound):
                await self.host.delete(SECRETS, secret, namespace_of(vc))
        if self.forget is not None:
            await self.forget(phases.vc_key(vc))

    async def _ensure_finalizer(self, vc: Obj) -> Obj:
        finalizers = _finalizers(vc)
        if names.FINALIZER_VIRTUAL_CLUSTER in finalizers:
            return vc
        return await self._finalizers(vc, [*finalizers, names.FINALIZER_VIRTUAL_CLUSTER])

    async def _finalizers(self, vc: Obj, finalizers: list[str]) -> Obj:
        """Set the finalizers; the resourceVersion makes a concurrent change a Conflict
        (retried by the queue) instead of lost."""
        meta = vc["metadata"]
        body = {"metadata": {"finalizers": finalizers, "resourceVersion": meta["resourceVersion"]}}
        try:
            return await self.host.patch(
                VIRTUAL_CLUSTERS, meta["name"], body, namespace=meta["namespace"]
            )
        except NotFound:
            return vc


def _finalizers(vc: Obj) -> list[str]:
    return list(vc["metadata"].get("finalizers") or [])


def _secret(vc: Obj, name: str, data: dict[str, str]) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": name,
            "namespace": namespace_of(vc),
            "labels": {names.LABEL_VIRTUAL_CLUSTER: phases.label_value(vc)},
        },
        "stringData": data,
    }
