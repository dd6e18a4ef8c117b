"""Converge this node's kernel to its NodeConfig, and say how that went in its status.

Level-based: each pass builds the desired state from the cached NodeConfig, reads the kernel
and applies only the difference (``kosmos.net.sync``); a pass is also scheduled every
``repair_period`` so a route or FDB entry removed by hand comes back. A NodeConfig that goes
away means "own nothing": every device, route, rule, chain, set and tunnel the agent made is
removed. Items that cannot be applied are listed in the ``Applied`` condition; the rest of
the configuration still takes effect.
"""

from __future__ import annotations

import contextlib
import logging

from kosmos.api import link
from kosmos.api.objects import Obj, condition_of, now, set_condition
from kosmos.api.resources import CLUSTERNODES, NODECONFIGS
from kosmos.clusterlink.agent import desired, tunnels
from kosmos.clusterlink.agent.state import AgentState
from kosmos.kube.controller import Request, Result
from kosmos.kube.errors import NotFound
from kosmos.kube.events import EventRecorder, EventType
from kosmos.net.errors import DeviceMissing
from kosmos.net.netlink import LinkInfo
from kosmos.net.sync import Report

log = logging.getLogger("kosmos.clusterlink.agent")


def condition(failures: list[tuple[str, str]], generation: int) -> Obj:
    if failures:
        shown = "; ".join(f"{item}: {why}" for item, why in failures[:10])
        more = f" (and {len(failures) - 10} more)" if len(failures) > 10 else ""
        return {
            "type": "Applied",
            "status": "False",
            "reason": "ItemsFailed",
            "message": f"{len(failures)} item(s) not applied, the rest is in effect: {shown}{more}",
            "observedGeneration": generation,
        }
    return {
        "type": "Applied",
        "status": "True",
        "reason": "InSync",
        "message": "the node's kernel matches this NodeConfig",
        "observedGeneration": generation,
    }


class NodeConfigReconciler:
    def __init__(
        self,
        ctx: AgentState,
        tunnel_driver: tunnels.Driver,
        recorder: EventRecorder | None = None,
    ) -> None:
        self.ctx = ctx
        self.tunnels = tunnel_driver
        self.recorder = recorder
        self._applied = False

    async def __call__(self, request: Request) -> Result:
        period = self.ctx.settings.repair_period
        config = self.ctx.nodeconfig()
        if config is None or config["metadata"].get("deletionTimestamp"):
            await self._tear_down()
            return Result(requeue_after=period)
        spec = config.get("spec") or {}
        binds = await self._bind_devices(spec)
        want = desired.build(spec, binds)
        report = await self.ctx.dataplane.sync(want.state)
        tunnel_failures = await self.tunnels.ensure(spec.get("tunnels") or [])
        await self._publish_key()
        failures = want.failures + report.failures + tunnel_failures
        self._applied = True
        if report.changes:
            log.info("%s: applied %d change(s)", self.ctx.settings.name, report.changes)
        await self._report(config, failures, report)
        return Result(requeue_after=period)

    async def _publish_key(self) -> None:
        """Peers need this node's WireGuard public key: it goes on the node's ClusterNode."""
        key = self.tunnels.public_key()
        node = self.ctx.clusternode()
        if key is None or node is None:
            return
        if (node["metadata"].get("annotations") or {}).get(link.ANNOTATION_WIREGUARD_KEY) == key:
            return
        patch = {"metadata": {"annotations": {link.ANNOTATION_WIREGUARD_KEY: key}}}
        with contextlib.suppress(NotFound):
            await self.ctx.host.patch(
                CLUSTERNODES,
                node["metadata"]["name"],
                patch,
                field_manager=link.FIELD_MANAGER_AGENT,
            )

    async def _bind_devices(self, spec: Obj) -> dict[str, LinkInfo]:
        found: dict[str, LinkInfo] = {}
        for name in {d.get("bindDev", "") for d in spec.get("devices") or []}:
            try:
                found[name] = await self.ctx.dataplane.netlink.link_info(name)
            except DeviceMissing:
                continue
        return found

    async def _tear_down(self) -> None:
        report: Report = await self.ctx.dataplane.remove_all()
        await self.tunnels.stop()
        if report.changes or self._applied:
            log.info("%s: NodeConfig gone; removed what this agent owned", self.ctx.settings.name)
        self._applied = False

    async def _report(self, config: Obj, failures: list[tuple[str, str]], report: Report) -> None:
        generation = int(config["metadata"].get("generation") or 0)
        wanted = condition(failures, generation)
        current = condition_of(config, "Applied")
        kept = [dict(current)] if current is not None else []
        stamp = now()
        same = not set_condition(kept, wanted, at=stamp)
        if same and not report.changes:
            return
        wanted["lastTransitionTime"] = kept[0].get("lastTransitionTime") or stamp
        patch: Obj = {
            "status": {
                "conditions": [wanted],
                "lastSyncTime": stamp,
                "observedGeneration": generation,
                **({"lastChangeTime": stamp} if report.changes else {}),
            }
        }
        try:
            await self.ctx.host.patch(
                NODECONFIGS, config["metadata"]["name"], patch, subresource="status"
            )
        except NotFound:
            return
        await self._record(config, current, wanted)

    async def _record(self, config: Obj, current: Obj | None, wanted: Obj) -> None:
        """A Warning on the NodeConfig when items fail (or the failing ones change), a Normal
        event when the node is in sync again."""
        before = current or {}
        if self.recorder is None or wanted["status"] == before.get("status") == "True":
            return
        if wanted["status"] == "True" and before.get("status") != "False":
            return  # first sync: nothing to tell
        if wanted["status"] == "False" and before.get("message") == wanted["message"]:
            return
        type_: EventType = "Warning" if wanted["status"] == "False" else "Normal"
        await self.recorder.record(config, type_, wanted["reason"], wanted["message"])
