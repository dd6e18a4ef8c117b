"""Leaf models: which leaf nodes a Cluster has, and which member nodes each one stands for.

Every model is read on its own (its mode, labels and taints; the first model does not decide
for the others):

* no ``leafModels``: one whole-cluster leaf node ``kosmos-<cluster>``;
* ``nodeSelector.nodeName``: one-to-one, named ``leafNodeName`` or the member node's name;
* ``nodeSelector.labelSelector`` (present, even ``{}``): a group, named ``leafNodeName`` or
  ``kosmos-<cluster>-<index>``; an empty selector is a group of every member node;
* neither: the whole cluster, named ``leafNodeName`` or ``kosmos-<cluster>``.

Invalid models raise ``LeafModelError`` naming the model index; callers report it as a Cluster
condition instead of creating half of the leaf nodes.

This is the meaning of the Cluster API's ``leafModels``, shared by every component that must
know which member nodes stand behind a leaf node: ClusterTree builds the leaf nodes from it,
kosmos-scheduler checks that a pod fits one of their member nodes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from kosmos.api import names
from kosmos.api.objects import Obj
from kosmos.api.selectors import SELECTOR_OPERATORS, selector_matches

NAME_PREFIX = "kosmos-"
MAX_NAME = 63
TAINT_EFFECTS = frozenset({"NoSchedule", "PreferNoSchedule", "NoExecute"})
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


LeafMode = Literal["whole-cluster", "one-to-one", "group"]


@dataclass(frozen=True)
class LeafNode:
    """One leaf node of a Cluster, as declared by a leaf model (or the implicit whole one)."""

    name: str
    cluster: str
    mode: LeafMode
    member_node: str | None = None
    node_selector: Obj | None = None
    labels: dict[str, str] = field(default_factory=dict)
    taints: tuple[Obj, ...] = ()


class LeafModelError(ValueError):
    """A Cluster's leaf models cannot be turned into leaf nodes."""


def cluster_name(cluster: Obj) -> str:
    name: str = cluster.get("metadata", {}).get("name", "")
    return name


def tree_enabled(cluster: Obj) -> bool:
    """Whether ClusterTree runs for this Cluster.

    ``enable`` defaults to true in the CRD when ``clusterTreeOptions`` is present; an absent
    ``clusterTreeOptions`` also means enabled, as ``kosmosctl join`` enables the tree by default.
    """
    options = cluster.get("spec", {}).get("clusterTreeOptions")
    if options is None:
        return True
    return options.get("enable", True) is not False


def is_root_cluster(cluster: Obj) -> bool:
    """The host's own Cluster (``kosmosctl install`` registers it): annotated root, or by name.

    It never gets leaf nodes, and components treat it as the host rather than a member.
    """
    annotations = cluster.get("metadata", {}).get("annotations") or {}
    return (
        annotations.get(names.ANNOTATION_CLUSTER_ROLE) == "root"
        or cluster_name(cluster) == names.ROOT_CLUSTER_NAME
    )


def truncate_name(name: str) -> str:
    """At most 63 characters, not ending in ``-`` or ``.`` (which would be an invalid name)."""
    if len(name) <= MAX_NAME:
        return name
    return name[:MAX_NAME].rstrip("-.")


def leaf_nodes(cluster: Obj) -> list[LeafNode]:
    """The leaf nodes declared by ``cluster``; raises ``LeafModelError`` for invalid models."""
    cluster_id = cluster_name(cluster)
    options = cluster.get("spec", {}).get("clusterTreeOptions") or {}
    models: list[Obj] = options.get("leafModels") or []
    if not models:
        name = truncate_name(NAME_PREFIX + cluster_id)
        return [LeafNode(name, cluster_id, "whole-cluster", taints=(dict(names.TAINT_LEAF),))]
    leaves: list[LeafNode] = []
    seen: dict[str, int] = {}
    for index, model in enumerate(models):
        leaf = _leaf_of_model(cluster_id, index, model)
        if leaf.name in seen:
            raise LeafModelError(
                f"leafModels[{index}]: leaf node name {leaf.name!r} is already used by "
                f"leafModels[{seen[leaf.name]}]"
            )
        seen[leaf.name] = index
        leaves.append(leaf)
    return leaves


def _leaf_of_model(cluster_id: str, index: int, model: Obj) -> LeafNode:
    where = f"leafModels[{index}]"
    selector = model.get("nodeSelector") or {}
    node_name: str = selector.get("nodeName") or ""
    label_selector: Obj | None = selector.get("labelSelector")
    explicit: str = model.get("leafNodeName") or ""
    mode: LeafMode
    if node_name and label_selector is not None:
        raise LeafModelError(f"{where}: set nodeSelector.nodeName or labelSelector, not both")
    if node_name:
        mode, default = "one-to-one", node_name
    elif label_selector is not None:
        _check_selector(where, label_selector)
        mode, default = "group", f"{NAME_PREFIX}{cluster_id}-{index}"
    else:
        mode, default = "whole-cluster", NAME_PREFIX + cluster_id
    name = truncate_name(explicit or default)
    if not _SUBDOMAIN.fullmatch(name):
        raise LeafModelError(f"{where}: {name!r} is not a valid node name")
    return LeafNode(
        name=name,
        cluster=cluster_id,
        mode=mode,
        member_node=node_name or None,
        node_selector=dict(label_selector) if label_selector is not None else None,
        labels=_labels(where, model.get("labels")),
        taints=_taints(where, model.get("taints") or []),
    )


def _labels(where: str, labels: Any) -> dict[str, str]:
    if labels is None:
        return {}
    if not isinstance(labels, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    ):
        raise LeafModelError(f"{where}: labels must map strings to strings")
    return dict(labels)


def _taints(where: str, taints: list[Obj]) -> tuple[Obj, ...]:
    """The model's taints plus the leaf taint, one per (key, effect); the leaf taint wins."""
    leaf_key = (names.TAINT_LEAF["key"], names.TAINT_LEAF["effect"])
    result: dict[tuple[str, str], Obj] = {}
    for i, taint in enumerate(taints):
        key, effect = taint.get("key"), taint.get("effect")
        if not isinstance(key, str) or not key:
            raise LeafModelError(f"{where}: taints[{i}] has no key")
        if effect not in TAINT_EFFECTS:
            raise LeafModelError(f"{where}: taints[{i}] has invalid effect {effect!r}")
        if (key, effect) != leaf_key:
            result.setdefault((key, effect), dict(taint))
    result[leaf_key] = dict(names.TAINT_LEAF)
    return tuple(result.values())


def _check_selector(where: str, selector: Any) -> None:
    """Reject selectors the apiserver's LabelSelectorAsSelector would refuse."""
    if not isinstance(selector, Mapping):
        raise LeafModelError(f"{where}: labelSelector must be an object")
    for i, expr in enumerate(selector.get("matchExpressions") or []):
        operator, values = expr.get("operator"), expr.get("values") or []
        if not expr.get("key"):
            raise LeafModelError(f"{where}: matchExpressions[{i}] has no key")
        if operator not in SELECTOR_OPERATORS:
            raise LeafModelError(f"{where}: matchExpressions[{i}] operator {operator!r}")
        if operator in ("In", "NotIn") and not values:
            raise LeafModelError(f"{where}: matchExpressions[{i}] {operator} needs values")
        if operator in ("Exists", "DoesNotExist") and values:
            raise LeafModelError(f"{where}: matchExpressions[{i}] {operator} takes no values")


def is_excluded(node: Obj) -> bool:
    """Member nodes labelled ``kosmos.io/exclude=true`` never back a leaf node."""
    labels = node.get("metadata", {}).get("labels") or {}
    return bool(labels.get(names.LABEL_EXCLUDE) == "true")


def member_nodes_of(leaf: LeafNode, nodes: Iterable[Obj]) -> list[Obj]:
    """The member Node objects ``leaf`` stands for, in input order, excluded nodes left out."""
    chosen: list[Obj] = []
    for node in nodes:
        if is_excluded(node):
            continue
        metadata = node.get("metadata", {})
        if leaf.mode == "one-to-one":
            if metadata.get("name") == leaf.member_node:
                chosen.append(node)
        elif leaf.mode == "group":
            if selector_matches(leaf.node_selector or {}, metadata.get("labels") or {}):
                chosen.append(node)
        else:
            chosen.append(node)
    return chosen
