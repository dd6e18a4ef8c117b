"""k8s-in-k8s, the writes: what ``treeplugin`` describes, made level-based, and removed.

``ensure`` is called by the control-plane reconciler on every pass of a published
VirtualCluster with the plugin; each step is idempotent (server-side apply, create of what
is missing) and the first one that must wait says so, for the ``ControlPlaneReady``
condition. ``remove`` runs before the provider destroys the control plane: the binding
goes first (a tenant cluster-manager still running can create nothing more), then every
pod and copy the tenant's ClusterTree made in the host (by its owner label), then the
ServiceAccount and its token.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from kosmos.api import crds, names
from kosmos.api.objects import Obj, name_of, namespace_of
from kosmos.api.resources import (
    CLUSTERROLEBINDINGS,
    CLUSTERROLES,
    CLUSTERS,
    CONFIGMAPS,
    CUSTOMRESOURCEDEFINITIONS,
    MUTATING_ADMISSION_POLICIES,
    MUTATING_ADMISSION_POLICY_BINDINGS,
    NAMESPACES,
    PERSISTENTVOLUMECLAIMS,
    PODS,
    SECRETS,
    SERVICEACCOUNTS,
    Resource,
)
from kosmos.kube.client import Client
from kosmos.kube.errors import AlreadyExists, NotFound
from kosmos.kubenest import treeplugin
from kosmos.kubenest.provider import Provider, ProviderError

log = logging.getLogger("kosmos.kubenest.tree")

TenantClient = Callable[[Obj], Awaitable[Client]]
_HOST_KINDS = (SERVICEACCOUNTS, SECRETS, CLUSTERROLES, CLUSTERROLEBINDINGS)
#: what the tenant's ClusterTree creates in the host, removed by its owner label
_MADE_IN_HOST = (PODS, CONFIGMAPS, SECRETS, SERVICEACCOUNTS, PERSISTENTVOLUMECLAIMS)


class TreeSetup:
    def __init__(self, host: Client, tenant_client: TenantClient, provider: Provider) -> None:
        self.host = host
        self.tenant_client = tenant_client
        self.provider = provider

    async def ensure(self, vc: Obj, nodes: Sequence[str]) -> str:
        """Every step for ``nodes`` (the GlobalNodes the VirtualCluster holds); "" once the
        tenant's ClusterTree runs with them, else what it waits for; a ProviderError, before
        anything is made, when the provider cannot run it."""
        refused = self.provider.tree_unsupported()
        if refused:
            raise ProviderError(refused)
        tenant = await self.tenant_client(vc)
        await _ensure_crds(tenant)
        credential = await self._credential(vc)
        if credential is None:
            where = f"{namespace_of(vc)}/{treeplugin.token_secret(vc)}"
            return f"ClusterTree: waiting for the host to fill the token Secret {where}"
        text = treeplugin.kubeconfig(self.host.config.server, *credential)
        with contextlib.suppress(AlreadyExists):
            namespace = {"apiVersion": "v1", "kind": "Namespace"}
            await tenant.create(
                NAMESPACES, {**namespace, "metadata": {"name": names.SYSTEM_NAMESPACE}}
            )
        await _apply(tenant, SECRETS, treeplugin.tenant_secret(text))
        policy, binding = treeplugin.toleration_policy()
        await _apply(tenant, MUTATING_ADMISSION_POLICIES, policy)
        await _apply(tenant, MUTATING_ADMISSION_POLICY_BINDINGS, binding)
        try:
            await _apply(tenant, CLUSTERS, treeplugin.cluster_object(nodes))
        except NotFound:  # the CRD was just created: not served yet
            return "ClusterTree: waiting for the tenant to serve the Cluster CRD"
        return await self.provider.ensure_tree(vc, treeplugin.owner(vc))

    async def _credential(self, vc: Obj) -> tuple[str, str] | None:
        """The host objects, then the token the host's token controller put in the Secret."""
        for resource, body in zip(_HOST_KINDS, treeplugin.host_objects(vc), strict=True):
            await _apply(self.host, resource, body)
        secret = await self.host.get(SECRETS, treeplugin.token_secret(vc), namespace_of(vc))
        return treeplugin.token_of(secret)

    async def remove(self, vc: Obj) -> None:
        """Revoke, then clean the host of the tenant's pods and copies; idempotent."""
        for resource, name in (
            (CLUSTERROLEBINDINGS, treeplugin.cluster_role(vc)),
            (CLUSTERROLES, treeplugin.cluster_role(vc)),
        ):
            with contextlib.suppress(NotFound):
                await self.host.delete(resource, name)
        selector = treeplugin.owner_selector(vc)
        for resource in _MADE_IN_HOST:
            for obj in (await self.host.list(resource, label_selector=selector)).items:
                await _delete(self.host, resource, obj)
        for resource, name in (
            (SECRETS, treeplugin.token_secret(vc)),
            (SERVICEACCOUNTS, treeplugin.service_account(vc)),
        ):
            with contextlib.suppress(NotFound):
                await self.host.delete(resource, name, namespace_of(vc))
        log.info(
            "VirtualCluster %s/%s: ClusterTree's host objects removed",
            namespace_of(vc),
            name_of(vc),
        )


async def _ensure_crds(tenant: Client) -> None:
    """The Kosmos CRDs the tenant lacks (its cluster-manager reads Clusters, convert
    policies, PromotePolicies)."""
    present = {name_of(c) for c in (await tenant.list(CUSTOMRESOURCEDEFINITIONS)).items}
    for manifest in crds.crd_manifests():
        if manifest["metadata"]["name"] not in present:
            await _apply(tenant, CUSTOMRESOURCEDEFINITIONS, manifest)


async def _apply(client: Client, resource: Resource, body: Obj) -> Obj:
    return await client.apply(
        resource, body, field_manager=names.FIELD_MANAGER_KUBENEST, force=True
    )


async def _delete(client: Client, resource: Resource, obj: Obj) -> None:
    meta = obj["metadata"]
    with contextlib.suppress(NotFound):
        await client.delete(resource, meta["name"], meta.get("namespace"), uid=meta.get("uid"))
