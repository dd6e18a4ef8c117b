"""The GlobalNode controller: one GlobalNode per host Node in the pool, same name.

Level-based, keyed by node name, woken by host Nodes and GlobalNodes alike. What it owns
and what it never touches:

- ``spec.nodeIP`` and ``spec.labels`` follow the host Node (server-side apply as
  ``kosmos-kubenest``, forcing: the Node is their only source).
- ``spec.state`` is set once, when the GlobalNode is created (``pool.global_node``), and never
  again here: the VirtualCluster controllers move nodes between free and occupied. So the
  GlobalNode is created with a plain POST of ``state`` alone, and the applies that follow
  leave ``state`` out (an apply that had once named ``state`` would later remove it by leaving
  it out). The POST names no label either: a field it set with the value an apply then names
  too would be co-owned, and a label the node loses would then stay on the GlobalNode.
- A host Node that is gone (or leaves the pool: now a leaf node, or excluded) takes its
  GlobalNode with it, unless the GlobalNode is ``occupied``: the node then lives in a tenant
  (a kwok node is deleted from the host while it is promoted) and the GlobalNode is the only
  record of where it is. That check reads the GlobalNode live, not from the cache, and the
  delete names its resourceVersion: a node being promoted right now is never lost.
"""

from __future__ import annotations

import logging
from typing import Any

from kosmos.api import names
from kosmos.api.objects import Obj
from kosmos.api.resources import GLOBAL_NODES, NODES
from kosmos.kube import component
from kosmos.kube.builder import Watch, by_name, controller
from kosmos.kube.client import Client
from kosmos.kube.controller import Request, Result, TerminalError
from kosmos.kube.errors import Conflict, Invalid, NotFound
from kosmos.kube.events import EventRecorder
from kosmos.kube.store import Store
from kosmos.kubenest import pool

log = logging.getLogger("kosmos.kubenest.globalnodes")

CONTROLLER = "globalnode"
#: the fields this controller keeps in step with the host Node (state is not one)
OWNED = ("nodeIP", "labels")


class GlobalNodeSync:
    """Reconciles the GlobalNode named like a host Node (``Request.name``)."""

    def __init__(
        self,
        client: Client,
        nodes: Store,
        globalnodes: Store,
        recorder: EventRecorder | None = None,
    ) -> None:
        self.client = client
        self.nodes = nodes
        self.globalnodes = globalnodes
        self.recorder = recorder

    async def __call__(self, request: Request) -> Result | None:
        name = request.name
        node = self.nodes.get(name)
        current = self.globalnodes.get(name)
        wanted = pool.global_node(node, current) if node is not None else None
        if wanted is None:
            if current is not None:
                await self._retire(name)
            return None
        try:
            if current is None:
                await self._create(wanted)
            elif owned(wanted) != owned(current):
                await self._apply(wanted)
        except Invalid as exc:
            await self._report(name, str(exc))
            raise TerminalError(f"GlobalNode {name}: {exc}", "InvalidGlobalNode") from exc
        return None

    async def _create(self, wanted: Obj) -> None:
        name = wanted["metadata"]["name"]
        spec = {k: v for k, v in wanted["spec"].items() if k not in OWNED}
        try:
            await self.client.create(GLOBAL_NODES, {**wanted, "spec": spec})
        except Conflict:  # AlreadyExists: the cache is behind; the apply below still holds
            log.debug("GlobalNode %s already exists", name)
        else:
            log.info("GlobalNode %s created (%s)", name, wanted["spec"]["state"])
        # own nodeIP and labels by apply from now on, so a label the node loses goes too
        await self._apply(wanted)

    async def _apply(self, wanted: Obj) -> None:
        body = {
            "apiVersion": wanted["apiVersion"],
            "kind": wanted["kind"],
            "metadata": {"name": wanted["metadata"]["name"]},
            "spec": owned(wanted),
        }
        await self.client.apply(
            GLOBAL_NODES, body, field_manager=names.FIELD_MANAGER_KUBENEST, force=True
        )

    async def _retire(self, name: str) -> None:
        """Delete the GlobalNode of a node that left the pool, unless it is occupied."""
        try:
            live = await self.client.get(GLOBAL_NODES, name)
        except NotFound:
            return
        if pool.state_of(live) == pool.OCCUPIED:
            log.debug("GlobalNode %s kept: occupied by %s", name, pool.holder_of(live) or "?")
            return
        meta = live["metadata"]
        try:
            await self.client.delete(
                GLOBAL_NODES, name, uid=meta.get("uid"), resource_version=meta["resourceVersion"]
            )
        except NotFound:
            return
        log.info("GlobalNode %s deleted: its node left the pool", name)

    async def _report(self, name: str, message: str) -> None:
        if self.recorder is None:
            return
        node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}
        current = self.nodes.get(name)
        if current is not None:
            node["metadata"] = dict(current["metadata"])
        await self.recorder.record(node, "Warning", "InvalidGlobalNode", message)


def owned(globalnode: Obj) -> dict[str, Any]:
    """The part of ``spec`` this controller owns."""
    spec = globalnode.get("spec") or {}
    return {key: spec[key] for key in OWNED if spec.get(key)}


def build(runtime: component.Runtime) -> None:
    """The GlobalNode controller on the host, woken by Nodes and GlobalNodes."""
    nodes = runtime.manager.informer(component.HOST, NODES)
    globalnodes = runtime.manager.informer(component.HOST, GLOBAL_NODES)
    reconcile = GlobalNodeSync(runtime.host, nodes.store, globalnodes.store, runtime.recorder)
    keys = by_name(component.HOST)
    controller(
        runtime.manager,
        CONTROLLER,
        reconcile,
        watches=[Watch(nodes, keys), Watch(globalnodes, keys)],
    )
