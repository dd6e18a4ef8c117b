"""Where a leaf node's pods go: the shared vocabulary of the node side and the pod side.

A *leaf node* is a Node object in the host that stands for some member nodes: the whole
member cluster, exactly one member node (one-to-one) or a label-selected group. The node
side builds ``LeafNode`` values from a Cluster's ``clusterTreeOptions.leafModels``
(:mod:`kosmos.api.leafmodel`); the pod side turns the leaf node a host pod is bound to into
a ``Placement`` that says how the pod must be pinned inside the member.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kosmos.api.leafmodel import LeafMode, LeafNode
from kosmos.api.objects import Obj


@dataclass(frozen=True)
class Placement:
    """How a pod bound to ``host_node`` is placed in member cluster ``cluster``."""

    cluster: str
    host_node: str
    mode: LeafMode = "whole-cluster"
    #: one-to-one: the member node the pod is pinned to (``spec.nodeName``)
    member_node: str | None = None
    #: group: a metav1.LabelSelector over member node labels the pod must land on
    node_selector: Obj | None = None
    #: the host leaf node's labels (convert policies select on them)
    node_labels: dict[str, str] = field(default_factory=dict)


def placement_of(leaf: LeafNode, node_labels: dict[str, str] | None = None) -> Placement:
    """Where pods bound to ``leaf`` go in its member; ``node_labels`` are the live labels."""
    return Placement(
        cluster=leaf.cluster,
        host_node=leaf.name,
        mode=leaf.mode,
        member_node=leaf.member_node,
        node_selector=leaf.node_selector,
        node_labels=dict(node_labels or leaf.labels),
    )
