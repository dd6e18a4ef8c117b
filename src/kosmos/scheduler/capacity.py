"""True capacity: can one real node behind a node take the pod?

A whole-cluster or group leaf node advertises the *sum* of its member nodes' free room, so
kube-scheduler's NodeResourcesFit accepts a 20-cpu pod on a leaf made of two 16-cpu nodes
with 12 cpu free each, and the pod then stays Pending in the member. The extender keeps the
member nodes and pods in its own caches (informers on every member, like ClusterTree's) and
checks each resource the pod requests — cpu, memory, pods, ephemeral storage and extended
resources such as ``nvidia.com/gpu`` — against every available member node on its own.
Only member nodes whose NoSchedule/NoExecute taints the pod tolerates count: the member's
scheduler keeps the pod's copy off the others (a control-plane node's room is no room for
most pods).

Why caches on the members and not the leaf node's ``kosmos.io/largest-free-node``
annotation: that annotation is one node's free room (the one with most free cpu), so a pod
needing a GPU from a small-cpu node would be refused, and it lags behind pods being placed.

Free room of a member node = allocatable minus the requests of every pod bound to it (the
pods Kosmos created there included) minus the pods *in flight*: host pods already bound to
the leaf whose member copy is not yet bound to a member node. In-flight pods are put on the
member nodes the way a spreading scheduler would (each on the node with the most free cpu
that fits it, decided once per pod), so a burst of pods does not all count on the same room.

The filter runs inside kube-scheduler's one-pod-at-a-time cycle, so amounts are integers in
milli-units (requests rounded up, allocatable down, as conservative as the scheduler), not
exact fractions: integer arithmetic keeps a call in the tens of microseconds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from kosmos.api.objects import Obj, node_ready, pod_terminal
from kosmos.api.podrequests import pod_requests
from kosmos.api.quantity import parse_resources
from kosmos.api.selectors import HARD_EFFECTS, tolerated

#: resource name -> amount in milli-units (1 cpu = 1000, 1 byte of memory = 1000)
Resources = dict[str, int]

_SCORED = ("cpu", "memory")
MILLI = 1000


def milli_up(value: Fraction) -> int:
    return math.ceil(value * MILLI)


def milli_down(value: Fraction) -> int:
    return math.floor(value * MILLI)


def is_available(node: Obj) -> bool:
    """A node can take pods: not cordoned and its Ready condition is True."""
    return not node.get("spec", {}).get("unschedulable") and node_ready(node)


def scheduling_request(pod: Obj) -> Resources:
    """What the pod takes from a node, including its ``pods`` slot."""
    wanted = {name: milli_up(value) for name, value in pod_requests(pod).items()}
    wanted["pods"] = wanted.get("pods", 0) + MILLI
    return wanted


def holds_resources(pod: Obj) -> bool:
    """Bound and not finished: kube-scheduler counts it against its node."""
    return bool(pod.get("spec", {}).get("nodeName")) and not pod_terminal(pod)


def resources_key(pod: Obj) -> tuple[Any, ...]:
    """What a pod's requests depend on: compared (cheaply) to skip recomputing them on the
    status updates that make up most pod events."""
    spec = pod.get("spec", {})
    return (
        [c.get("resources") for c in spec.get("containers") or []],
        [(c.get("resources"), c.get("restartPolicy")) for c in spec.get("initContainers") or []],
        spec.get("resources"),
        spec.get("overhead"),
    )


class NodeUsage:
    """Requests of the pods bound to each node, kept up to date from pod events (O(1) each).

    An informer event handler: register it on a pod informer of one cluster.
    """

    def __init__(self) -> None:
        self._pods: dict[str, tuple[str, Resources, tuple[Any, ...]]] = {}
        self._nodes: dict[str, Resources] = {}

    def used(self, node: str) -> Resources:
        return self._nodes.get(node, {})

    def _forget(self, uid: str) -> None:
        held = self._pods.pop(uid, None)
        if held is None:
            return
        node, requests, _ = held
        total = self._nodes.get(node)
        if total is None:
            return
        for name, value in requests.items():
            total[name] = total.get(name, 0) - value
        if not any(total.values()):
            del self._nodes[node]

    def _count(self, pod: Obj) -> None:
        uid = str(pod.get("metadata", {}).get("uid", ""))
        held = self._pods.get(uid)
        counts = bool(uid) and holds_resources(pod)
        key = resources_key(pod) if counts else ()
        if counts and held is not None and held[0] == pod["spec"]["nodeName"] and held[2] == key:
            return  # a status update: same node, same requests
        self._forget(uid)
        if not counts:
            return
        node = pod["spec"]["nodeName"]
        requests = scheduling_request(pod)
        total = self._nodes.setdefault(node, {})
        for name, value in requests.items():
            total[name] = total.get(name, 0) + value
        self._pods[uid] = (node, requests, key)

    def on_add(self, obj: Obj) -> None:
        self._count(obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        self._count(new)

    def on_delete(self, obj: Obj) -> None:
        self._forget(str(obj.get("metadata", {}).get("uid", "")))


@dataclass
class Room:
    """Free room of one real node (allocatable kept for scoring)."""

    node: str
    free: Resources
    allocatable: Resources = field(default_factory=dict)
    #: the node's NoSchedule/NoExecute taints: only pods tolerating all of them get the room
    taints: tuple[Obj, ...] = ()


def blocking_taints(node: Obj) -> tuple[Obj, ...]:
    taints = node.get("spec", {}).get("taints") or []
    return tuple(t for t in taints if t.get("effect") in HARD_EFFECTS)


def open_to(rooms: Iterable[Room], tolerations: Iterable[Obj]) -> list[Room]:
    """The rooms whose taints the pod tolerates: a member's own scheduler (its
    TaintToleration plugin) keeps the pod's copy off the others, e.g. control-plane nodes."""
    tolerations = list(tolerations)
    return [r for r in rooms if all(tolerated(t, tolerations) for t in r.taints)]


def allocatable_of(node: Obj) -> Resources:
    allocatable = parse_resources(node.get("status", {}).get("allocatable"))
    return {name: milli_down(value) for name, value in allocatable.items()}


def room_of(node: Obj, used: Mapping[str, int], allocatable: Resources | None = None) -> Room:
    """``allocatable`` may be given pre-parsed (the cache keeps it per node version)."""
    alloc = allocatable if allocatable is not None else allocatable_of(node)
    free = {name: max(value - used.get(name, 0), 0) for name, value in alloc.items()}
    name = str(node.get("metadata", {}).get("name", ""))
    return Room(name, free, alloc, blocking_taints(node))


def fits(request: Mapping[str, int], free: Mapping[str, int]) -> bool:
    """Every positive request is covered; a resource the node lacks counts as zero."""
    return all(value <= 0 or value <= free.get(name, 0) for name, value in request.items())


def take(room: Room, request: Mapping[str, int]) -> None:
    for name, value in request.items():
        room.free[name] = room.free.get(name, 0) - value


def spread_choice(rooms: list[Room], request: Mapping[str, int]) -> Room | None:
    """Where a spreading scheduler would put the pod: the fitting room with most free cpu."""
    fitting = [r for r in rooms if fits(request, r.free)]
    return max(fitting, key=lambda r: (r.free.get("cpu", 0), r.node)) if fitting else None


def _show(name: str, value: int) -> str:
    exact = Fraction(value, MILLI)
    if name == "cpu" and exact.denominator != 1:
        return f"{name} {value:g}m"
    if name in ("memory", "ephemeral-storage") and exact >= 2**20:
        return f"{name} {float(exact / 2**20):g}Mi"
    return f"{name} {float(exact):g}"


def _taint_text(taint: Obj) -> str:
    value = taint.get("value")
    return f"{taint.get('key', '')}{'=' + str(value) if value else ''}:{taint.get('effect', '')}"


def misfit(
    cluster: str, rooms: list[Room], request: Mapping[str, int], tolerations: Iterable[Obj] = ()
) -> str | None:
    """Why no room open to the pod takes ``request`` (None if one does), phrased for
    FailedScheduling."""
    if not rooms:
        return f"leaf node(s) of {cluster} with no Ready, schedulable member node"
    usable = open_to(rooms, tolerations)
    if not usable:
        taints = sorted({_taint_text(t) for r in rooms for t in r.taints})
        shown = ", ".join(taints[:3]) + (", ..." if len(taints) > 3 else "")
        return (
            f"leaf node(s) of {cluster} whose member nodes all have taints the pod does not "
            f"tolerate ({shown})"
        )
    if any(fits(request, r.free) for r in usable):
        return None
    wanted = {n: v for n, v in request.items() if v > 0}
    short = [n for n, v in wanted.items() if all(r.free.get(n, 0) < v for r in usable)]
    asked = ", ".join(_show(n, wanted[n]) for n in sorted(wanted) if n != "pods")
    tainted = len(rooms) - len(usable)
    aside = f"; {tainted} member node(s) with taints the pod does not tolerate" if tainted else ""
    if short:
        most = ", ".join(_show(n, max(r.free.get(n, 0) for r in usable)) for n in short)
        return (
            f"leaf node(s) of {cluster} with no member node that fits the pod "
            f"(requests {asked or 'a pod slot'}; most free on one member node: {most}{aside})"
        )
    return (
        f"leaf node(s) of {cluster} with no member node that fits the pod "
        f"(requests {asked}: no single member node has all of it free{aside})"
    )


def headroom(rooms: Iterable[Room], request: Mapping[str, int]) -> float:
    """0..1: the largest share of cpu/memory left on one fitting node after placing the pod."""
    best = 0.0
    for room in rooms:
        if not fits(request, room.free):
            continue
        shares = [
            (room.free.get(n, 0) - request.get(n, 0)) / room.allocatable[n]
            for n in _SCORED
            if room.allocatable.get(n)
        ]
        if shares:
            best = max(best, min(shares))
    return best
