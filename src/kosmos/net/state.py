"""A node's dataplane as one value, and the difference between two of them.

``NodeState`` is what the agent wants (built from its NodeConfig) or what the kernel has
(read by ``kosmos.net.sync``). ``diff`` is pure: it says which objects to delete and which to
add, in an order that never leaves a route without its device or a device without its
address; it is what the unit tests exercise.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from kosmos.net.objects import Chain, Fdb, IPSet, Neigh, Route, Rule, Vxlan


@dataclass(frozen=True)
class NodeState:
    devices: frozenset[Vxlan] = frozenset()
    routes: frozenset[Route] = frozenset()
    fdbs: frozenset[Fdb] = frozenset()
    neighbours: frozenset[Neigh] = frozenset()
    rules: frozenset[Rule] = frozenset()
    chains: frozenset[Chain] = frozenset()
    ipsets: frozenset[IPSet] = frozenset()
    sysctls: tuple[tuple[str, str], ...] = ()

    @property
    def device_names(self) -> set[str]:
        return {d.name for d in self.devices}


@dataclass
class DevicePlan:
    create: list[Vxlan] = field(default_factory=list)
    update: list[tuple[Vxlan, Vxlan]] = field(default_factory=list)  # (current, wanted)
    delete: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.create or self.update or self.delete)


def plan_devices(wanted: frozenset[Vxlan], actual: dict[str, Vxlan]) -> DevicePlan:
    """Create missing devices, fix changed ones in place when possible, else recreate."""
    plan = DevicePlan()
    by_name = {d.name: d for d in wanted}
    for name, current in sorted(actual.items()):
        target = by_name.get(name)
        if target is None:
            plan.delete.append(name)
        elif not target.same_link(current):
            plan.delete.append(name)
            plan.create.append(target)
        elif target != current:
            plan.update.append((current, target))
    plan.create.extend(d for n, d in sorted(by_name.items()) if n not in actual)
    return plan


def split_routes(
    wanted: Iterable[Route],
    owned: Collection[str],
    present: Collection[str],
    links: Collection[str],
) -> tuple[frozenset[Route], list[Route]]:
    """The wanted routes the kernel can take now, and those whose device does not exist.

    A route's device is either one the agent owns (a VXLAN device: usable once ``present``,
    i.e. created) or somebody else's, such as the node's NIC under direct routing (usable if
    it is among the ``links``; the agent never creates it). A route on an owned device that
    is not present is in neither list: its device failed and was reported as such.
    """
    usable: set[Route] = set()
    missing: list[Route] = []
    for route in wanted:
        if route.dev in present or (route.dev not in owned and route.dev in links):
            usable.add(route)
        elif route.dev not in owned:
            missing.append(route)
    return frozenset(usable), sorted(missing)


@dataclass
class EntryPlan:
    """Neighbours, FDB entries and routes to remove, then to add (removals first).

    ``replaced_routes`` are not steps of their own: the adds replace them in place (same
    destination and table). Whatever of them is still there after the adds is deleted then.
    """

    delete_routes: list[Route] = field(default_factory=list)
    delete_fdbs: list[Fdb] = field(default_factory=list)
    delete_neighbours: list[Neigh] = field(default_factory=list)
    add_neighbours: list[Neigh] = field(default_factory=list)
    add_fdbs: list[Fdb] = field(default_factory=list)
    add_routes: list[Route] = field(default_factory=list)
    replaced_routes: list[Route] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.count() > 0

    def count(self) -> int:
        return sum(len(v) for k, v in vars(self).items() if k != "replaced_routes")


def plan_entries(wanted: NodeState, actual: NodeState) -> EntryPlan:
    # A route whose gateway or device changed is "replaced": deleting the old one first would
    # leave a gap, so only destinations no longer wanted at all are deleted first. The kernel
    # replaces a route of the same metric only (one somebody added with a better metric would
    # stay and win every lookup), so the old routes are also kept as ``replaced_routes``, to
    # be checked after the adds -- those with a device: one without (a blackhole) can only
    # be deleted by destination, which would hit the route just added.
    wanted_dsts = {(r.dst, r.table) for r in wanted.routes}
    stale = actual.routes - wanted.routes
    return EntryPlan(
        delete_routes=sorted(r for r in stale if (r.dst, r.table) not in wanted_dsts),
        delete_fdbs=sorted(actual.fdbs - wanted.fdbs),
        delete_neighbours=sorted(
            n
            for n in actual.neighbours - wanted.neighbours
            if (n.ip, n.dev) not in {(w.ip, w.dev) for w in wanted.neighbours}
        ),
        add_neighbours=sorted(wanted.neighbours - actual.neighbours),
        add_fdbs=sorted(wanted.fdbs - actual.fdbs),
        add_routes=sorted(wanted.routes - actual.routes),
        replaced_routes=sorted(r for r in stale if (r.dst, r.table) in wanted_dsts and r.dev),
    )
