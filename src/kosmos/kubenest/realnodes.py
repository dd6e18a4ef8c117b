"""Moving a real node: drained, its kubelet re-pointed by the node's agent, and back.

A real node is a kubelet (and kube-proxy) on a machine; moving it means pointing them at
another apiserver, which only its node-agent can do (:mod:`kosmos.kubenest.agent`). The
order keeps the node findable and its pods safe:

* into a tenant: the host's copy is cordoned and drained (PodDisruptionBudgets hold), its
  spec (pod range, taints) saved on the GlobalNode, then the agent joins the tenant, then
  the host's Node is deleted (its kubelet no longer re-creates it), then the node, once
  registered in the tenant, gets its pool labels there;
* back: the tenant's copy is drained, the host's Node is created again with the saved spec
  and the pool labels (the kubelet keeps an existing Node's spec, so the node gets its old
  pod range back and the pod network's routes still hold), then the agent leaves the
  tenant, then the tenant's copy is deleted.

Every step is idempotent; a step that cannot finish yet (pods still leaving, the kubelet
not registered yet) raises :class:`NotYet` and the reconciler comes back.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from kosmos.api import nodeagent
from kosmos.api.objects import Obj, annotations_of, node_ready
from kosmos.api.resources import GLOBAL_NODES, NODES
from kosmos.kube.errors import KubeError, NotFound
from kosmos.kubenest import drain, moves
from kosmos.kubenest.agent import AgentClient, AgentError

log = logging.getLogger("kosmos.kubenest.realnodes")

#: the host Node's spec while the node serves a tenant (JSON: podCIDR, podCIDRs, taints)
HOST_SPEC_ANNOTATION = "kosmos.io/host-node-spec"
_KEPT_SPEC = ("podCIDR", "podCIDRs", "taints", "providerID")

JoinFor = Callable[[str], Awaitable[nodeagent.Join]]


class NotYet(Exception):
    """A move that is under way: ``message`` says what it waits for."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class MoveError(RuntimeError):
    """A real node cannot move as things stand; the message says why."""


def saved_spec(host_node: Obj) -> str:
    """The part of the host Node's spec it needs back when it returns (JSON)."""
    spec = host_node.get("spec") or {}
    kept = {k: spec[k] for k in _KEPT_SPEC if spec.get(k)}
    kept["taints"] = [
        t for t in kept.get("taints") or [] if not str(t.get("key", "")).startswith("node.")
    ]
    return json.dumps({k: v for k, v in kept.items() if v}, sort_keys=True)


def host_body(globalnode: Obj) -> Obj:
    """The host Node to create before the kubelet comes back: pool labels and saved spec."""
    name = globalnode["metadata"]["name"]
    try:
        spec: dict[str, Any] = json.loads(
            annotations_of(globalnode).get(HOST_SPEC_ANNOTATION) or "{}"
        )
    except ValueError:
        spec = {}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": moves.host_labels(None, globalnode)},
        "spec": spec if isinstance(spec, dict) else {},
    }


def node_ip(globalnode: Obj) -> str:
    ip = str((globalnode.get("spec") or {}).get("nodeIP") or "")
    if not ip:
        raise MoveError("its GlobalNode has no nodeIP: its node-agent cannot be reached")
    return ip


class RealMover:
    """Moves real nodes for one VirtualCluster (``mover`` holds the clients and the key)."""

    def __init__(self, mover: moves.Mover, agents: AgentClient, join_for: JoinFor) -> None:
        self.mover = mover
        self.agents = agents
        self.join_for = join_for

    async def promote(self, globalnode: Obj) -> None:
        name, host, key = globalnode["metadata"]["name"], self.mover.host, self.mover.vc_key
        source = await moves.get_node(host, name)
        if source is not None:
            await self._save_spec(globalnode, source)
            left = await drain.drain(host, name)
            if left:
                await self._mark(globalnode, f"draining in the host: {_few(left)} still there")
                raise NotYet(f"draining in the host: {_few(left)} still there")
        address = node_ip(globalnode)
        state = await self.agents.state(address)
        if not _serves(state, key):  # joined already: new credentials would restart it
            await self._mark(globalnode, f"its kubelet joins {key}")
            state = await self.agents.join(address, await self.join_for(name))
        if not _serves(state, key):
            raise MoveError(f"its node-agent reports {state}, not serving {key}")
        with contextlib.suppress(NotFound):
            await host.delete(NODES, name)
        tenant = self.mover.require_tenant()
        registered = await moves.get_node(tenant, name)
        if registered is None:
            await self._mark(globalnode, f"waiting for its kubelet to register in {key}")
            raise NotYet(f"waiting for its kubelet to register in {key}")
        labels = moves.tenant_labels(registered, globalnode)
        await tenant.patch(NODES, name, {"metadata": {"labels": labels}})
        await self.mover.mark(
            name, {"virtualCluster": key}, True, "InVirtualCluster", f"the node is in {key}"
        )

    async def give_back(self, globalnode: Obj) -> None:
        name, key = globalnode["metadata"]["name"], self.mover.vc_key
        await self.mover.mark(
            name,
            {"virtualCluster": key},
            False,
            "Moving",
            f"moving back from {key}: its kubelet returns to the host",
        )
        address = node_ip(globalnode)
        if not await self._never_left(name, address):
            await self._drain_tenant(name)
            # the host Node the returning kubelet finds: pool labels, saved pod range
            await moves.ensure_node(self.mover.host, host_body(globalnode))
            state = await self.agents.leave(address)
            if state.cluster != nodeagent.OWN_CLUSTER:
                raise MoveError(f"its node-agent reports {state}, not back in its cluster")
        await drain.cordon(self.mover.host, name, unschedulable=False)
        await self.mover.off_tenant(name)
        await self.mover.host.patch(
            GLOBAL_NODES, name, {"metadata": {"annotations": {HOST_SPEC_ANNOTATION: None}}}
        )
        await self.mover.release(globalnode)

    async def _never_left(self, name: str, address: str) -> bool:
        """The node still serves the host: its agent says so, or (agent unreachable) its
        host Node is Ready and the tenant never saw it. A move that stopped before the join
        (drain under way, the agent down) is undone without the agent."""
        try:
            state = await self.agents.state(address)
        except AgentError:
            state = None
        if state is not None:
            return (
                state.cluster == nodeagent.OWN_CLUSTER
                and (await moves.get_node(self.mover.host, name)) is not None
            )
        host_node = await moves.get_node(self.mover.host, name)
        if host_node is None or not node_ready(host_node):
            raise MoveError(f"its node-agent at {address} does not answer")
        try:
            in_tenant = self.mover.tenant and await moves.get_node(self.mover.tenant, name)
        except KubeError:
            in_tenant = None
        if in_tenant:
            raise MoveError(f"its node-agent at {address} does not answer")
        return True

    async def _drain_tenant(self, name: str) -> None:
        """Tenant pods leave before their node does (best effort: the tenant may be gone)."""
        if self.mover.tenant is None:
            return
        try:
            await drain.drain(self.mover.tenant, name)
        except KubeError as error:
            if not self.mover.leaving:
                raise
            log.warning("%s: draining %s in the leaving tenant: %s", self.mover.vc_key, name, error)

    async def _save_spec(self, globalnode: Obj, source: Obj) -> None:
        if HOST_SPEC_ANNOTATION in annotations_of(globalnode):
            return
        spec = saved_spec(source)
        await self.mover.host.patch(
            GLOBAL_NODES,
            globalnode["metadata"]["name"],
            {"metadata": {"annotations": {HOST_SPEC_ANNOTATION: spec}}},
        )
        globalnode.setdefault("metadata", {}).setdefault("annotations", {})[
            HOST_SPEC_ANNOTATION
        ] = spec

    async def _mark(self, globalnode: Obj, what: str) -> None:
        key = self.mover.vc_key
        await self.mover.mark(
            globalnode["metadata"]["name"],
            {"virtualCluster": key},
            False,
            "Moving",
            f"moving into {key}: {what}",
        )


def _serves(state: nodeagent.State, key: str) -> bool:
    return state.cluster == nodeagent.TENANT and state.tenant == key


def _few(names: list[str], shown: int = 3) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more
