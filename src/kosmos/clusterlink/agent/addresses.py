"""Keep this node's ClusterNode told which NIC carries tunnels and what its addresses are.

Only ``spec.interfaceName``, ``spec.ip`` and ``spec.ip6`` are the agent's (the node
controller owns the rest, the elector owns ``roles``); they are written with a merge patch
only when they differ. The NIC's state is remembered for the elector: a node whose tunnel
NIC is down must not stay gateway.
"""

from __future__ import annotations

import contextlib
import logging

from kosmos.api import link
from kosmos.api.objects import Obj
from kosmos.api.resources import CLUSTERNODES
from kosmos.clusterlink.agent import detect
from kosmos.clusterlink.agent.state import AgentState
from kosmos.kube.controller import Request, Result
from kosmos.kube.errors import NotFound
from kosmos.net.errors import NetError

log = logging.getLogger("kosmos.clusterlink.agent.addresses")

RECHECK_SECONDS = 10.0


class AddressReconciler:
    def __init__(self, ctx: AgentState) -> None:
        self.ctx = ctx
        self.nic_up = False

    async def __call__(self, request: Request) -> Result:
        node = self.ctx.clusternode()
        cluster = self.ctx.cluster()
        if node is None or cluster is None:
            return Result(requeue_after=RECHECK_SECONDS)  # the node controller creates it
        options = cluster.get("spec", {}).get("clusterLinkOptions") or {}
        try:
            info = await detect.detect(self.ctx.dataplane.netlink, options, self.ctx.settings.node)
        except NetError as exc:
            self.nic_up = False
            log.warning("%s: %s", self.ctx.settings.name, exc.message)
            await self._named_but_missing(node, options)
            return Result(requeue_after=RECHECK_SECONDS)

        self.nic_up = info.up
        wanted: Obj = {
            "interfaceName": info.name,
            "ip": info.address(4),
            "ip6": info.address(6),
        }
        spec = node.get("spec", {})
        if all(spec.get(k) == v for k, v in wanted.items()):
            return Result(requeue_after=RECHECK_SECONDS)
        log.info(
            "%s: tunnel NIC %s, addresses %s %s",
            self.ctx.settings.name,
            info.name,
            wanted["ip"],
            wanted["ip6"],
        )
        with contextlib.suppress(NotFound):
            await self.ctx.host.patch(
                CLUSTERNODES,
                self.ctx.settings.name,
                {"spec": wanted},
                field_manager=link.FIELD_MANAGER_AGENT,
            )
        return Result(requeue_after=RECHECK_SECONDS)

    async def _named_but_missing(self, node: Obj, options: Obj) -> None:
        """A NIC the Cluster names explicitly is reported even when absent.

        The plan then names it and the agent says, in the NodeConfig's ``Applied`` condition,
        which devices could not be built on it -- rather than silently keeping another NIC.
        """
        name, _ = detect.nic_choice(options, self.ctx.settings.node)
        if name == "*" or node.get("spec", {}).get("interfaceName") == name:
            return
        with contextlib.suppress(NotFound):
            await self.ctx.host.patch(
                CLUSTERNODES,
                self.ctx.settings.name,
                {"spec": {"interfaceName": name}},
                field_manager=link.FIELD_MANAGER_AGENT,
            )
