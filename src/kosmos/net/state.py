"""A node's dataplane as one value, and the difference between two of them.

``NodeState`` is what the agent wants (built from its NodeConfig) or what the kernel has
(read by ``kosmos.net.sync``). ``diff`` is pure: it says which objects to delete and which to
add, in an order that never leaves a route without its device or a device without its
address; it is what the unit tests exercise.
"""

from __future__ import annotations

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


@dataclass
class EntryPlan:
    """Neighbours, FDB entries and routes to remove, then to add (removals first)."""

    delete_routes: list[Route] = field(default_factory=list)
    delete_fdbs: list[Fdb] = field(default_factory=list)
    delete_neighbours: list[Neigh] = field(default_factory=list)
    add_neighbours: list[Neigh] = field(default_factory=list)
    add_fdbs: list[Fdb] = field(default_factory=list)
    add_routes: list[Route] = field(default_factory=list)

    def __bool__(self) -> bool:
        return any(vars(self).values())

    def count(self) -> int:
        return sum(len(v) for v in vars(self).values())


def plan_entries(wanted: NodeState, actual: NodeState) -> EntryPlan:
    # A route whose gateway changed is "replaced": deleting the old one first would leave a
    # gap, so only destinations no longer wanted at all are deleted.
    wanted_dsts = {(r.dst, r.table) for r in wanted.routes}
    return EntryPlan(
        delete_routes=sorted(
            r for r in actual.routes - wanted.routes if (r.dst, r.table) not in wanted_dsts
        ),
        delete_fdbs=sorted(actual.fdbs - wanted.fdbs),
        delete_neighbours=sorted(
            n
            for n in actual.neighbours - wanted.neighbours
            if (n.ip, n.dev) not in {(w.ip, w.dev) for w in wanted.neighbours}
        ),
        add_neighbours=sorted(wanted.neighbours - actual.neighbours),
        add_fdbs=sorted(wanted.fdbs - actual.fdbs),
        add_routes=sorted(wanted.routes - actual.routes),
    )
