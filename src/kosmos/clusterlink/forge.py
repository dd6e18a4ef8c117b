"""Member Node -> ClusterNode: the part of a ClusterNode the network-manager owns, as data.

A ClusterNode has three writers, each owning its own fields through server-side apply:

* the network-manager (this module's objects, field manager ``kosmos-network-manager``):
  the ``kosmos.io/cluster`` label, ``spec.clusterName``, ``spec.nodeName``,
  ``spec.podCIDRs``, ``spec.elasticIP`` and the ``Ready`` condition in ``status``;
* the node's agent, which sees the node's NICs: ``spec.ip``, ``spec.ip6``,
  ``spec.interfaceName``;
* the gateway elector (inside the agent): ``spec.roles``.

The objects here never mention the others' fields, so applying them cannot reset what an
agent detected or which node was elected; a field we stop sending (an elastic IP removed
from ``nodeElasticIPMap``) is removed, because we owned it.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from kosmos.api import names
from kosmos.api.objects import Obj, condition_of, set_condition

FIELD_MANAGER = "kosmos-network-manager"
#: label value marking ClusterNodes this process created: only those are deleted when their
#: node or Cluster goes (hand-made ones, e.g. in a test bed, are left alone until unjoin)
MANAGED_BY = FIELD_MANAGER
KIND = "ClusterNode"
MAX_NAME = 253  # a DNS subdomain
_REASONS = {"True": "NodeReady", "False": "NodeNotReady", "Unknown": "NodeStatusUnknown"}


def cluster_node_name(cluster: str, node: str) -> str:
    """``<cluster>-<node>``: derived from the two names, never stored anywhere."""
    return f"{cluster}-{node}"


def skip_reason(node: Obj) -> str | None:
    """Why this member node gets no ClusterNode (None: it gets one)."""
    meta = node["metadata"]
    labels = meta.get("labels") or {}
    if labels.get(names.LABEL_NODE) == "true":
        return "it is a Kosmos leaf node"
    if labels.get(names.LABEL_EXCLUDE) == "true":
        return f"it is labelled {names.LABEL_EXCLUDE}=true"
    if meta.get("deletionTimestamp"):
        return "it is being deleted"
    return None


def elastic_ip(cluster: Obj, node: str) -> str | None:
    """The node's entry in ``nodeElasticIPMap``: its exact name, never a substring of it.

    (A substring match would give node ``a`` the entry of ``node-a``.) The CRD validates
    the values; anything else is ignored.
    """
    options = cluster.get("spec", {}).get("clusterLinkOptions") or {}
    value = (options.get("nodeElasticIPMap") or {}).get(node)
    if not isinstance(value, str):
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def desired(cluster: str, node: str, pod_cidrs: list[str], eip: str | None) -> Obj:
    """The apply body: only our fields (see the module docstring)."""
    spec: Obj = {"clusterName": cluster, "nodeName": node, "podCIDRs": list(pod_cidrs)}
    if eip:
        spec["elasticIP"] = eip
    return {
        "apiVersion": names.API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": cluster_node_name(cluster, node),
            "labels": {names.LABEL_CLUSTER: cluster, names.LABEL_MANAGED_BY: MANAGED_BY},
        },
        "spec": spec,
    }


def is_ours(obj: Obj) -> bool:
    return (obj["metadata"].get("labels") or {}).get(names.LABEL_MANAGED_BY) == MANAGED_BY


def _ours(obj: Obj) -> tuple[Any, ...]:
    spec = obj.get("spec") or {}
    labels = obj.get("metadata", {}).get("labels") or {}
    return (
        labels.get(names.LABEL_CLUSTER),
        labels.get(names.LABEL_MANAGED_BY),
        spec.get("clusterName"),
        spec.get("nodeName"),
        list(spec.get("podCIDRs") or []),
        spec.get("elasticIP"),
    )


def needs_apply(existing: Obj | None, want: Obj) -> bool:
    """Whether the cached ClusterNode differs from ``want`` in any field we own."""
    return existing is None or _ours(existing) != _ours(want)


def ready_condition(node: Obj, previous: Obj | None, now: str) -> Obj:
    """The ClusterNode's ``Ready`` condition, mirroring the member node's.

    The transition time is the node's own (when it really changed), kept from the previous
    condition while the status stays the same (``set_condition``), and ``now`` only when
    neither says.
    """
    name = node["metadata"]["name"]
    source = condition_of(node, "Ready")
    status = str((source or {}).get("status", "Unknown"))
    if status not in _REASONS:
        status = "Unknown"
    if source is None:
        message = f"member node {name} has not reported a Ready condition yet"
    else:
        message = str(source.get("message") or f"member node {name} reports Ready={status}")
    wanted = {
        "type": "Ready",
        "status": status,
        "reason": str((source or {}).get("reason") or _REASONS[status]),
        "message": message[:1024],
    }
    kept = [{**previous, "type": "Ready"}] if previous is not None else []
    set_condition(kept, wanted, at=(source or {}).get("lastTransitionTime") or now)
    return {**wanted, "lastTransitionTime": kept[0].get("lastTransitionTime") or now}


def current_ready(cluster_node: Obj | None) -> Obj | None:
    return condition_of(cluster_node or {}, "Ready")


def condition_differs(previous: Obj | None, want: Obj) -> bool:
    if previous is None:
        return True
    keys = ("status", "reason", "message", "lastTransitionTime")
    return any(previous.get(k) != want.get(k) for k in keys)


def status_body(cluster: str, node: str, condition: Obj) -> Obj:
    """The status apply body: our one condition (conditions are a list map keyed by type)."""
    return {
        "apiVersion": names.API_VERSION,
        "kind": KIND,
        "metadata": {"name": cluster_node_name(cluster, node)},
        "status": {"conditions": [condition]},
    }


def node_view(node: Obj) -> tuple[Any, ...]:
    """What of a member Node can change its ClusterNode (heartbeats cannot)."""
    meta = node["metadata"]
    labels = meta.get("labels") or {}
    ready = condition_of(node, "Ready") or {}
    spec = node.get("spec") or {}
    return (
        labels.get(names.LABEL_NODE),
        labels.get(names.LABEL_EXCLUDE),
        bool(meta.get("deletionTimestamp")),
        tuple(spec.get("podCIDRs") or ()),
        spec.get("podCIDR"),
        ready.get("status"),
        ready.get("reason"),
        ready.get("message"),
        ready.get("lastTransitionTime"),
    )
