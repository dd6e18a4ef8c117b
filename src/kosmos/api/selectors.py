"""What selects what in the core API: label selectors over labels, tolerations over taints.

Several components decide with these rules (ClusterTree which member nodes a leaf node stands
for, kosmos-scheduler which pods a policy selects and which nodes an ``adv`` term admits), and
each must mean exactly what the apiserver and kube-scheduler mean, so the rules live once here
as pure functions of plain JSON objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

SELECTOR_OPERATORS = frozenset({"In", "NotIn", "Exists", "DoesNotExist"})
#: Taint effects that keep pods off a node (PreferNoSchedule only lowers its score).
HARD_EFFECTS = frozenset({"NoSchedule", "NoExecute"})


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """metav1.LabelSelector semantics: every requirement holds; ``{}`` matches everything.

    A requirement with an unknown operator matches nothing (the apiserver would reject it).
    """
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    return all(requirement_holds(expr, labels) for expr in selector.get("matchExpressions") or [])


def requirement_holds(expr: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """One ``matchExpressions`` entry (In, NotIn, Exists, DoesNotExist) against ``labels``."""
    key, operator = expr.get("key", ""), expr.get("operator")
    values = expr.get("values") or []
    if operator == "In":
        return key in labels and labels[key] in values
    if operator == "NotIn":
        return key not in labels or labels[key] not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    return False


def selector_size(selector: Mapping[str, Any]) -> int:
    """How many requirements a selector states (matchLabels pairs + matchExpressions)."""
    return len(selector.get("matchLabels") or {}) + len(selector.get("matchExpressions") or [])


def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """corev1 ``Toleration.ToleratesTaint``: effect, key and operator/value all agree.

    An empty effect tolerates every effect; an empty key with ``Exists`` tolerates every
    taint; ``Equal`` (the default operator) needs the same value, ``Exists`` any value.
    Operators this code does not know tolerate nothing.
    """
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    if operator == "Equal":
        return (toleration.get("value") or "") == (taint.get("value") or "")
    return False


def tolerated(taint: Mapping[str, Any], tolerations: Iterable[Mapping[str, Any]]) -> bool:
    return any(tolerates(t, taint) for t in tolerations)
