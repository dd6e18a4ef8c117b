"""Converge one namespace's dataplane to a ``NodeState``: read, diff, apply the difference.

Level-based and idempotent: every call reads what the kernel has now, so a route deleted by
hand, a device someone removed or a flushed chain is repaired by the next call. An item that
cannot be applied (a bind device that does not exist, a rejected rule) is reported in the
``Report`` and skipped; everything else is still applied.

The route table is Kosmos's own: every route in it is managed, whatever its device. Most go
through the agent's VXLAN devices, but under direct routing some go over the node's NIC to
a gateway node on the same segment; a route left there after a change would misroute.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from kosmos.net import sysctl
from kosmos.net.errors import KernelError, NetError
from kosmos.net.ipset import IPSetSync
from kosmos.net.iptables import ChainSync
from kosmos.net.netlink import Netlink
from kosmos.net.netns import Namespace
from kosmos.net.objects import ROUTE_TABLE, Route, Vxlan
from kosmos.net.state import NodeState, plan_devices, plan_entries, split_routes

log = logging.getLogger("kosmos.net.sync")

#: Devices the agent may create, change and delete; any other device (the NIC) is never
#: touched, though the routes over it in the agent's table are.
OWNED_DEVICES = ("vx-bridge", "vx-local", "vx-bridge-6", "vx-local-6")


@dataclass
class Report:
    changes: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (item, why)

    @property
    def ok(self) -> bool:
        return not self.failures


class Dataplane:
    """The kernel side of one agent: one namespace, its netlink socket and its tables."""

    def __init__(
        self,
        netns: str | None = None,
        *,
        owned_devices: Iterable[str] = OWNED_DEVICES,
        table: int = ROUTE_TABLE,
    ) -> None:
        self.namespace = Namespace(netns)
        self.netlink = Netlink(netns)
        self.owned = tuple(owned_devices)
        self.table = table
        self._chains = {4: ChainSync(self.namespace, 4), 6: ChainSync(self.namespace, 6)}
        self._ipsets = IPSetSync(self.namespace)

    async def close(self) -> None:
        await self.netlink.close()

    async def read(self) -> NodeState:
        devices = await self.netlink.vxlans(self.owned)
        names = list(devices)
        return NodeState(
            devices=frozenset(devices.values()),
            routes=frozenset(await self.netlink.routes(self.table)),
            fdbs=frozenset(await self.netlink.fdbs(names)),
            neighbours=frozenset(await self.netlink.neighbours(names)),
            rules=frozenset(await self.netlink.rules(self.table)),
        )

    async def sync(self, wanted: NodeState) -> Report:
        report = Report()
        devices = await self.netlink.vxlans(self.owned)
        plan = plan_devices(wanted.devices, devices)
        for name in plan.delete:
            await self._step(report, f"device {name}", self.netlink.delete_link(name))
        for device in plan.create:
            await self._step(report, f"device {device.name}", self._create(device))
        for current, target in plan.update:
            await self._step(
                report, f"device {target.name}", self.netlink.update_vxlan(target, current)
            )
        links = set(await self.netlink.links())
        wanted_sysctls = {k: v for k, v in wanted.sysctls if sysctl.device_of(k) in links | {None}}
        await self._step(report, "sysctl", sysctl.ensure(self.namespace, wanted_sysctls))
        await self._rules(wanted, report)
        await self._entries(wanted, report, links)
        await self._step(report, "ipsets", self._ipsets.sync(wanted.ipsets))
        for family, chains in self._chains.items():
            await self._step(report, f"iptables (IPv{family})", chains.sync(wanted.chains))
        await self._step(report, "ipsets", self._ipsets.prune(wanted.ipsets))
        return report

    async def _create(self, device: Vxlan) -> bool:
        bind = await self.netlink.link_info(device.bind_dev)
        await self.netlink.add_vxlan(device, bind)
        return True

    async def _rules(self, wanted: NodeState, report: Report) -> None:
        actual = await self.netlink.rules(self.table)
        for rule in sorted(actual - wanted.rules):
            await self._step(report, f"rule {rule}", self.netlink.delete_rule(rule))
        for rule in sorted(wanted.rules - actual):
            await self._step(report, f"rule {rule}", self.netlink.add_rule(rule))

    async def _entries(self, wanted: NodeState, report: Report, links: set[str]) -> None:
        present = await self.netlink.vxlans(self.owned)
        names = list(present)
        actual = NodeState(
            routes=frozenset(await self.netlink.routes(self.table)),
            fdbs=frozenset(await self.netlink.fdbs(names)),
            neighbours=frozenset(await self.netlink.neighbours(names)),
        )
        # entries on devices that could not be created are reported once, with the device;
        # a route over a NIC that does not exist (named wrong, or gone) is reported itself
        routes, missing = split_routes(wanted.routes, self.owned, present, links)
        for r in missing:
            self._fail(report, f"route {r.dst}", f"route {r.dst}: device {r.dev} does not exist")
        usable = NodeState(
            routes=routes,
            fdbs=frozenset(f for f in wanted.fdbs if f.dev in present),
            neighbours=frozenset(n for n in wanted.neighbours if n.dev in present),
        )
        plan = plan_entries(usable, actual)
        nl = self.netlink
        steps: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            *((f"route {r.dst}", lambda r=r: nl.delete_route(r)) for r in plan.delete_routes),
            *((f"fdb {f.mac}", lambda f=f: nl.delete_fdb(f)) for f in plan.delete_fdbs),
            *(
                (f"neigh {n.ip}", lambda n=n: nl.delete_neighbour(n))
                for n in plan.delete_neighbours
            ),
            *((f"neigh {n.ip}", lambda n=n: nl.add_neighbour(n)) for n in plan.add_neighbours),
            *((f"fdb {f.mac} {f.dst}", lambda f=f: nl.add_fdb(f)) for f in plan.add_fdbs),
            *(
                (f"route {r.dst} via {r.gateway}", lambda r=r: self._add_route(r))
                for r in plan.add_routes
            ),
        ]
        for item, call in steps:
            await self._step(report, item, call())
        if plan.replaced_routes:
            await self._drop_replaced(plan.replaced_routes, routes, report)

    async def _add_route(self, route: Route) -> None:
        """A VXLAN peer's overlay address is reachable on the device by construction (onlink);
        a gateway over the NIC must be on one of its subnets, which the kernel checks."""
        onlink = route.dev in self.owned
        try:
            await self.netlink.add_route(route, onlink=onlink)
        except KernelError as exc:
            if onlink or exc.errno not in (errno.ENETUNREACH, errno.EHOSTUNREACH):
                raise
            hint = (
                f"the gateway is not on a subnet of {route.dev}: "
                "direct routing needs the nodes on one L2 segment"
            )
            raise KernelError(f"{exc.message}: {hint}", item=exc.item, errno=exc.errno) from exc

    async def _drop_replaced(
        self, replaced: list[Route], wanted: frozenset[Route], report: Report
    ) -> None:
        """Delete the old routes the adds did not replace in place -- only where the new
        route is there: if adding it failed, the old one keeps the destination reachable."""
        try:
            now = await self.netlink.routes(self.table)
        except NetError as exc:
            self._fail(report, exc.item or "routes", exc.message)
            return
        done = {(r.dst, r.table) for r in wanted & now}
        for route in replaced:
            if route in now and (route.dst, route.table) in done:
                await self._step(report, f"route {route.dst}", self.netlink.delete_route(route))

    async def _step(self, report: Report, item: str, action: Awaitable[object]) -> None:
        try:
            result = await action
        except NetError as exc:
            self._fail(report, exc.item or item, exc.message)
            return
        if result is None or result:  # None: a netlink write; False/[]: nothing to do
            report.changes += 1

    def _fail(self, report: Report, item: str, why: str) -> None:
        report.failures.append((item, why))
        log.warning("%s: %s", self.namespace, why)

    async def remove_all(self) -> Report:
        """Delete every device, route, rule, chain and set this agent owns."""
        report = await self.sync(NodeState())
        for chains in self._chains.values():
            await self._step(report, "iptables", chains.remove_all())
        return report
