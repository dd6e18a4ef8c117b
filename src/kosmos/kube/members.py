"""Member clusters join and leave a component's manager as their Cluster objects say.

Every component that works in members (the cluster-manager, the network-manager, the
scheduler extender, and what comes after them) needs the same loop: for each Cluster the
component serves, read the member's kubeconfig (inline ``spec.kubeconfig`` or the Secret
``spec.kubeconfigSecretRef`` names), register a client for it with the manager (whose
cluster hooks then start the member's informers), replace that client when the kubeconfig
changes, and drop it when the Cluster goes. A component that leaves state in members also
holds a finalizer on the Cluster and removes that state before letting the Cluster go.

``MemberRegistry`` is that loop as one reconciler keyed by Cluster name
(``Request(host, "", name)``). What differs between components is said once, in a
``MemberPolicy`` (which Clusters, which finalizer, what the root Cluster means) and a
``MemberHooks`` subclass (what to do after a join, on failure, before leaving).

Finalizers are edited as a compare-and-swap on the resourceVersion that was read, so two
components holding their own finalizers on one Cluster never drop each other's: a conflict
is retried from the fresh cache.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from kosmos.api import names
from kosmos.api.leafmodel import is_root_cluster
from kosmos.api.objects import Obj, is_deleting, name_of
from kosmos.api.resources import CLUSTERS, SECRETS
from kosmos.kube.client import Client
from kosmos.kube.config import from_kubeconfig_text
from kosmos.kube.controller import Request, Result
from kosmos.kube.errors import KubeconfigError, KubeError, NotFound
from kosmos.kube.informer import Informer
from kosmos.kube.manager import Manager

log = logging.getLogger("kosmos.kube.members")

#: a kubeconfig Secret no cache watches cannot wake us: look at it again this often
UNWATCHED_SECRET_SECONDS = 60.0


@dataclass(frozen=True)
class MemberPolicy:
    """What makes a Cluster a member of this component, and how its client is made."""

    #: the Cluster is served by this component (e.g. its tree or link is enabled)
    serves: Callable[[Obj], bool]
    #: held while the component has state in the member; None: nothing to clean up
    finalizer: str | None = None
    #: "skip": the root Cluster is no member; "host": it is served by the host's own client
    root: Literal["skip", "host"] = "skip"
    qps: float = 50.0
    burst: int = 100


class MemberHooks:
    """What a component does around the registry's work; each default does nothing."""

    async def joined(self, cluster: Obj) -> Result | None:
        """The member's client is registered (or unchanged): the component's own follow-up."""
        return None

    async def failed(self, cluster: Obj, error: KubeconfigError) -> Result | None:
        """The kubeconfig could not be read or loaded; the return value decides the retry."""
        return None

    async def leaving(self, name: str) -> None:
        """The Cluster is going (or no longer served): remove what the component made."""

    def forgotten(self, name: str) -> None:
        """The member's client is gone: drop what the component remembered of it."""


class MemberRegistry:
    """Reconciler keyed by Cluster name: the member set of one manager follows the Clusters."""

    def __init__(
        self,
        manager: Manager,
        host: str,
        clusters: Informer,
        policy: MemberPolicy,
        hooks: MemberHooks | None = None,
        *,
        secrets: Informer | None = None,
    ) -> None:
        self.manager = manager
        self.host = host
        self.clusters = clusters
        self.policy = policy
        self.hooks = hooks or MemberHooks()
        #: a cache of kubeconfig Secrets (in its namespace, or all); others are read with GET
        self.secrets = secrets
        self._fingerprints: dict[str, str] = {}

    async def __call__(self, request: Request) -> Result | None:
        name = request.name
        cluster = self.clusters.store.get(name)
        if cluster is None:
            await self._forget(name)
            return None
        if is_root_cluster(cluster) and self.policy.root == "skip":
            return None
        finalizer = self.policy.finalizer
        finalizers = cluster["metadata"].get("finalizers") or []
        if is_deleting(cluster) or not self.policy.serves(cluster):
            if finalizer and finalizer in finalizers:
                await self.hooks.leaving(name)
                await self._set_finalizer(cluster, present=False)
            await self._forget(name)
            return None
        if finalizer and finalizer not in finalizers:
            await self._set_finalizer(cluster, present=True)
        try:
            await self._register(cluster)
        except KubeconfigError as exc:
            result = await self.hooks.failed(cluster, exc)
            if result is None and not self._secret_watched(cluster):
                result = Result(requeue_after=UNWATCHED_SECRET_SECONDS)
            return result
        return await self.hooks.joined(cluster)

    # -- credentials ------------------------------------------------------------------------

    async def kubeconfig(self, cluster: Obj) -> str:
        """The member's kubeconfig text; KubeconfigError says what is missing, malformed or
        unreadable (a Secret read the host refused or could not answer goes to
        ``hooks.failed`` too, with the host's error)."""
        name = name_of(cluster)
        spec = cluster.get("spec") or {}
        try:
            if spec.get("kubeconfig"):
                return base64.b64decode(spec["kubeconfig"]).decode()
            ref = spec.get("kubeconfigSecretRef") or {}
            if not ref.get("name"):
                message = "the Cluster has neither kubeconfigSecretRef nor kubeconfig"
                raise KubeconfigError(name, message)
            namespace = ref.get("namespace") or names.SYSTEM_NAMESPACE
            where = f"Secret {namespace}/{ref['name']}"
            try:
                secret = await self._secret(namespace, ref["name"])
            except KubeError as exc:  # forbidden, host unreachable: unreadable for now
                raise KubeconfigError(name, f"{where} could not be read: {exc}") from exc
            if secret is None:
                message = (
                    f"{where} (spec.kubeconfigSecretRef) not found; `kosmosctl join` creates it"
                )
                raise KubeconfigError(name, message)
            key = ref.get("key") or names.KUBECONFIG_SECRET_KEY
            data = (secret.get("data") or {}).get(key)
            if not data:
                raise KubeconfigError(name, f"{where} has no key {key}")
            return base64.b64decode(data).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise KubeconfigError(name, f"kubeconfig is not base64 text: {exc}") from exc

    def _secret_watched(self, cluster: Obj) -> bool:
        """A change of the credentials wakes us: they are inline (the Cluster is watched) or
        in a Secret whose namespace the Secret cache covers."""
        spec = cluster.get("spec") or {}
        if spec.get("kubeconfig"):
            return True
        namespace = (spec.get("kubeconfigSecretRef") or {}).get("namespace")
        return self._cached(namespace or names.SYSTEM_NAMESPACE)

    def _cached(self, namespace: str) -> bool:
        return self.secrets is not None and self.secrets.namespace in (None, namespace)

    async def _secret(self, namespace: str, name: str) -> Obj | None:
        """From the Secret cache where it covers the namespace; elsewhere read each time."""
        if self.secrets is not None and self._cached(namespace):
            return self.secrets.store.get(f"{namespace}/{name}")
        try:
            return await self.manager.client(self.host).get(SECRETS, name, namespace)
        except NotFound:
            return None

    # -- the manager's member set ---------------------------------------------------------------

    async def _register(self, cluster: Obj) -> None:
        """Add the member to the manager; a changed kubeconfig replaces its client.

        The root Cluster (policy ``root="host"``) reuses the host's configuration: under the
        host's own name it is the host's client itself, under another name a copy of it.
        """
        name = name_of(cluster)
        if is_root_cluster(cluster) and name == self.host:
            return
        text = "" if is_root_cluster(cluster) else await self.kubeconfig(cluster)
        fingerprint = hashlib.sha256(text.encode()).hexdigest()
        manager = self.manager
        if name in manager.cluster_names:
            if self._fingerprints.get(name) == fingerprint:
                return
            await manager.remove_cluster(name)
        if text:
            config = await from_kubeconfig_text(name, text, origin=f"Cluster {name} kubeconfig")
        else:
            config = dataclasses.replace(manager.client(self.host).config, name=name)
        config.qps, config.burst = self.policy.qps, self.policy.burst
        manager.add_cluster(name, Client(config))
        self._fingerprints[name] = fingerprint
        log.info("%s: member %s registered", manager.name, name)

    async def _forget(self, name: str) -> None:
        self._fingerprints.pop(name, None)
        self.hooks.forgotten(name)
        if name != self.host and name in self.manager.cluster_names:  # the host always stays
            await self.manager.remove_cluster(name)
            log.info("%s: member %s forgotten", self.manager.name, name)

    async def _set_finalizer(self, cluster: Obj, *, present: bool) -> None:
        meta = cluster["metadata"]
        finalizers = [f for f in meta.get("finalizers") or [] if f != self.policy.finalizer]
        if present and self.policy.finalizer:
            finalizers.append(self.policy.finalizer)
        patch = {"metadata": {"finalizers": finalizers, "resourceVersion": meta["resourceVersion"]}}
        with contextlib.suppress(NotFound):
            await self.manager.client(self.host).patch(CLUSTERS, meta["name"], patch)
