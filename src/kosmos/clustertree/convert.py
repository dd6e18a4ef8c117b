"""Scheduling fields of a member pod: the host's intent, the leaf's placement, convert policies.

The host scheduler already chose the leaf node, so everything in a host pod's scheduling
fields that talks about *host* nodes (the leaf's own ``kosmos.io/...`` labels, node roles, its
hostname, ``matchFields`` on host node names) has been used up and would make the member pod
unschedulable: only requirements on member-meaningful keys are carried over. Then come, in
this order, the placement of a group leaf (a hard constraint, ANDed in), and the first
matching (Cluster)PodConvertPolicy.

Every public function here is pure: inputs are never mutated, results are fresh objects.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from typing import Any

from kosmos.api import names
from kosmos.api.objects import Obj

#: label keys that only mean something on host nodes (the leaf node's own identity and role)
HOST_ONLY_PREFIXES = ("kosmos.io/", "kosmos-io/", "node-role.kubernetes.io/")
HOST_ONLY_KEYS = frozenset({names.LABEL_ROLE, names.LABEL_HOSTNAME})

#: the pod fields the ``kosmos.io/cluster-selector`` annotation may set
INTENT_FIELDS = ("nodeSelector", "affinity", "tolerations", "topologySpreadConstraints")

#: (converter, spec field) in application order; each converter's payload key is the field name
CONVERTERS: tuple[tuple[str, str], ...] = (
    ("schedulerNameConverter", "schedulerName"),
    ("nodeNameConverter", "nodeName"),
    ("nodeSelectorConverter", "nodeSelector"),
    ("tolerationConverter", "tolerations"),
    ("affinityConverter", "affinity"),
    ("topologySpreadConstraintsConverter", "topologySpreadConstraints"),
    ("hostAliasesConverter", "hostAliases"),
)

_REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"
_PREFERRED = "preferredDuringSchedulingIgnoredDuringExecution"


def is_host_only_key(key: str) -> bool:
    """Whether a node label key describes the host leaf node rather than member nodes."""
    return key in HOST_ONLY_KEYS or key.startswith(HOST_ONLY_PREFIXES)


def _is_empty(value: Any) -> bool:
    return value is None or value in ("", [], {})


def _set_or_pop(obj: Obj, key: str, value: Any) -> None:
    """Kubernetes treats an empty list/map like an absent one; absent keeps output canonical."""
    if _is_empty(value):
        obj.pop(key, None)
    else:
        obj[key] = value


# -- metav1.LabelSelector -----------------------------------------------------------------


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """metav1.LabelSelector semantics: every matchLabels pair and every expression must hold.

    An empty selector matches everything; ``None`` matches nothing (as ``LabelSelectorAsSelector``
    does for a nil selector; callers decide what an *absent* selector means). An invalid
    expression (unknown operator, In/NotIn without values, Exists/DoesNotExist with values)
    makes the selector match nothing, as the apiserver's conversion would fail on it.
    """
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    return all(_holds(expr, labels) for expr in selector.get("matchExpressions") or [])


def _holds(expr: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key, operator = expr.get("key"), expr.get("operator")
    values = expr.get("values") or []
    if not key:
        return False
    if operator in ("In", "NotIn"):
        if not values:
            return False
        found = key in labels and labels[key] in values
        return found if operator == "In" else not found
    if operator in ("Exists", "DoesNotExist"):
        return not values and (key in labels) == (operator == "Exists")
    return False


def node_requirements(selector: Mapping[str, Any] | None) -> list[Obj]:
    """A LabelSelector as NodeSelectorRequirements (matchLabels → ``In [value]``, sorted by key;
    matchExpressions copied: node selectors share the four label-selector operators)."""
    if not selector:
        return []
    out: list[Obj] = [
        {"key": key, "operator": "In", "values": [value]}
        for key, value in sorted((selector.get("matchLabels") or {}).items())
    ]
    out.extend(copy.deepcopy(list(selector.get("matchExpressions") or [])))
    return out


# -- scheduling intent --------------------------------------------------------------------


def cluster_selector(annotations: Mapping[str, str]) -> Obj | None:
    """The member-side scheduling the user wrote in ``kosmos.io/cluster-selector`` (a JSON
    object), or None when absent or unreadable (a broken annotation must not block the pod)."""
    raw = annotations.get(names.ANNOTATION_CLUSTER_SELECTOR)
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def member_scheduling(spec: Obj, annotations: Mapping[str, str]) -> Obj:
    """The host pod's scheduling fields as the member scheduler should see them.

    Host-only requirements are pruned from nodeSelector and node affinity; podAffinity,
    podAntiAffinity, topologySpreadConstraints and tolerations are the user's topology intent
    and stay. Then the keys present in ``kosmos.io/cluster-selector`` replace their fields
    verbatim (a ``null`` clears it): the user wrote them for the member on purpose.
    """
    spec = copy.deepcopy(spec)
    node_selector = spec.get("nodeSelector") or {}
    _set_or_pop(
        spec,
        "nodeSelector",
        {k: v for k, v in node_selector.items() if not is_host_only_key(k)},
    )
    affinity = spec.get("affinity") or {}
    node_affinity = affinity.get("nodeAffinity")
    if node_affinity is not None:
        _set_or_pop(affinity, "nodeAffinity", _prune_node_affinity(node_affinity))
    _set_or_pop(spec, "affinity", affinity)
    for key, value in (cluster_selector(annotations) or {}).items():
        if key in INTENT_FIELDS:
            _set_or_pop(spec, key, copy.deepcopy(value))
    return spec


def _has_requirements(term: Mapping[str, Any]) -> bool:
    return bool(term.get("matchExpressions") or term.get("matchFields"))


def _prune_term(term: Mapping[str, Any]) -> Obj:
    """A NodeSelectorTerm without host-only requirements. ``matchFields`` only supports
    ``metadata.name``, a host node name, so it always goes."""
    kept = [e for e in term.get("matchExpressions") or [] if not is_host_only_key(e.get("key", ""))]
    return {"matchExpressions": kept} if kept else {}


def _prune_node_affinity(node_affinity: Obj) -> Obj:
    """Required terms are ORed. A term that held only host-only requirements was satisfiable
    by the leaf node, so in the member that alternative is unconstrained and the whole
    disjunction is true: the required block goes rather than narrowing the pod to the other
    alternatives. Preferences that become empty are dropped (they would weigh nothing)."""
    out = dict(node_affinity)
    required = out.pop(_REQUIRED, None) or {}
    terms: list[Obj] = []
    for term in required.get("nodeSelectorTerms") or []:
        pruned = _prune_term(term)
        if not pruned and _has_requirements(term):
            terms = []
            break
        terms.append(pruned)
    if terms:
        out[_REQUIRED] = {**required, "nodeSelectorTerms": terms}
    preferred = []
    for item in out.pop(_PREFERRED, None) or []:
        preference = _prune_term(item.get("preference") or {})
        if preference:
            preferred.append({**item, "preference": preference})
    _set_or_pop(out, _PREFERRED, preferred)
    return out


def require_node_labels(spec: Obj, selector: Mapping[str, Any] | None) -> Obj:
    """AND a group leaf's member-node selector into every required node-affinity term.

    Required terms are ORed, so the selector must join each of them; with no term, one term
    holding just the selector is created. Requirements already in a term are not repeated,
    so applying this twice changes nothing.
    """
    requirements = node_requirements(selector)
    if not requirements:
        return spec
    spec = copy.deepcopy(spec)
    affinity = spec.setdefault("affinity", {})
    node_affinity = affinity.setdefault("nodeAffinity", {})
    required = node_affinity.setdefault(_REQUIRED, {})
    terms = required.get("nodeSelectorTerms") or [{}]
    required["nodeSelectorTerms"] = [_and_term(term, requirements) for term in terms]
    return spec


def _and_term(term: Obj, requirements: list[Obj]) -> Obj:
    expressions = list(term.get("matchExpressions") or [])
    expressions.extend(r for r in requirements if r not in expressions)
    return {**term, "matchExpressions": expressions}


# -- (Cluster)PodConvertPolicy ------------------------------------------------------------


def matching_policy(
    policies: Sequence[Obj], pod_labels: Mapping[str, str], node_labels: Mapping[str, str]
) -> Obj | None:
    """The first policy (in the caller's order) with converters whose labelSelector matches the
    pod and whose leafNodeSelector (absent: every leaf) matches the host leaf node's labels."""
    for policy in policies:
        spec = policy.get("spec") or {}
        if not spec.get("converters"):
            continue
        if not selector_matches(spec.get("labelSelector"), pod_labels):
            continue
        leaf_selector = spec.get("leafNodeSelector")
        if leaf_selector is not None and not selector_matches(leaf_selector, node_labels):
            continue
        return policy
    return None


def apply_converters(spec: Obj, converters: Mapping[str, Any]) -> Obj:
    """Converters in their fixed order: ``add`` sets a field only when it is empty or absent,
    ``remove`` deletes it, ``replace`` overwrites it. A converter without its payload (which the
    CRD rejects for add/replace) does nothing."""
    spec = copy.deepcopy(spec)
    for converter_key, field_name in CONVERTERS:
        converter = converters.get(converter_key)
        if not isinstance(converter, Mapping):
            continue
        convert_type = converter.get("convertType")
        if convert_type == "remove":
            spec.pop(field_name, None)
        elif field_name not in converter:
            continue
        elif convert_type == "replace" or (
            convert_type == "add" and _is_empty(spec.get(field_name))
        ):
            spec[field_name] = copy.deepcopy(converter[field_name])
    return spec


def apply_policies(
    pod: Obj, policies: Sequence[Obj], host_node_labels: Mapping[str, str]
) -> tuple[Obj, str | None]:
    """``pod`` (a copy) rewritten by the first matching policy, and that policy's name (None
    when no policy applies; the pod is then returned as an unchanged copy)."""
    pod = copy.deepcopy(pod)
    labels = (pod.get("metadata") or {}).get("labels") or {}
    policy = matching_policy(policies, labels, host_node_labels)
    if policy is None:
        return pod, None
    pod["spec"] = apply_converters(pod.get("spec") or {}, policy["spec"]["converters"])
    name = (policy.get("metadata") or {}).get("name")
    return pod, str(name) if name is not None else None
