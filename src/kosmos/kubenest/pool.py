"""The GlobalNode pool: which host nodes are in it, and which go to which VirtualCluster.

Pure functions of plain JSON objects, so the GlobalNode controller (``globalnodes``) and the
VirtualCluster Node controller decide with the same rules and tests need no apiserver.

- A host Node is in the pool unless it is a leaf node (ClusterTree's, label
  ``kosmos.io/node``) or excluded (``kosmos.io/exclude=true``). Control-plane nodes are in it
  as ``reserved``: listed, never borrowed.
- A VirtualCluster's ``promotePolicies`` each ask for ``nodeCount`` GlobalNodes whose
  ``spec.labels`` match the policy's ``labelSelector``. ``assign`` keeps what the
  VirtualCluster already holds, fills up with ``free`` nodes in name order (stable, so two
  operators or two passes agree), and gives back the tail when a count shrinks. When a
  policy cannot be met nothing moves, and ``short`` says why, naming who holds the nodes.
- A free node that runs a tenant's control-plane pods (the in-cluster provider's) is not
  taken: its drain would wait forever on their PodDisruptionBudget, and moving it would take
  the tenant's control plane along. ``busy`` names such nodes and whose pods they run.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kosmos.api import names
from kosmos.api.objects import Obj, labels_of, namespace_of, pod_terminal
from kosmos.api.selectors import selector_matches

FREE, OCCUPIED, RESERVED = "free", "occupied", "reserved"
_SHOWN = 10  # unavailable nodes a shortage message names
STATES = frozenset({FREE, OCCUPIED, RESERVED})
CONTROL_PLANE_LABELS = (
    "node-role.kubernetes.io/control-plane",
    "node-role.kubernetes.io/master",
)

# -- host Node -> GlobalNode ------------------------------------------------------------------


def eligible(node: Mapping[str, Any]) -> bool:
    """Whether a host Node belongs in the pool: not a leaf node, not excluded."""
    labels = labels_of(node)
    return names.LABEL_NODE not in labels and labels.get(names.LABEL_EXCLUDE) != "true"


def control_plane(node: Mapping[str, Any]) -> bool:
    labels = labels_of(node)
    return any(label in labels for label in CONTROL_PLANE_LABELS)


def node_ip(node: Mapping[str, Any]) -> str:
    """The first InternalIP, else the first address that is an IP; "" when there is none
    (the GlobalNode schema accepts only IPs in ``nodeIP``, and a hostname is not one)."""
    addresses = [a for a in (node.get("status") or {}).get("addresses") or [] if _is_ip(a)]
    internal = [a for a in addresses if a.get("type") == "InternalIP"]
    chosen = (internal or addresses)[:1]
    return str(chosen[0]["address"]) if chosen else ""


def _is_ip(address: Any) -> bool:
    if not isinstance(address, Mapping):
        return False
    try:
        ipaddress.ip_address(str(address.get("address", "")))
    except ValueError:
        return False
    return True


def global_node(node: Mapping[str, Any], current: Mapping[str, Any] | None) -> Obj | None:
    """The GlobalNode wanted for host ``node`` (None: not in the pool).

    ``spec.state`` is the current GlobalNode's when there is one (only the VirtualCluster
    controllers move a node between free and occupied); a new one is ``reserved`` on a
    control-plane node and ``free`` otherwise.
    """
    if not eligible(node):
        return None
    state = state_of(current) if current is not None else ""
    if not state:
        state = RESERVED if control_plane(node) else FREE
    spec: Obj = {"state": state, "labels": dict(labels_of(node))}
    if address := node_ip(node):
        spec["nodeIP"] = address
    return {
        "apiVersion": f"{names.API_VERSION}",
        "kind": "GlobalNode",
        "metadata": {"name": node["metadata"]["name"]},
        "spec": spec,
    }


def state_of(globalnode: Mapping[str, Any]) -> str:
    """``spec.state``; "" when missing or not one of the three states."""
    state = (globalnode.get("spec") or {}).get("state")
    return state if isinstance(state, str) and state in STATES else ""


def holder_of(globalnode: Mapping[str, Any]) -> str:
    """``status.virtualCluster``: ``<namespace>/<name>`` of the VirtualCluster using it."""
    return str((globalnode.get("status") or {}).get("virtualCluster") or "")


def pool_labels(globalnode: Mapping[str, Any]) -> dict[str, str]:
    labels = (globalnode.get("spec") or {}).get("labels")
    return dict(labels) if isinstance(labels, Mapping) else {}


# -- VirtualCluster -> nodes ------------------------------------------------------------------


@dataclass(frozen=True)
class Assignment:
    """What a VirtualCluster should hold: ``nodes`` (in order), ``take`` (free -> occupied)
    and ``give_back`` (occupied -> free); or ``short``, saying why not, and nothing moves
    (``nodes`` is then what it holds now)."""

    nodes: tuple[str, ...] = ()
    take: tuple[str, ...] = ()
    give_back: tuple[str, ...] = ()
    short: str = ""


def assign(
    vc_key: str,
    policies: Sequence[Any],
    globalnodes: Iterable[Mapping[str, Any]],
    current: Sequence[str],
    busy: Mapping[str, str] | None = None,
) -> Assignment:
    """The nodes VirtualCluster ``vc_key`` (``<namespace>/<name>``) should hold.

    ``current``: the nodes it holds now (``spec.promoteResources.nodeInfos``, in order); a
    GlobalNode occupied with ``status.virtualCluster == vc_key`` counts as held too.
    ``busy``: node -> the tenant (``<namespace>/<name>``) whose control-plane pods run there.
    """
    pool = {str(g["metadata"]["name"]): g for g in globalnodes}
    held = _held(vc_key, pool, current)
    picked: list[str] = []
    shortages: list[str] = []
    for index, policy in enumerate(policies):
        nodes, short = _fill(
            index, policy, vc_key=vc_key, pool=pool, held=held, picked=picked, busy=busy or {}
        )
        picked.extend(nodes)
        if short:
            shortages.append(short)
    if shortages:
        return Assignment(nodes=tuple(held), short="; ".join(shortages))
    return Assignment(
        nodes=tuple(picked),
        take=tuple(n for n in picked if n not in held),
        give_back=tuple(n for n in held if n not in picked),
    )


def busy_nodes(pods: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """node -> ``<namespace>/<name>`` of the tenant whose control-plane pods run there, from
    pods labelled ``kosmos.io/tenant-component`` (finished pods hold no node)."""
    out: dict[str, str] = {}
    for pod in pods:
        node = (pod.get("spec") or {}).get("nodeName")
        if not node or pod_terminal(pod):
            continue
        namespace = namespace_of(pod)
        value = labels_of(pod).get(names.LABEL_VIRTUAL_CLUSTER, "")
        tenant = value.removeprefix(f"{namespace}.") if value else "?"
        out.setdefault(str(node), f"{namespace}/{tenant}")
    return out


def _held(vc_key: str, pool: Mapping[str, Mapping[str, Any]], current: Sequence[str]) -> list[str]:
    """What the VirtualCluster holds: occupied GlobalNodes naming it (or naming nobody, when
    ``current`` lists them), ``current`` order first. A node whose GlobalNode is gone, free
    again or held by someone else is not its to keep."""

    def mine(name: str, listed: bool) -> bool:
        globalnode = pool.get(name)
        if globalnode is None or state_of(globalnode) != OCCUPIED:
            return False
        return holder_of(globalnode) == vc_key or (listed and not holder_of(globalnode))

    held = list(dict.fromkeys(n for n in current if mine(n, listed=True)))
    return held + sorted(n for n in pool if n not in held and mine(n, listed=False))


def _fill(
    index: int,
    policy: Any,
    *,
    vc_key: str,
    pool: Mapping[str, Mapping[str, Any]],
    held: Sequence[str],
    picked: Sequence[str],
    busy: Mapping[str, str],
) -> tuple[list[str], str]:
    """One policy's nodes: the held ones that match (up to the count), then free ones."""
    parsed = _policy(policy)
    if isinstance(parsed, str):
        return [], f"policy {index}: {parsed}"
    selector, count = parsed
    matching = sorted(n for n, g in pool.items() if selector_matches(selector, pool_labels(g)))
    nodes = [n for n in held if n in matching and n not in picked][:count]
    free = [n for n in matching if state_of(pool[n]) == FREE and n not in picked and n not in busy]
    nodes += free[: count - len(nodes)]
    if len(nodes) >= count:
        return nodes, ""
    wanted = f"policy {index} wants {count} node{'s' if count != 1 else ''} matching "
    wanted += _describe(selector)
    if not matching:
        return nodes, f"{wanted}: no GlobalNode matches"
    others = [_whose(n, vc_key, pool[n], picked, busy) for n in matching if n not in nodes + free]
    detail = _listing([o for o in others if o])
    return nodes, f"{wanted}: {len(matching)} matches, {len(free)} free{detail}"


def _policy(policy: Any) -> tuple[Mapping[str, Any], int] | str:
    """(selector, nodeCount) of a promotePolicy, or what is wrong with it."""
    if not isinstance(policy, Mapping):
        return "not an object"
    selector = policy.get("labelSelector")
    selector = {} if selector is None else selector
    count = policy.get("nodeCount")
    if not isinstance(selector, Mapping):
        return "labelSelector is not an object"
    if not isinstance(selector.get("matchLabels") or {}, Mapping):
        return "labelSelector.matchLabels is not an object"
    expressions = selector.get("matchExpressions") or []
    if not isinstance(expressions, list) or not all(isinstance(e, Mapping) for e in expressions):
        return "labelSelector.matchExpressions is not a list of requirements"
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        return f"nodeCount {count!r} is not a non-negative integer"
    return selector, count


def _listing(items: Sequence[str]) -> str:
    """`` (a, b, c and 7 more)``: a message stays readable with hundreds of nodes."""
    if not items:
        return ""
    shown = ", ".join(items[:_SHOWN])
    more = f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else ""
    return f" ({shown}{more})"


def _describe(selector: Mapping[str, Any]) -> str:
    if not selector.get("matchLabels") and not selector.get("matchExpressions"):
        return "any labels"
    return json.dumps(dict(selector), sort_keys=True, separators=(",", ":"))


def _whose(
    name: str,
    vc_key: str,
    globalnode: Mapping[str, Any],
    picked: Sequence[str],
    busy: Mapping[str, str],
) -> str:
    """Why a matching node is not available to this policy."""
    if name in picked:
        return f"{name} taken by an earlier policy"
    state = state_of(globalnode)
    if state == FREE and name in busy:
        return f"{name} runs the control plane of {busy[name]}"
    if state == RESERVED:
        return f"{name} reserved"
    if state == OCCUPIED:
        holder = holder_of(globalnode)
        return f"{name} held by {holder}" if holder and holder != vc_key else f"{name} occupied"
    return ""
