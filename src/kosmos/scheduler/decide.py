"""The extender's decisions for one pod: which candidate nodes pass, and how good each is.

kube-scheduler has already run its own filter plugins (resources, affinity, taints, volume
binding) and hands the extender the nodes that passed. The filter then applies, per node:

1. the distribution policy term's nodeType (``nodetype``) — unresolvable;
2. the pod's claims (``volumes``) — unresolvable;
3. true capacity of leaf nodes (``capacity``): some member node whose taints the pod
   tolerates must fit it — resolvable (preemption can free room);

and finally, when the term has a ``placement``, keeps only the nodes of the one cluster the
pod's workload needs next (``placement``), recording that choice in the ledger. Offering one
cluster is what makes the choice knowable before the binding happens.

DaemonSet pods are placed per node by their controller: policies and placement do not apply
to them, volumes and capacity still do. Everything here reads a ``View`` (the caches) and is
pure otherwise, so it is unit-tested with plain dicts.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from kosmos.api.objects import Obj, is_deleting, pod_terminal
from kosmos.scheduler import nodetype, placement, policy, volumes
from kosmos.scheduler.capacity import Room, headroom, misfit, open_to, scheduling_request
from kosmos.scheduler.ledger import Ledger

MAX_SCORE = 10  # extenderv1.MaxExtenderPriority
_ORDINAL = re.compile(r"-(\d+)$")
UNKNOWN_NODE = "node(s) not yet in the kosmos-scheduler-extender cache"


@dataclass(frozen=True)
class Owner:
    """The workload a pod belongs to, as far as placement counts: a ReplicaSet or StatefulSet."""

    kind: str
    uid: str
    name: str
    replicas: int


@dataclass(frozen=True)
class Rooms:
    """The real nodes behind a node: the member nodes of a leaf node, or a host node itself."""

    cluster: str
    rooms: list[Room]


class View(Protocol):
    """What the decisions read; the extender's caches implement it."""

    def node(self, name: str) -> Obj | None: ...
    def policies(self, namespace: str) -> list[Obj]: ...
    def cluster_policies(self) -> list[Obj]: ...
    def claim(self, key: str) -> Obj | None: ...
    def volume(self, name: str) -> Obj | None: ...
    def storage_class(self, name: str) -> Obj | None: ...
    def owner(self, pod: Obj) -> Owner | None: ...
    def owner_pods(self, owner_uid: str) -> list[Obj]: ...
    def rooms(self, node: Obj) -> Rooms | None: ...


@dataclass
class Filtered:
    """The filter's answer: passing nodes, failures by node, and what to reserve."""

    nodes: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    unresolvable: dict[str, str] = field(default_factory=dict)
    match: policy.Match | None = None
    #: (owner UID, cluster) when placement chose the cluster
    reserve: tuple[str, str] | None = None
    #: removed nodes per cause: unknown, policy, volume, capacity, placement
    causes: Counter[str] = field(default_factory=Counter)
    #: prioritize's answer for the passing nodes, from the rooms the filter looked at
    scores: dict[str, int] = field(default_factory=dict)


def _uid(pod: Obj) -> str:
    return str(pod.get("metadata", {}).get("uid", ""))


def live(pod: Obj) -> bool:
    """Neither being deleted nor finished: the pod still counts for its workload."""
    return not is_deleting(pod) and not pod_terminal(pod)


def placed(view: View, ledger: Ledger, owner: Owner, me: str) -> Counter[str]:
    """The owner's other live pods per cluster: bound ones, then reserved ones."""
    counts: Counter[str] = Counter()
    seen = {me}
    for pod in view.owner_pods(owner.uid):
        uid = _uid(pod)
        if uid in seen or not live(pod):
            seen.add(uid)
            continue
        seen.add(uid)
        node_name = pod.get("spec", {}).get("nodeName")
        if node_name:
            node = view.node(node_name)
            if node is not None:
                counts[nodetype.cluster_of(node)] += 1
            continue
        reservation = ledger.get(uid)
        if reservation is not None:
            counts[reservation.cluster] += 1
    for reservation in ledger.of_owner(owner.uid):
        if reservation.uid not in seen:
            counts[reservation.cluster] += 1
    return counts


def _tolerations(pod: Obj) -> list[Obj]:
    return list(pod.get("spec", {}).get("tolerations") or [])


def _node_reasons(
    view: View,
    found: policy.Match | None,
    claims: volumes.Pins,
    pod: tuple[dict[str, Any], list[Obj]],
    node: Obj,
) -> tuple[str, str, Rooms | None]:
    """("", "", rooms) if the node passes, else (reason, cause, _); ``pod`` is its
    (request, tolerations)."""
    reason = nodetype.rejection(found, node)
    if reason:
        return reason, "policy", None
    reason = claims.rejection(node)
    if reason:
        return reason, "volume", None
    behind = view.rooms(node)
    request, tolerations = pod
    if behind is not None and nodetype.is_leaf(node):
        reason = misfit(behind.cluster, behind.rooms, request, tolerations)
        if reason:
            return reason, "capacity", behind
    return "", "", behind


def score(behind: Rooms | None, request: dict[str, int], tolerations: list[Obj]) -> int:
    """Headroom on the real nodes behind, counting only those the pod may use."""
    if behind is None:
        return 0
    return round(MAX_SCORE * headroom(open_to(behind.rooms, tolerations), request))


def filter_nodes(view: View, ledger: Ledger, pod: Obj, names: Iterable[str]) -> Filtered:
    daemon = policy.is_daemon_pod(pod)
    meta = pod.get("metadata", {})
    found = None
    if not daemon:
        found = policy.match(pod, view.policies(meta.get("namespace", "")), view.cluster_policies())
    out = Filtered(match=found)
    claims = volumes.pins(pod, view.claim, view.volume, view.storage_class)
    request, tolerations = scheduling_request(pod), _tolerations(pod)
    survivors: list[tuple[str, str]] = []  # (node, cluster)
    for name in names:
        node = view.node(name)
        if node is None:
            out.failed[name] = UNKNOWN_NODE
            out.causes["unknown"] += 1
            continue
        reason, cause, behind = _node_reasons(view, found, claims, (request, tolerations), node)
        if reason:
            # only room can be freed (by preemption); the rest no eviction changes
            (out.failed if cause == "capacity" else out.unresolvable)[name] = reason
            out.causes[cause] += 1
        else:
            survivors.append((name, nodetype.cluster_of(node)))
            out.scores[name] = score(behind, request, tolerations)
    shares = placement.shares_of(found.term) if found is not None else []
    if found is None or not shares:
        out.nodes = [n for n, _ in survivors]
        return out
    owner = view.owner(pod)
    allowed, why = _placement_clusters(
        view, ledger, pod, owner=owner, found=found, shares=shares, survivors=survivors
    )
    for name, where in survivors:
        if where in allowed:
            out.nodes.append(name)
        else:
            out.unresolvable[name] = why
            out.causes["placement"] += 1
    if owner is not None and owner.kind == "ReplicaSet" and len(allowed) == 1:
        out.reserve = (owner.uid, next(iter(allowed)))
    return out


def _placement_clusters(
    view: View,
    ledger: Ledger,
    pod: Obj,
    *,
    owner: Owner | None,
    found: policy.Match,
    shares: list[placement.Share],
    survivors: list[tuple[str, str]],
) -> tuple[set[str], str]:
    """The clusters the pod may use under the term's placement, and the reason for the rest."""
    listed = [s.name for s in shares]
    term = f"term {found.term_name} of {found.kind} {found.policy}"
    if owner is None:  # no workload to divide: any listed cluster
        return set(listed), f"placement of {term}: only {', '.join(listed)}"
    if owner.kind == "StatefulSet":
        ordinal_match = _ORDINAL.search(str(pod.get("metadata", {}).get("name", "")))
        ordinal = int(ordinal_match.group(1)) if ordinal_match else -1
        seat = placement.seat_of_ordinal(shares, ordinal)
        if seat is None:
            return set(), f"placement of {term}: ordinal {ordinal} has no cluster"
        return {seat}, f"placement of {term}: ordinal {ordinal} runs in {seat}"
    feasible = {where for _, where in survivors}
    counts = placed(view, ledger, owner, _uid(pod))
    choice = placement.choose(shares, owner.replicas, counts, feasible)
    subject = f"{owner.kind} {owner.name}"
    if choice.cluster is None:
        return set(), f"placement of {term}: {subject}: {choice.reason}"
    return {choice.cluster}, f"placement of {term}: {subject} pod goes to {choice.reason}"


def priorities(view: View, pod: Obj, names: Iterable[str]) -> list[dict[str, Any]]:
    """0..10 per node: free share of cpu/memory left on the best real node behind it.

    Leaf nodes advertise summed room, so kube-scheduler's own scores overrate a leaf whose
    room is fragmented over many small member nodes; this score looks at one node at a time.
    """
    request, tolerations = scheduling_request(pod), _tolerations(pod)
    out = []
    for name in names:
        node = view.node(name)
        behind = view.rooms(node) if node else None
        out.append({"Host": name, "Score": score(behind, request, tolerations)})
    return out
