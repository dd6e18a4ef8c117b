"""Members join and leave the extender's manager as their Cluster objects say.

The extender needs each member's nodes and pods (true capacity), so it reads the member
credentials the way the cluster-manager does: ``spec.kubeconfig`` inline, or the Secret
``spec.kubeconfigSecretRef`` names (read with a GET, so the extender needs ``get`` on that
Secret only, not a watch on every Secret). The root Cluster and Clusters with ClusterTree
disabled have no leaf nodes and are skipped. A changed kubeconfig replaces the member's
client; a deleted Cluster stops its informers. A member whose credentials cannot be read
gets a Warning event on its Cluster (its leaf nodes are then not judged for capacity).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging

from kosmos.api import names
from kosmos.api.leafmodel import is_root_cluster, tree_enabled
from kosmos.api.objects import Obj
from kosmos.api.resources import SECRETS
from kosmos.kube.client import Client
from kosmos.kube.component import HOST
from kosmos.kube.config import from_kubeconfig_text
from kosmos.kube.controller import Request, Result
from kosmos.kube.errors import KubeconfigError, KubeError
from kosmos.kube.events import EventRecorder
from kosmos.kube.manager import Manager
from kosmos.scheduler.cache import Caches

log = logging.getLogger("kosmos.scheduler.members")

RETRY_SECONDS = 30.0


class MemberReconciler:
    """Keyed by Cluster name (``Request(HOST, "", name)``)."""

    def __init__(
        self, manager: Manager, caches: Caches, recorder: EventRecorder, qps: tuple[float, int]
    ) -> None:
        self.manager = manager
        self.caches = caches
        self.recorder = recorder
        self.qps, self.burst = qps
        self._fingerprints: dict[str, str] = {}

    async def __call__(self, request: Request) -> Result | None:
        name = request.name
        cluster = self.caches.clusters.store.get(name)
        gone = cluster is None or bool(cluster["metadata"].get("deletionTimestamp"))
        if gone or is_root_cluster(cluster or {}) or not tree_enabled(cluster or {}):
            await self._forget(name)
            return None
        assert cluster is not None
        try:
            text = await self._kubeconfig(cluster)
            await self._register(name, text)
        except KubeError as exc:  # KubeconfigError included
            log.warning("member %s: %s; retrying in %.0fs", name, exc, RETRY_SECONDS)
            message = f"kosmos-scheduler-extender cannot watch this member ({exc}); its leaf "
            message += "nodes are not checked for true capacity until it can"
            await self.recorder.record(cluster, "Warning", "MemberUnavailable", message)
            return Result(requeue_after=RETRY_SECONDS)
        return None

    async def _kubeconfig(self, cluster: Obj) -> str:
        name = cluster["metadata"]["name"]
        spec = cluster.get("spec") or {}
        try:
            if spec.get("kubeconfig"):
                return base64.b64decode(spec["kubeconfig"]).decode()
            ref = spec.get("kubeconfigSecretRef") or {}
            namespace = ref.get("namespace") or names.SYSTEM_NAMESPACE
            host = self.manager.client(HOST)
            secret = await host.get(SECRETS, str(ref.get("name", "")), namespace)
            key = ref.get("key") or names.KUBECONFIG_SECRET_KEY
            data = (secret.get("data") or {}).get(key)
            if not data:
                raise KubeconfigError(name, f"Secret {namespace}/{ref.get('name')} has no {key}")
            return base64.b64decode(data).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise KubeconfigError(name, f"kubeconfig is not base64 text: {exc}") from exc

    async def _register(self, name: str, text: str) -> None:
        fingerprint = hashlib.sha256(text.encode()).hexdigest()
        if name in self.manager.cluster_names:
            if self._fingerprints.get(name) == fingerprint:
                return
            await self.manager.remove_cluster(name)
        config = await from_kubeconfig_text(name, text, origin=f"Cluster {name} kubeconfig")
        config.qps, config.burst = self.qps, self.burst
        self.manager.add_cluster(name, Client(config))
        self._fingerprints[name] = fingerprint
        log.info("member %s registered", name)

    async def _forget(self, name: str) -> None:
        self._fingerprints.pop(name, None)
        if name != HOST and name in self.manager.cluster_names:  # the root Cluster is HOST
            await self.manager.remove_cluster(name)
            log.info("member %s forgotten", name)
