"""Which distribution policy term governs a pod: one documented precedence, made total.

A match ranks by scope, then by how it selects: a DistributionPolicy in the pod's namespace
beats any ClusterDistributionPolicy, and within one scope a ``name`` match beats a
``namePrefix`` match, which beats a ``labelSelector`` match. Further rules leave exactly one
winner, so two matches of the same rank never depend on the order an informer lists them:

1. scope: namespaced over cluster-scoped;
2. how: ``name`` (the exact pod name) over ``namePrefix`` over ``labelSelector``;
3. precision within the same way: the longer prefix, or the selector with more
   requirements (matchLabels pairs + matchExpressions);
4. then the policy whose name sorts first, then the selector listed first in it.

``labelSelector`` has the Kubernetes meaning (every matchLabels pair and every expression
holds). A pod no policy selects is not restricted (nodeType ``mix``). docs/scheduler.md
shows these rules with examples.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from kosmos.api.objects import Obj
from kosmos.api.selectors import selector_matches, selector_size

NAMESPACED = "DistributionPolicy"
CLUSTER_SCOPED = "ClusterDistributionPolicy"
_WAYS = {"name": 3, "namePrefix": 2, "labelSelector": 1}
DEFAULT_NODE_TYPE = "mix"


@dataclass(frozen=True)
class Match:
    """The policy term a pod falls under, and which selector of which policy chose it."""

    kind: str
    policy: str  # "namespace/name" or "name"
    selector: int  # index in spec.resourceSelectors
    way: str  # name | namePrefix | labelSelector
    term: Obj

    @property
    def term_name(self) -> str:
        return str(self.term.get("name", ""))

    @property
    def node_type(self) -> str:
        return str(self.term.get("nodeType") or DEFAULT_NODE_TYPE)

    def describe(self) -> str:
        """``DistributionPolicy ns/p resourceSelectors[1] (namePrefix) -> term t (leaf)``."""
        return (
            f"{self.kind} {self.policy} resourceSelectors[{self.selector}] ({self.way}) "
            f"-> term {self.term_name} ({self.node_type})"
        )


def _way(selector: Obj, pod_name: str, labels: dict[str, str]) -> tuple[str, int] | None:
    """How ``selector`` selects the pod and how precisely, or None if it does not."""
    if selector.get("name"):
        return ("name", 0) if selector["name"] == pod_name else None
    if selector.get("namePrefix"):
        prefix = str(selector["namePrefix"])
        return ("namePrefix", len(prefix)) if pod_name.startswith(prefix) else None
    if "labelSelector" in selector and isinstance(selector["labelSelector"], dict):
        chosen: Obj = selector["labelSelector"]
        if selector_matches(chosen, labels):
            return "labelSelector", selector_size(chosen)
    return None


def _policy_id(policy: Obj) -> str:
    meta = policy.get("metadata", {})
    namespace = meta.get("namespace")
    return f"{namespace}/{meta.get('name', '')}" if namespace else str(meta.get("name", ""))


def _best_in_scope(kind: str, policies: Iterable[Obj], pod: Obj) -> Match | None:
    meta = pod.get("metadata", {})
    pod_name = str(meta.get("name") or "")
    labels = meta.get("labels") or {}
    best: tuple[tuple[int, int], tuple[str, int]] | None = None
    found: Match | None = None
    for policy in policies:
        spec = policy.get("spec") or {}
        terms = {t.get("name"): t for t in spec.get("policyTerms") or []}
        policy_name = str(policy.get("metadata", {}).get("name", ""))
        for index, selector in enumerate(spec.get("resourceSelectors") or []):
            term = terms.get(selector.get("policyName"))
            how = _way(selector, pod_name, labels) if term is not None else None
            if how is None or term is None:
                continue
            rank = (_WAYS[how[0]], how[1])
            order = (policy_name, index)
            if best is None or rank > best[0] or (rank == best[0] and order < best[1]):
                best = (rank, order)
                found = Match(kind, _policy_id(policy), index, how[0], term)
    return found


def match(pod: Obj, namespaced: Iterable[Obj], cluster_scoped: Iterable[Obj]) -> Match | None:
    """The term governing ``pod``; ``namespaced`` must be the policies of its namespace."""
    return _best_in_scope(NAMESPACED, namespaced, pod) or _best_in_scope(
        CLUSTER_SCOPED, cluster_scoped, pod
    )


def is_daemon_pod(pod: Obj) -> bool:
    """DaemonSet pods are placed per node by their controller: policies never apply."""
    refs = pod.get("metadata", {}).get("ownerReferences") or []
    return any(r.get("kind") == "DaemonSet" and r.get("controller") for r in refs)
