"""Gateway election: the agents of a cluster compete for one Lease; the holder is gateway.

Each agent that may be gateway -- its node is Ready, its tunnel NIC is up, and it was not
started with ``--no-gateway-candidate`` -- runs a Lease election on
``kosmos-system/clusterlink-gateway-<cluster>`` in the host. Nodes with an elastic IP are
preferred: while one of them is Ready the others do not compete (and a gateway without one
steps down), and when they compete they wait one extra lease duration before taking an
expired lease. The winner marks its ClusterNode with
role ``gateway`` and the lease's transition count (``kosmos.io/gateway-epoch``); the planner
trusts the newest epoch, so a stale mark left by a dead gateway never wins. An agent that
stops being eligible hands the lease back at once.

The node that routes is the one that competes (an elector elsewhere, marking the node it
happens to run on, could pick a node that is not Ready), and failover time is the lease
duration (seconds, configurable).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable

from kosmos.api import link, names
from kosmos.api.objects import Obj, condition_of
from kosmos.api.resources import CLUSTERNODES
from kosmos.clusterlink.agent.state import AgentState
from kosmos.kube.errors import KubeError, NotFound
from kosmos.kube.leader import LeaderElectionConfig, LeaderElector, LeadershipLost

log = logging.getLogger("kosmos.clusterlink.agent.elector")


def _ready(node: Obj) -> bool:
    """Ready, or not known yet: unlike ``node_ready``, a ClusterNode without the condition
    does not block (the network-manager has not mirrored its node's yet)."""
    found = condition_of(node, "Ready")
    return found is None or found.get("status") == "True"


def eligible(ctx: AgentState, nic_up: Callable[[], bool]) -> bool:
    """Whether this node may be (or stay) its cluster's gateway right now.

    Nodes with an elastic IP are the ones other clusters can reach, so while any of them is
    Ready, only they compete; the others step in only when none is.
    """
    node = ctx.clusternode()
    if not ctx.settings.gateway_candidate or node is None:
        return False
    if not node.get("spec", {}).get("interfaceName") or not _ready(node):
        return False
    if not preferred(ctx) and any(
        other["spec"].get("elasticIP")
        and _ready(other)
        and other["metadata"]["name"] != ctx.settings.name
        for other in ctx.clusternodes.store.list()
    ):
        return False
    return nic_up()


def preferred(ctx: AgentState) -> bool:
    node = ctx.clusternode() or {}
    return bool(node.get("spec", {}).get("elasticIP"))


class GatewayElector:
    def __init__(self, ctx: AgentState, nic_up: Callable[[], bool]) -> None:
        self.ctx = ctx
        self.nic_up = nic_up
        self.is_gateway = False

    def _config(self) -> LeaderElectionConfig:
        s = self.ctx.settings
        return LeaderElectionConfig(
            names.SYSTEM_NAMESPACE,
            link.GATEWAY_LEASE_PREFIX + s.cluster,
            s.name,
            lease_duration=s.lease_duration,
            renew_deadline=s.renew_deadline,
            retry_period=s.retry_period,
            acquire_grace=0.0 if preferred(self.ctx) else s.lease_duration,
        )

    async def run(self) -> None:
        while True:
            while not eligible(self.ctx, self.nic_up):  # noqa: ASYNC110 - polled from caches
                await asyncio.sleep(self.ctx.settings.retry_period)
            elector = LeaderElector(self.ctx.host, self._config())
            try:
                await elector.run(functools.partial(self._lead, elector))
            except LeadershipLost:
                log.warning("%s: lost the gateway lease", self.ctx.settings.name)
            except KubeError as exc:  # marking the ClusterNode failed: compete again
                log.warning("%s: gateway election: %s", self.ctx.settings.name, exc)
                await asyncio.sleep(self.ctx.settings.retry_period)
            finally:
                self.is_gateway = False

    async def _lead(self, elector: LeaderElector) -> None:
        name = self.ctx.settings.name
        await self._mark(name, elector.transitions)
        self.is_gateway = True
        log.info(
            "%s: gateway of cluster %s (epoch %d)",
            name,
            self.ctx.settings.cluster,
            elector.transitions,
        )
        await self._unmark_others()
        while eligible(self.ctx, self.nic_up):  # noqa: ASYNC110 - polled from caches
            await asyncio.sleep(self.ctx.settings.retry_period)
        log.info("%s: no longer eligible; handing the gateway lease back", name)
        await self._unmark(name)

    async def _mark(self, name: str, epoch: int) -> None:
        patch = {
            "metadata": {"annotations": {link.ANNOTATION_GATEWAY_EPOCH: str(epoch)}},
            "spec": {"roles": [link.ROLE_GATEWAY]},
        }
        await self.ctx.host.patch(
            CLUSTERNODES, name, patch, field_manager=link.FIELD_MANAGER_ELECTOR
        )

    async def _unmark(self, name: str) -> None:
        try:
            await self.ctx.host.patch(
                CLUSTERNODES,
                name,
                {"spec": {"roles": None}},
                field_manager=link.FIELD_MANAGER_ELECTOR,
            )
        except KubeError as exc:
            log.debug("clearing the gateway role of %s failed: %s", name, exc)

    async def _unmark_others(self) -> None:
        """Tidy: the planner already ignores older marks, users should not see two gateways."""
        selector = f"{link.LABEL_CLUSTER}={self.ctx.settings.cluster}"
        try:
            others = await self.ctx.host.list(CLUSTERNODES, label_selector=selector)
        except KubeError as exc:
            log.debug("listing ClusterNodes failed: %s", exc)
            return
        for node in others.items:
            other = node["metadata"]["name"]
            if other != self.ctx.settings.name and link.ROLE_GATEWAY in (
                node.get("spec", {}).get("roles") or []
            ):
                try:
                    await self._unmark(other)
                except NotFound:
                    continue
