"""Dividing a workload's pods between clusters: fixed counts first, then weights.

A term's ``placement.clusters`` defines an endless *seat order*: the clusters with fixed
``replicas`` take the first seats (in list order, each as many as it asks), then the
weighted clusters take seats one at a time by the Sainte-Lague rule (the next seat goes to
the cluster with the largest ``weight / (2 * seats + 1)``, ties in list order). A workload of
``n`` pods should run the first ``n`` seats. Sainte-Lague is a divisor method, so it is
*house-monotone*: adding a pod never takes a seat away from a cluster. That is what makes
scaling keep the ratio both ways:

* scale up / recreate: each new pod of a ReplicaSet goes to a cluster still below its share
  of the current replica count (``choose``);
* scale down: the ReplicaSet controller deletes the pods with the lowest
  ``controller.kubernetes.io/pod-deletion-cost`` first, and every pod's cost is minus the
  index of the seat it holds (``deletion_costs``), so the pods holding the last seats go;
* StatefulSets delete the highest ordinals, so ordinal ``k`` simply takes seat ``k``
  (``seat_of_ordinal``).

Weights 7:3 give 7/3 at 10 pods, 14/6 at 20, and 2:1 over 2 pods gives 1/1 (Karmada's
static weights give 2/0, karmada-io/karmada#6424).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from itertools import islice

from kosmos.api.objects import Obj

#: The cost of a pod holding no seat (its cluster is over its share): deleted first.
OVERFLOW_COST = -1_000_000
#: Give up looking for later seats of a cluster after this many seats (extreme weights).
_SEAT_LIMIT = 100_000


@dataclass(frozen=True)
class Share:
    name: str
    replicas: int | None = None
    weight: int | None = None


def shares_of(term: Obj) -> list[Share]:
    """The term's ``placement.clusters`` ([] when the term has no placement)."""
    clusters = (term.get("placement") or {}).get("clusters") or []
    return [
        Share(str(c.get("name", "")), c.get("replicas"), c.get("weight"))
        for c in clusters
        if c.get("name")
    ]


def seat_order(shares: Sequence[Share]) -> Iterator[str]:
    """The cluster of each seat, in order; finite when no cluster has a weight."""
    for share in shares:
        if share.replicas is not None:
            yield from [share.name] * max(share.replicas, 0)
    weighted = [s for s in shares if s.weight]
    if not weighted:
        return
    weights = [s.weight or 0 for s in weighted]
    given = [0] * len(weighted)
    while True:
        best = 0
        for i in range(1, len(weighted)):
            # weights[i] / (2 g_i + 1) > weights[best] / (2 g_best + 1), in integers
            if weights[i] * (2 * given[best] + 1) > weights[best] * (2 * given[i] + 1):
                best = i
        given[best] += 1
        yield weighted[best].name


def targets(shares: Sequence[Share], total: int) -> dict[str, int]:
    """How many of ``total`` pods each listed cluster should run."""
    counts = Counter(islice(seat_order(shares), max(total, 0)))
    return {s.name: counts.get(s.name, 0) for s in shares}


@dataclass(frozen=True)
class Choice:
    """The cluster a new pod goes to, or why none: ``reason`` explains either way."""

    cluster: str | None
    reason: str


def _split(want: Mapping[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in want.items())


def choose(
    shares: Sequence[Share],
    total: int,
    placed: Mapping[str, int],
    feasible: set[str],
) -> Choice:
    """The cluster for one more pod of a workload of ``total`` pods.

    ``placed`` counts the workload's other pods per cluster (bound, or reserved by an
    earlier decision); ``feasible`` are the clusters with at least one node left that can
    take the pod. Among the clusters still below their share, the least filled one (lowest
    placed/share) that is feasible wins; ties go to the larger gap, then list order.
    """
    want = targets(shares, total)
    below = [s.name for s in shares if placed.get(s.name, 0) < want[s.name]]
    if not below:
        return Choice(None, f"every cluster has its share of the {total} pods ({_split(want)})")
    open_ = [name for name in below if name in feasible]
    if not open_:
        return Choice(
            None,
            f"the clusters below their share ({', '.join(below)}; split {_split(want)}) "
            "have no node that can take the pod",
        )

    def fill(name: str) -> tuple[Fraction, int]:
        return Fraction(placed.get(name, 0), want[name]), -(want[name] - placed.get(name, 0))

    best = min(open_, key=lambda n: (*fill(n), below.index(n)))
    return Choice(best, f"{best} runs {placed.get(best, 0)} of its {want[best]} pods")


def seat_of_ordinal(shares: Sequence[Share], ordinal: int) -> str | None:
    """The cluster of seat ``ordinal`` (a StatefulSet pod's index); None past the last seat."""
    if ordinal < 0:
        return None
    return next(islice(seat_order(shares), ordinal, None), None)


def deletion_costs(
    shares: Sequence[Share], pods_by_cluster: Mapping[str, Sequence[str]]
) -> dict[str, int]:
    """``controller.kubernetes.io/pod-deletion-cost`` per pod key: minus its seat index.

    ``pods_by_cluster`` lists each cluster's bound pods, the one to keep longest first (the
    caller orders them oldest first). The j-th pod of a cluster holds that cluster's j-th
    seat; pods beyond a cluster's seats (over its fixed count, or a cluster the placement
    does not list) get ``OVERFLOW_COST`` and are deleted first.
    """
    caps = {s.name: (s.replicas or 0) if s.weight is None else _SEAT_LIMIT for s in shares}
    need = {c: min(len(p), caps.get(c, 0)) for c, p in pods_by_cluster.items()}
    need = {c: n for c, n in need.items() if n > 0}
    seat_index: dict[str, list[int]] = {c: [] for c in need}
    pending = sum(need.values())
    for index, cluster in enumerate(islice(seat_order(shares), _SEAT_LIMIT)):
        if pending == 0:
            break
        held = seat_index.get(cluster)
        if held is not None and len(held) < need[cluster]:
            held.append(index)
            pending -= 1
    costs: dict[str, int] = {}
    for cluster, pods in pods_by_cluster.items():
        held = seat_index.get(cluster, [])
        for j, pod in enumerate(pods):
            costs[pod] = -held[j] if j < len(held) else OVERFLOW_COST
    return costs
