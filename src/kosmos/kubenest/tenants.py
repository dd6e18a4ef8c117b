"""Clients of tenant apiservers, made from the admin kubeconfig the VirtualCluster publishes
(``spec.kubeconfig``), one per tenant, remade when that kubeconfig changes."""

from __future__ import annotations

import base64
import binascii
import hashlib

from kosmos.api.objects import Obj
from kosmos.kube import config as kube_config
from kosmos.kube.client import Client
from kosmos.kube.errors import KubeconfigError
from kosmos.kubenest import phases


class Tenants:
    def __init__(self) -> None:
        self._clients: dict[str, tuple[str, Client]] = {}

    async def client(self, vc: Obj) -> Client:
        """The tenant's admin client; KubeconfigError when ``spec.kubeconfig`` is not one."""
        key = phases.vc_key(vc)
        encoded = str((vc.get("spec") or {}).get("kubeconfig") or "")
        digest = hashlib.sha256(encoded.encode()).hexdigest()
        cached = self._clients.get(key)
        if cached is not None and cached[0] == digest:
            return cached[1]
        try:
            text = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise KubeconfigError(key, f"spec.kubeconfig is not base64: {exc}") from exc
        config = await kube_config.from_kubeconfig_text(
            f"tenant {key}", text, origin=f"VirtualCluster {key} spec.kubeconfig"
        )
        client = Client(config)
        if cached is not None:
            await cached[1].close()
        self._clients[key] = (digest, client)
        return client

    async def forget(self, key: str) -> None:
        cached = self._clients.pop(key, None)
        if cached is not None:
            await cached[1].close()

    async def close(self) -> None:
        for key in list(self._clients):
            await self.forget(key)
