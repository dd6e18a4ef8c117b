"""Free resources of member nodes: the capacity a leaf node advertises to the host scheduler.

A leaf node's allocatable is what the member can still take: the allocatable of its
schedulable, Ready nodes minus the requests of pods already running there. Pods Kosmos created
(label ``kosmos-io/pod=true``) are not subtracted: their host twins are bound to the leaf node,
so the host scheduler already counts them against it.

Free room is computed per member node and clamped at zero there before summing: an
over-committed node (allocatable shrunk under running pods) has no room, but it must not eat
the room of its neighbours. The sum alone can mislead (ten nodes with 1 cpu free each cannot
run a 2-cpu pod), so ``Free.largest_node`` also reports the node with the most free room, for
a scheduler filter that refuses pods no single member node can hold.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction

from kosmos.api import names
from kosmos.api.objects import Obj, labels_of, node_ready, pod_terminal
from kosmos.api.podrequests import Resources, pod_requests
from kosmos.api.quantity import QuantityValue, format_resources, parse_quantity, parse_resources

#: Always reported, as zero when no member node is available.
BASE_RESOURCES = ("cpu", "memory", "ephemeral-storage", "pods")


@dataclass(frozen=True)
class Free:
    """Free resources of the member nodes behind one leaf node, as Kubernetes quantities."""

    #: Σ free room of the available member nodes; BASE_RESOURCES always present.
    allocatable: dict[str, str] = field(default_factory=dict)
    #: free room of the node with the most free cpu (then memory); {} without available nodes.
    largest_node: dict[str, str] = field(default_factory=dict)
    #: available (schedulable and Ready) member nodes counted.
    nodes: int = 0


def is_available(node: Obj) -> bool:
    """A node can take pods: not cordoned and its Ready condition is True."""
    return not node.get("spec", {}).get("unschedulable") and node_ready(node)


def _add(total: Resources, extra: Mapping[str, Fraction]) -> None:
    for name, value in extra.items():
        total[name] = total.get(name, Fraction(0)) + value


def occupies_node(pod: Obj) -> bool:
    """The pod holds resources on its node and Kosmos did not create it."""
    return (
        bool(pod.get("spec", {}).get("nodeName"))
        and not pod_terminal(pod)
        and labels_of(pod).get(names.LABEL_POD) != "true"
    )


def _node_room(nodes: Iterable[Obj], pods: Iterable[Obj]) -> dict[str, Resources]:
    """Free room per available node, each resource clamped at zero."""
    room: dict[str, Resources] = {}
    for node in nodes:
        if is_available(node):
            name = node.get("metadata", {}).get("name", "")
            room[name] = parse_resources(node.get("status", {}).get("allocatable"))
    for pod in pods:
        free = room.get(pod.get("spec", {}).get("nodeName", ""))
        if free is None or not occupies_node(pod):
            continue
        requests = pod_requests(pod)
        requests["pods"] = requests.get("pods", Fraction(0)) + 1
        for resource, value in requests.items():
            if resource in free:  # a node lacking the resource cannot have granted it
                free[resource] -= value
    for free in room.values():
        for resource, value in free.items():
            free[resource] = max(value, Fraction(0))
    return room


def free_resources(nodes: Iterable[Obj], pods: Iterable[Obj]) -> Free:
    """Free resources of ``nodes`` (already filtered to the leaf's members) given ``pods``.

    ``pods`` may include pods of other nodes; only those bound to an available node count.
    The largest node maximises (free cpu, free memory), ties broken by the smaller name.
    """
    room = _node_room(nodes, pods)
    total: Resources = {name: Fraction(0) for name in BASE_RESOURCES}
    for free in room.values():
        _add(total, free)
    largest: Resources = {}
    if room:
        best = max(
            sorted(room),
            key=lambda n: (room[n].get("cpu", Fraction(0)), room[n].get("memory", Fraction(0))),
        )
        largest = room[best]
    return Free(
        allocatable=format_resources(total),
        largest_node=format_resources(largest),
        nodes=len(room),
    )


def fits(request: Mapping[str, QuantityValue], free: Mapping[str, QuantityValue]) -> bool:
    """Every positive request is covered by ``free``; resources absent from ``free`` are zero.

    Only the resources named in ``request`` are checked: add ``"pods": "1"`` to check a slot.
    """
    for name, wanted in request.items():
        amount = parse_quantity(wanted)
        if amount > 0 and amount > parse_quantity(free.get(name, 0)):
            return False
    return True
