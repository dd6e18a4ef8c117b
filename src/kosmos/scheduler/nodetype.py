"""Whether a node suits a policy term's nodeType: host, leaf, mix or adv.

A *leaf node* carries ``kosmos.io/node=true`` (ClusterTree sets it and users cannot override
it); every other node is a *host node*. ``adv`` admits a node when any of its advancedTerm
clauses does: ``nodeName`` equals the node's name, ``nodeSelector`` labels all match, or one
of the node's taints is tolerated by ``tolerations`` (Kubernetes toleration semantics,
``kosmos.api.selectors.tolerated``). The adv tolerations *select* nodes, they do not make the
pod tolerate anything: the pod's own tolerations still pass through kube-scheduler's own
TaintToleration plugin first, unchanged.
"""

from __future__ import annotations

from kosmos.api import names
from kosmos.api.objects import Obj
from kosmos.api.selectors import tolerated
from kosmos.scheduler.policy import Match

#: The cluster of the host's own nodes in placement terms (the root Cluster's name).
HOST_CLUSTER = names.ROOT_CLUSTER_NAME


def is_leaf(node: Obj) -> bool:
    labels = node.get("metadata", {}).get("labels") or {}
    return bool(labels.get(names.LABEL_NODE) == "true")


def cluster_of(node: Obj) -> str:
    """The member a leaf node stands for, or the host cluster for a host node."""
    if not is_leaf(node):
        return HOST_CLUSTER
    labels = node.get("metadata", {}).get("labels") or {}
    return str(labels.get(names.LABEL_OWNER_CLUSTER) or "")


def _advanced_admits(term: Obj, node: Obj) -> bool:
    advanced = term.get("advancedTerm") or {}
    meta = node.get("metadata", {})
    if advanced.get("nodeName") and advanced["nodeName"] == meta.get("name"):
        return True
    selector: dict[str, str] = advanced.get("nodeSelector") or {}
    labels = meta.get("labels") or {}
    if selector and all(labels.get(k) == v for k, v in selector.items()):
        return True
    tolerations = advanced.get("tolerations") or []
    taints = node.get("spec", {}).get("taints") or []
    return bool(tolerations) and any(tolerated(taint, tolerations) for taint in taints)


def rejection(found: Match | None, node: Obj) -> str | None:
    """Why the term keeps the pod off ``node`` (None: the node suits it).

    The reason is the same for every node rejected for the same cause, because
    kube-scheduler's FailedScheduling message counts nodes per distinct reason.
    """
    if found is None:
        return None
    kind = found.node_type
    if kind == "host" and is_leaf(node):
        return f"leaf node(s) excluded: {found.describe()} allows host nodes only"
    if kind == "leaf" and not is_leaf(node):
        return f"host node(s) excluded: {found.describe()} allows leaf nodes only"
    if kind == "adv" and not _advanced_admits(found.term, node):
        return f"node(s) not admitted by the advancedTerm of {found.describe()}"
    return None
