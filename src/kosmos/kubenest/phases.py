"""What a VirtualCluster does next, as pure functions of the object and what was observed.

Two reconcilers share one VirtualCluster (``kubenest.controllers``): the init reconciler owns
the control plane (finalizer, PKI, provider, kubeconfig, teardown) and the node reconciler
owns the borrowed nodes (``kubenest.nodes``). Each decides here, so every transition can be
tested without an apiserver:

    "" -> Preparing (finalizer) -> Initialized (spec.kubeconfig, portMap) -> Completed
    Completed -> Updating (assignment changed) -> Completed
    any -> Pending (provider error, not enough nodes, real nodes) -> back on its path
    "" -> Failed (the namespace already holds a VirtualCluster: one per namespace)
    deleting -> Deleting -> nodes returned -> control plane destroyed -> finalizer removed

Conditions ``ControlPlaneReady`` and ``NodesReady`` say why a phase is not yet reached;
``Ready`` is both of them (``ready_condition``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from kosmos.api import names
from kosmos.api.objects import Obj, find_condition, is_deleting, name_of, namespace_of

PREPARING = "Preparing"
INITIALIZED = "Initialized"
COMPLETED = "Completed"
UPDATING = "Updating"
PENDING = "Pending"
FAILED = "Failed"
DELETING = "Deleting"

CONTROL_PLANE_READY = "ControlPlaneReady"
NODES_READY = "NodesReady"
READY = "Ready"

#: reasons (also the Events' reasons)
NAMESPACE_TAKEN = "NamespaceTaken"
PROVIDER_ERROR = "ProviderError"
STARTING = "Starting"
RUNNING = "Running"
NOT_ENOUGH_NODES = "NotEnoughNodes"
REAL_NODE = "RealNodeUnreachable"
MOVING = "NodeMoving"
NODES_NOT_READY = "NodesNotReady"
ALL_NODES_READY = "AllNodesReady"
MOVE_FAILED = "NodeMoveFailed"
TREE_STARTING = "ClusterTreeStarting"
TREE_FAILED = "ClusterTreeFailed"

InitAction = Literal["teardown", "refuse", "start", "build"]
NodeAction = Literal["return", "assign", "idle"]
TeardownAction = Literal["mark", "wait", "destroy"]
EventType = Literal["Normal", "Warning"]


# -- naming --------------------------------------------------------------------------------


def vc_key(vc: Mapping[str, Any]) -> str:
    """``namespace/name``: GlobalNode ``status.virtualCluster`` and the pool's owner key."""
    return f"{namespace_of(vc)}/{name_of(vc)}"


def label_value(vc: Mapping[str, Any]) -> str:
    """``namespace.name``: the value of LABEL_VIRTUAL_CLUSTER (``/`` is not allowed there)."""
    return f"{namespace_of(vc)}.{name_of(vc)}"


def owner_references(vc: Mapping[str, Any]) -> list[Obj]:
    """What an object made for ``vc`` in its namespace carries, so the garbage collector
    removes it with the VirtualCluster if the operator does not."""
    return [
        {
            "apiVersion": str(vc.get("apiVersion") or names.API_VERSION),
            "kind": "VirtualCluster",
            "name": name_of(vc),
            "uid": str(vc["metadata"].get("uid") or ""),
        }
    ]


def cert_secret(vc: Mapping[str, Any]) -> str:
    return f"{name_of(vc)}-cert"


def admin_secret(vc: Mapping[str, Any]) -> str:
    return f"{name_of(vc)}-admin-config"


def phase_of(vc: Mapping[str, Any]) -> str:
    return str((vc.get("status") or {}).get("phase") or "")


def published(vc: Mapping[str, Any]) -> bool:
    """The control plane was built once: its admin kubeconfig is in the spec."""
    return bool((vc.get("spec") or {}).get("kubeconfig"))


def node_infos(vc: Mapping[str, Any]) -> list[str]:
    resources = (vc.get("spec") or {}).get("promoteResources") or {}
    return [str(i["nodeName"]) for i in resources.get("nodeInfos") or [] if i.get("nodeName")]


def policies(vc: Mapping[str, Any]) -> list[Obj]:
    return list((vc.get("spec") or {}).get("promotePolicies") or [])


def certificate_addresses(vc: Mapping[str, Any], *advertise: str) -> list[str]:
    """The addresses tenants may reach the apiserver on, beyond the fixed in-cluster names:
    ``advertise`` (the operator's, the provider's) and the VirtualCluster's."""
    spec = vc.get("spec") or {}
    entry = (spec.get("kubeInKubeConfig") or {}).get("tenantEntrypoint") or {}
    wanted = [*advertise, spec.get("externalIP"), *(spec.get("externalIps") or [])]
    wanted += entry.get("externalIps") or []
    return list(dict.fromkeys(str(a) for a in wanted if a))


# -- the init reconciler -------------------------------------------------------------------


def namespace_holder(vc: Mapping[str, Any], others: Iterable[Mapping[str, Any]]) -> str | None:
    """The VirtualCluster that holds ``vc``'s namespace, if not ``vc``: the first created
    (name breaks ties) that is not being deleted. The seed's model: one tenant per namespace,
    whose control plane lives there."""

    def order(obj: Mapping[str, Any]) -> tuple[str, str]:
        return (str(obj["metadata"].get("creationTimestamp") or ""), name_of(obj))

    mine = order(vc)
    rivals = [
        o
        for o in others
        if namespace_of(o) == namespace_of(vc)
        and name_of(o) != name_of(vc)
        and not is_deleting(o)
        and phase_of(o) != FAILED
        and order(o) < mine
    ]
    return name_of(min(rivals, key=order)) if rivals else None


def init_action(vc: Mapping[str, Any], holder: str | None) -> InitAction:
    if is_deleting(vc):
        return "teardown"
    if holder is not None and not published(vc):
        return "refuse"
    if phase_of(vc) in ("", FAILED):
        return "start"
    return "build"


def teardown_action(vc: Mapping[str, Any], occupied: Sequence[str]) -> TeardownAction:
    """Nodes go back first (the node reconciler does it in Deleting), then the control
    plane: a node is never left joined to a control plane that is gone."""
    if phase_of(vc) != DELETING:
        return "mark"
    if node_infos(vc) or occupied:
        return "wait"
    return "destroy"


@dataclass(frozen=True)
class Transition:
    """What to write: a phase ("" keeps it), conditions to set, and an Event if it says so."""

    phase: str = ""
    conditions: tuple[Obj, ...] = ()
    event: tuple[EventType, str, str] | None = None  # (type, reason, message)
    status: dict[str, Any] = field(default_factory=dict)


def condition(kind: str, ok: bool, reason: str, message: str) -> Obj:
    return {
        "type": kind,
        "status": "True" if ok else "False",
        "reason": reason,
        "message": message[:32000],
    }


def refused(holder: str) -> Transition:
    message = f"namespace already holds VirtualCluster {holder!r}: one per namespace"
    return Transition(
        FAILED,
        (condition(CONTROL_PLANE_READY, False, NAMESPACE_TAKEN, message),),
        ("Warning", NAMESPACE_TAKEN, message),
        {"reason": message},
    )


def started() -> Transition:
    message = "building the control plane"
    return Transition(
        PREPARING,
        (condition(CONTROL_PLANE_READY, False, STARTING, message),),
        ("Normal", PREPARING, message),
        {"reason": None},
    )


def control_plane(
    vc: Mapping[str, Any],
    *,
    ready: bool = False,
    message: str = "",
    error: str | None = None,
) -> Transition:
    """The phase and condition after ``provider.ensure`` answered (or failed with ``error``)."""
    phase = phase_of(vc)
    if error is not None:
        text = f"control plane: {error}"
        return Transition(
            PENDING if not published(vc) else "",
            (condition(CONTROL_PLANE_READY, False, PROVIDER_ERROR, text),),
            ("Warning", PROVIDER_ERROR, text),
            {"reason": text},
        )
    if not ready:
        text = message or "starting"
        back = PREPARING if phase == PENDING and not published(vc) else ""
        return Transition(back, (condition(CONTROL_PLANE_READY, False, STARTING, text),))
    ok = condition(CONTROL_PLANE_READY, True, RUNNING, "apiserver ready")
    if not published(vc):
        return Transition(
            INITIALIZED, (ok,), ("Normal", INITIALIZED, "control plane ready"), {"reason": None}
        )
    return Transition("", (ok,))


def with_tree(change: Transition, waiting: str, error: str | None = None) -> Transition:
    """``change`` (the control plane ready) with the ClusterTree plugin's state: its
    ``ControlPlaneReady`` is False while the tenant's ClusterTree waits (``waiting``) or
    failed (``error``, with a Warning); unchanged once it runs."""
    if error is None and not waiting:
        return change
    reason, text = (
        (TREE_STARTING, waiting) if error is None else (TREE_FAILED, f"ClusterTree: {error}")
    )
    kept = tuple(c for c in change.conditions if c["type"] != CONTROL_PLANE_READY)
    event = change.event
    if error is not None and event is None:
        event = ("Warning", TREE_FAILED, text)
    return Transition(
        change.phase,
        (*kept, condition(CONTROL_PLANE_READY, False, reason, text)),
        event,
        change.status,
    )


# -- the node reconciler -------------------------------------------------------------------


def node_action(vc: Mapping[str, Any]) -> NodeAction:
    if is_deleting(vc):
        return "return" if phase_of(vc) == DELETING else "idle"
    if not published(vc) or phase_of(vc) == FAILED:
        return "idle"
    return "assign"


def short(message: str) -> Transition:
    return Transition(
        PENDING,
        (condition(NODES_READY, False, NOT_ENOUGH_NODES, message),),
        ("Warning", NOT_ENOUGH_NODES, message),
        {"reason": message},
    )


def real_nodes(names: Sequence[str], why: str) -> Transition:
    message = f"{', '.join(names)}: real nodes cannot join this virtual cluster: {why}"
    return Transition(
        PENDING,
        (condition(NODES_READY, False, REAL_NODE, message),),
        ("Warning", REAL_NODE, message),
        {"reason": message},
    )


def moving(node: str, what: str) -> Transition:
    """A real node's move under way (draining, its kubelet registering): no event, the
    condition says where it is."""
    return Transition("", (condition(NODES_READY, False, MOVING, f"node {node}: {what}"),), None)


def move_failed(node: str, error: str) -> Transition:
    message = f"moving node {node}: {error}"
    return Transition(
        "",
        (condition(NODES_READY, False, MOVE_FAILED, message),),
        ("Warning", MOVE_FAILED, message),
    )


def nodes(
    vc: Mapping[str, Any], wanted: Sequence[str], not_ready: Sequence[str], changed: bool
) -> Transition:
    """After the moves: Completed once every wanted node is Ready in the tenant; a changed
    assignment of a Completed VirtualCluster, or nodes found for a Pending one, is an
    update."""
    phase = phase_of(vc)
    if not_ready:
        text = f"waiting for {', '.join(not_ready)} to be Ready in the virtual cluster"
        # a Completed cluster whose node merely went NotReady stays Completed (Ready says it)
        moving = UPDATING if phase == PENDING or (changed and phase == COMPLETED) else ""
        event: tuple[EventType, str, str] | None = (
            ("Normal", UPDATING, f"nodes now {', '.join(wanted) or 'none'}") if moving else None
        )
        return Transition(moving, (condition(NODES_READY, False, NODES_NOT_READY, text),), event)
    text = f"{len(wanted)} node(s) Ready: {', '.join(wanted)}" if wanted else "no nodes asked"
    done = phase != COMPLETED
    return Transition(
        COMPLETED if done else "",
        (condition(NODES_READY, True, ALL_NODES_READY, text),),
        ("Normal", COMPLETED, text) if done else None,
        {"reason": None} if done else {},
    )


def ready_condition(conditions: Sequence[Mapping[str, Any]]) -> Obj:
    """``Ready``: the control plane and the nodes both are; else the first that is not."""
    parts = [
        find_condition([dict(c) for c in conditions], k) for k in (CONTROL_PLANE_READY, NODES_READY)
    ]
    for kind, part in zip((CONTROL_PLANE_READY, NODES_READY), parts, strict=True):
        if part is None:
            return condition(READY, False, f"{kind}Unknown", f"{kind} not observed yet")
        if part.get("status") != "True":
            return condition(
                READY, False, str(part.get("reason") or kind), str(part.get("message") or "")
            )
    return condition(READY, True, "Ready", "control plane and nodes ready")
