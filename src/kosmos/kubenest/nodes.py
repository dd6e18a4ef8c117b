"""The Node reconciler: which pool nodes a VirtualCluster holds, and moving them.

It starts once the control plane is published (``spec.kubeconfig``). The pool decides
(``pool.assign``); the order of writes keeps every node findable: GlobalNodes are marked
``occupied`` by this VirtualCluster before anything moves, ``nodeInfos`` lists every node it
holds (those leaving too) until they are back, and each move is idempotent
(``kubenest.moves``). Readiness is read in the tenant: Completed once every node is Ready
there. In Deleting it returns every node; the control-plane reconciler then destroys the
rest.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from kosmos.api import nodeagent
from kosmos.api.objects import Obj, annotations_of, name_of, namespace_of, node_ready
from kosmos.api.resources import NODES, VIRTUAL_CLUSTERS
from kosmos.kube.client import Client
from kosmos.kube.controller import Request, Result
from kosmos.kube.errors import Conflict, KubeError, NotFound
from kosmos.kube.events import EventRecorder
from kosmos.kube.informer import Informer
from kosmos.kubenest import joins, moves, phases, pool, realnodes, status, treeplugin
from kosmos.kubenest.agent import AgentClient, AgentError

log = logging.getLogger("kosmos.kubenest.nodes")

WAIT_READY = 2.0  # while nodes become Ready in the tenant
RETRY = 5.0  # after a failed move, or a tenant not answering
SHORT_RETRY = 15.0  # not enough nodes (GlobalNode changes wake it sooner)
RECHECK = 30.0  # nothing watches the tenant's nodes: look at their readiness now and then
CONFLICT_RETRY = 0.5  # a GlobalNode changed under the assignment: the cache catches up

TenantClient = Callable[[Obj], Awaitable[Client]]


class NodeReconciler:
    def __init__(
        self,
        host: Client,
        recorder: EventRecorder,
        globalnodes: Informer,
        tenant_client: TenantClient,
        agents: AgentClient | None = None,
        *,
        control_planes: Informer | None = None,
    ) -> None:
        self.host = host
        #: host pods of tenants' control planes (in-cluster provider): nodes not to take
        self.control_planes = control_planes
        self.recorder = recorder
        self.globalnodes = globalnodes
        self.tenant_client = tenant_client
        self.agents = agents or AgentClient(host)
        #: one assignment at a time: two VirtualClusters must not both take a free node
        self._pool_lock = asyncio.Lock()

    async def __call__(self, request: Request) -> Result | None:
        try:
            vc = await self.host.get(VIRTUAL_CLUSTERS, request.name, request.namespace)
        except NotFound:
            return None
        action = phases.node_action(vc)
        if action == "idle":
            return None
        key = phases.vc_key(vc)
        pool_nodes = {name_of(g): g for g in self.globalnodes.store.list()}
        mine = [n for n, g in pool_nodes.items() if pool.holder_of(g) == key]
        if action == "return":
            return await self._return_all(vc, await self._mover(vc, leaving=True), pool_nodes, mine)
        try:
            mover = await self._mover(vc)
        except KubeError as error:
            change = phases.move_failed("(tenant client)", str(error))
            await status.apply(self.host, self.recorder, vc, change)
            return Result(requeue_after=RETRY)
        return await self._assign(vc, mover, pool_nodes, mine)

    async def _mover(self, vc: Obj, *, leaving: bool = False) -> moves.Mover:
        """The mover of ``vc``'s nodes; leaving, a tenant without a working kubeconfig
        still gives its nodes back (without it)."""
        key = phases.vc_key(vc)
        try:
            tenant: Client | None = await self.tenant_client(vc)
        except KubeError as error:
            if not leaving:
                raise
            log.warning("VirtualCluster %s: no tenant client (%s): returning without", key, error)
            tenant = None
        return moves.Mover(self.host, tenant, key, leaving=leaving)

    async def _assign(
        self, vc: Obj, mover: moves.Mover, pool_nodes: dict[str, Obj], mine: list[str]
    ) -> Result | None:
        current = list(dict.fromkeys([*phases.node_infos(vc), *mine]))
        async with self._pool_lock:
            # the cache may lag our own last take: the precondition in occupy catches that
            busy = pool.busy_nodes(self.control_planes.store.list() if self.control_planes else ())
            wanted = pool.assign(
                mover.vc_key, phases.policies(vc), pool_nodes.values(), current, busy
            )
            if wanted.short:
                await status.apply(self.host, self.recorder, vc, phases.short(wanted.short))
                return Result(requeue_after=SHORT_RETRY)
            tree = treeplugin.enabled(vc)  # nodes stay in the host: none joins the tenant
            real = [n for n in wanted.take if not tree and not moves.is_kwok(pool_nodes[n])]
            why = joins.unreachable(vc) if real else ""
            if why:
                await status.apply(self.host, self.recorder, vc, phases.real_nodes(real, why))
                return Result(requeue_after=SHORT_RETRY)
            try:
                for name in wanted.take:
                    await mover.occupy(pool_nodes[name])
            except Conflict:  # taken or changed since the cache saw it: decide again
                return Result(requeue_after=CONFLICT_RETRY)
        holding = list(dict.fromkeys([*wanted.nodes, *wanted.give_back, *current]))
        vc = await self._record(vc, holding)
        movers = self._real_mover(vc, mover)
        for name in wanted.nodes:
            settled = name not in wanted.take and moves.promoted(pool_nodes[name])
            step = mover.promote if moves.is_kwok(pool_nodes[name]) else movers.promote
            step = mover.lend if tree else step
            if not settled and not await self._move(vc, step, pool_nodes, name):
                return Result(requeue_after=RETRY)
        for name in wanted.give_back:
            step = mover.give_back if moves.is_kwok(pool_nodes[name]) else movers.give_back
            step = mover.release if moves.lent(pool_nodes[name]) else step
            if not await self._move(vc, step, pool_nodes, name):
                return Result(requeue_after=RETRY)
        vc = await self._record(vc, list(wanted.nodes))
        not_ready = await _not_ready(mover.require_tenant(), wanted.nodes)
        changed = bool(wanted.take or wanted.give_back)
        await status.apply(
            self.host, self.recorder, vc, phases.nodes(vc, wanted.nodes, not_ready, changed)
        )
        return Result(requeue_after=WAIT_READY if not_ready else RECHECK)

    async def _return_all(
        self, vc: Obj, mover: moves.Mover, pool_nodes: dict[str, Obj], mine: list[str]
    ) -> Result | None:
        """Deleting: every node this VirtualCluster holds goes back to the host."""
        holding = list(dict.fromkeys([*phases.node_infos(vc), *mine]))
        real = self._real_mover(vc, mover)
        for name in holding:
            globalnode = pool_nodes.get(name)
            if globalnode is None or pool.holder_of(globalnode) not in ("", mover.vc_key):
                continue  # gone from the pool, or someone else's now: not ours to move
            if moves.lent(globalnode):
                step = mover.release  # a leaf node of the tenant: it never left the host
            elif moves.is_kwok(globalnode):
                step = mover.give_back
            elif realnodes.HOST_SPEC_ANNOTATION in annotations_of(globalnode):
                step = real.give_back  # it left the host (or began to): bring it back
            else:
                step = mover.release  # never left the host: just free it
            if not await self._move(vc, step, pool_nodes, name):
                return Result(requeue_after=RETRY)
        await self._record(vc, [])
        return None

    def _real_mover(self, vc: Obj, mover: moves.Mover) -> realnodes.RealMover:
        async def join_for(node: str) -> nodeagent.Join:
            return await joins.join_for(self.host, mover.require_tenant(), vc, node)

        return realnodes.RealMover(mover, self.agents, join_for)

    async def _move(
        self,
        vc: Obj,
        step: Callable[[Obj], Awaitable[None]],
        pool_nodes: dict[str, Obj],
        name: str,
    ) -> bool:
        try:
            await step(pool_nodes[name])
        except realnodes.NotYet as waiting:
            await status.apply(self.host, self.recorder, vc, phases.moving(name, waiting.message))
            return False
        except (KubeError, AgentError, realnodes.MoveError) as error:
            log.warning("VirtualCluster %s: moving %s: %s", phases.vc_key(vc), name, error)
            await status.apply(self.host, self.recorder, vc, phases.move_failed(name, str(error)))
            return False
        return True

    async def _record(self, vc: Obj, held: Sequence[str]) -> Obj:
        """``spec.promoteResources.nodeInfos``: the nodes this VirtualCluster holds."""
        if phases.node_infos(vc) == list(held):
            return vc
        infos = [{"nodeName": n} for n in held]
        return await self.host.patch(
            VIRTUAL_CLUSTERS,
            name_of(vc),
            {"spec": {"promoteResources": {"nodeInfos": infos}}},
            namespace=namespace_of(vc),
        )


async def _not_ready(tenant: Client, wanted: Sequence[str]) -> list[str]:
    """The wanted nodes not (yet) Ready in the tenant."""
    ready = {name_of(n) for n in (await tenant.list(NODES)).items if node_ready(n)}
    return [n for n in wanted if n not in ready]
