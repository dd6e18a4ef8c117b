"""The member controller: linked Clusters join and leave the manager as their objects say.

For every Cluster with ``clusterLinkOptions.enable`` it loads the member's kubeconfig (Secret
reference or inline), registers the member with the manager — whose cluster hook creates
its caches (``watches.wire_member``) — and holds the ``kosmos.io/network-manager``
finalizer. The root Cluster is the host itself: with link enabled the host's own client
serves as its member, no kubeconfig needed. When the Cluster is deleted (``kosmosctl
unjoin``) or its link disabled, what ClusterLink made for it goes — its ClusterNodes and
NodeConfigs in the host — and then the finalizer.

The cluster-manager holds its own finalizer (``kosmos.io/cluster-manager``) on the same
Clusters. Both edit ``metadata.finalizers`` as a compare-and-swap on the resourceVersion
they read, so neither can drop the other's; a conflict is retried from the fresh cache.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import logging

from kosmos.api import names
from kosmos.api.leafmodel import is_root_cluster
from kosmos.api.objects import Obj
from kosmos.api.resources import CLUSTERNODES, CLUSTERS, NODECONFIGS, SECRETS
from kosmos.clusterlink import ippools
from kosmos.clusterlink.link import Link, link_enabled
from kosmos.clusterlink.watches import wire_member
from kosmos.kube.client import Client
from kosmos.kube.component import HOST
from kosmos.kube.config import from_kubeconfig_text
from kosmos.kube.controller import Request, Result
from kosmos.kube.errors import KubeconfigError, NotFound

log = logging.getLogger("kosmos.clusterlink.members")

FINALIZER = names.FINALIZER_NETWORK_MANAGER
#: a kubeconfig Secret outside kosmos-system is not watched: look at it again this often
UNWATCHED_SECRET_SECONDS = 60.0


class MemberReconciler:
    """Keyed by Cluster name (``Request(HOST, "", name)``)."""

    def __init__(self, link: Link) -> None:
        self.link = link
        self._fingerprints: dict[str, str] = {}

    async def __call__(self, request: Request) -> Result | None:
        name = request.name
        cluster = self.link.clusters.store.get(name)
        if cluster is None:
            await self._forget(name)
            return None
        meta = cluster["metadata"]
        finalizers = meta.get("finalizers") or []
        if meta.get("deletionTimestamp") or not link_enabled(cluster):
            if FINALIZER in finalizers:
                await self._clean_up(name)
                await self._set_finalizer(cluster, present=False)
            await self._forget(name)
            return None
        if FINALIZER not in finalizers:
            await self._set_finalizer(cluster, present=True)
        return await self._join(cluster)

    # -- joining ---------------------------------------------------------------------------

    async def _join(self, cluster: Obj) -> Result | None:
        name = cluster["metadata"]["name"]
        if is_root_cluster(cluster) and name == HOST:
            wire_member(self.link, HOST)  # the host's own client and caches
            self._forgive(name)
            return None
        try:
            text = "" if is_root_cluster(cluster) else await self._kubeconfig(cluster)
            await self._register(name, text)
        except KubeconfigError as exc:
            self.link.member_errors[name] = str(exc)
            self.link.enqueue("cidrs", name)
            ref = cluster.get("spec", {}).get("kubeconfigSecretRef") or {}
            if ref.get("namespace", names.SYSTEM_NAMESPACE) != names.SYSTEM_NAMESPACE:
                return Result(requeue_after=UNWATCHED_SECRET_SECONDS)
            return None  # a change of the Secret or the Cluster brings us back
        self._forgive(name)
        return None

    def _forgive(self, name: str) -> None:
        if self.link.member_errors.pop(name, None) is not None:
            self.link.enqueue("cidrs", name)

    async def _kubeconfig(self, cluster: Obj) -> str:
        name = cluster["metadata"]["name"]
        spec = cluster.get("spec", {})
        if spec.get("kubeconfig"):
            return base64.b64decode(spec["kubeconfig"]).decode()
        ref = spec.get("kubeconfigSecretRef") or {}
        if not ref.get("name"):
            raise KubeconfigError(
                name, "the Cluster has neither kubeconfigSecretRef nor kubeconfig"
            )
        namespace = ref.get("namespace", names.SYSTEM_NAMESPACE)
        secret = await self._secret(namespace, ref["name"])
        key = ref.get("key", names.KUBECONFIG_SECRET_KEY)
        where = f"Secret {namespace}/{ref['name']}"
        if secret is None:
            raise KubeconfigError(
                name, f"{where} (spec.kubeconfigSecretRef) not found; `kosmosctl join` creates it"
            )
        data = (secret.get("data") or {}).get(key)
        if not data:
            raise KubeconfigError(name, f"{where} has no key {key}")
        return base64.b64decode(data).decode()

    async def _secret(self, namespace: str, name: str) -> Obj | None:
        """From the cache in kosmos-system (watched); elsewhere read each time."""
        if namespace == names.SYSTEM_NAMESPACE:
            return self.link.secrets.store.get(f"{namespace}/{name}")
        try:
            return await self.link.manager.client(HOST).get(SECRETS, name, namespace)
        except NotFound:
            return None

    async def _register(self, name: str, text: str) -> None:
        """Add the member to the manager; a changed kubeconfig replaces its client.

        ``text`` empty: the root Cluster under another name than the host's; it reuses the
        host's configuration (same apiserver, same credentials).
        """
        fingerprint = hashlib.sha256(text.encode()).hexdigest()
        manager = self.link.manager
        if name in manager.cluster_names:
            if self._fingerprints.get(name) == fingerprint:
                return
            await manager.remove_cluster(name)
        if text:
            config = await from_kubeconfig_text(name, text, origin=f"Cluster {name} kubeconfig")
        else:
            config = dataclasses.replace(manager.client(HOST).config, name=name)
        config.qps, config.burst = self.link.options.member_qps, self.link.options.member_burst
        manager.add_cluster(name, Client(config))
        self._fingerprints[name] = fingerprint
        log.info("member %s registered", name)

    async def _forget(self, name: str) -> None:
        self._fingerprints.pop(name, None)
        self.link.member_errors.pop(name, None)
        if name != HOST:  # the host stays; its member caches idle while the link is off
            await self.link.manager.remove_cluster(name)

    # -- leaving ---------------------------------------------------------------------------

    async def _clean_up(self, name: str) -> None:
        """Delete the member's ClusterNodes, then its NodeConfigs (agents then tear down),
        and the IPPools we made in it.

        Read from the apiserver, not the cache: the finalizer goes right after, so nothing
        created a moment ago may be missed.
        """
        if name in self.link.manager.cluster_names:
            await ippools.delete_all(self.link.manager.client(name))
        host = self.link.manager.client(HOST)
        selector = f"{names.LABEL_CLUSTER}={name}"
        for resource in (CLUSTERNODES, NODECONFIGS):
            with contextlib.suppress(NotFound):  # NodeConfigs: CRD may not be installed
                for obj in (await host.list(resource, label_selector=selector)).items:
                    with contextlib.suppress(NotFound):
                        await host.delete(resource, obj["metadata"]["name"])
        log.info("member %s: ClusterNodes, NodeConfigs and IPPools removed", name)

    async def _set_finalizer(self, cluster: Obj, *, present: bool) -> None:
        meta = cluster["metadata"]
        finalizers = [f for f in meta.get("finalizers") or [] if f != FINALIZER]
        if present:
            finalizers.append(FINALIZER)
        patch = {"metadata": {"finalizers": finalizers, "resourceVersion": meta["resourceVersion"]}}
        with contextlib.suppress(NotFound):
            await self.link.manager.client(HOST).patch(CLUSTERS, meta["name"], patch)
