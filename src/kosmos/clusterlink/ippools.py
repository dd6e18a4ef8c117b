"""The IPPool controller: in each Calico member, a disabled IPPool per remote cluster range.

Keyed by member (``Request(cluster, "", "")``); woken when any linked Cluster's CIDRs,
global map or membership change, and by the member's own IPPool events. It acts only where
the Cluster's cni is calico and Calico's IPPool CRD is served; ``remotepools`` computes the
plan. Our pools carry the ``clusterlink-`` prefix and our managed-by label: only those are
ever changed or deleted. They go when their remote cluster leaves, and all of them when the
member itself leaves (``members.py``) or stops being calico.
"""

from __future__ import annotations

import contextlib
import logging

from kosmos.api import names
from kosmos.api.objects import Obj
from kosmos.api.resources import IPPOOLS
from kosmos.clusterlink import discovery, remotepools
from kosmos.clusterlink.forge import FIELD_MANAGER, MANAGED_BY
from kosmos.clusterlink.link import Link
from kosmos.kube.client import Client
from kosmos.kube.controller import Request, Result
from kosmos.kube.errors import KubeError, NotFound

log = logging.getLogger("kosmos.clusterlink.ippools")

POOL_SELECTOR = f"{names.LABEL_MANAGED_BY}={MANAGED_BY}"


class IPPoolReconciler:
    def __init__(self, link: Link) -> None:
        self.link = link
        self._reported: dict[str, set[str]] = {}  # member -> overlap messages already told

    async def __call__(self, request: Request) -> Result | None:
        member = request.cluster
        cluster = self.link.active(member)
        pools = self.link.calico(member, "ippools")
        if cluster is None or pools is None:
            return None  # leaving (members.py cleans up) or no Calico there
        if not pools.has_synced:
            return Result(requeue_after=1.0)
        current = pools.store.list()
        wanted: dict[str, Obj] = {}
        if discovery.cni_of(cluster) == "calico":
            linked = [c for c in self.link.clusters.store.list() if self._linked(c)]
            wanted, overlaps = remotepools.remote_pools(member, linked, current)
            await self._report(cluster, [str(o) for o in overlaps])
        client = self.link.manager.client(member)
        for name, pool in wanted.items():
            if remotepools.needs_apply(pools.store.get(name), pool):
                await client.apply(IPPOOLS, pool, field_manager=FIELD_MANAGER, force=True)
                log.info("%s: IPPool %s applied", member, name)
        for name in remotepools.stale(current, wanted):
            with contextlib.suppress(NotFound):
                await client.delete(IPPOOLS, name)
            log.info("%s: IPPool %s deleted", member, name)
        return None

    def _linked(self, cluster: Obj) -> bool:
        return self.link.active(cluster["metadata"]["name"]) is not None

    async def _report(self, cluster: Obj, messages: list[str]) -> None:
        name = cluster["metadata"]["name"]
        told = self._reported.setdefault(name, set())
        for message in messages:
            if message not in told:
                log.warning("%s: %s", name, message)
                await self.link.recorder.record(cluster, "Warning", "RemoteCIDROverlaps", message)
        self._reported[name] = set(messages)

    def forget(self, member: str) -> None:
        self._reported.pop(member, None)


async def delete_all(client: Client) -> None:
    """Remove every IPPool we made in a leaving member; best effort (it may be gone)."""
    try:
        pools = await client.list(IPPOOLS, label_selector=POOL_SELECTOR)
    except NotFound:
        return  # Calico's CRD is not there: nothing was made
    except KubeError as exc:
        log.warning("%s: our IPPools could not be listed, left behind: %s", client.cluster, exc)
        return
    try:
        for pool in pools.items:
            name = pool["metadata"]["name"]
            if name.startswith(discovery.OWN_POOL_PREFIX):
                with contextlib.suppress(NotFound):
                    await client.delete(IPPOOLS, name)
    except KubeError as exc:
        log.warning("%s: some of our IPPools are left behind: %s", client.cluster, exc)
