"""The floater DaemonSets a check execs into: their objects, deploying, waiting, cleaning.

The floater (``kosmos floater``) only answers on its port: it reads nothing from the API,
so its ServiceAccount mounts no token and is bound to no Role. ``kosmos-floater`` runs on
the pod network, ``kosmos-floater-host`` on each node's network (ClusterFirstWithHostNet
keeps cluster DNS for it). Both run on every node that can run a container: not on leaf
nodes (another cluster's capacity), not on nodes excluded from Kosmos, not on kwok's
simulated nodes; any taint is tolerated, a check wants every real node.

Everything created carries app.kubernetes.io/managed-by=kosmosctl-netdoctor; ``clean``
deletes the namespace only when netdoctor created it (it carries that label then).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from kosmos.api import manifests as build
from kosmos.api import names
from kosmos.api.objects import Obj, condition_true, is_deleting, labels_of, name_of
from kosmos.api.resources import DAEMONSETS, EVENTS, NAMESPACES, PODS, SERVICEACCOUNTS
from kosmos.kube.client import Client
from kosmos.kube.errors import AlreadyExists, KubeError
from kosmos.ops import apply as applier
from kosmos.ops import rollout
from kosmos.ops.errors import OperationError
from kosmos.ops.netdoctor.plan import CONTAINER

LABEL_NAME = "app.kubernetes.io/name"
FIELD_MANAGER = names.NETDOCTOR_MANAGED_BY
CLEAN_TIMEOUT = 120.0
Log = Callable[[str], None]


class FloaterNotReady(OperationError):
    """The floaters did not all run within podWaitTime; the message names each pod."""


def labels(name: str) -> dict[str, str]:
    return {LABEL_NAME: name, names.LABEL_MANAGED_BY: names.NETDOCTOR_MANAGED_BY}


def namespace_object(namespace: str) -> Obj:
    return build.namespace(namespace, {names.LABEL_MANAGED_BY: names.NETDOCTOR_MANAGED_BY})


def service_account(namespace: str) -> Obj:
    account = build.service_account(names.FLOATER, namespace, labels(names.FLOATER))
    account["automountServiceAccountToken"] = False  # the floater never calls the API
    return account


def daemonset(name: str, namespace: str, image: str, port: int) -> Obj:
    """One floater per real node, on the pod network or (``kosmos-floater-host``) the node's."""
    host = name == names.FLOATER_HOST
    container = {
        "name": CONTAINER,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "args": ["floater"],
        "env": [
            {"name": "PORT", "value": str(port)},
            {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        ],
        "ports": [
            {"name": "tcp", "containerPort": port, "protocol": "TCP"},
            {"name": "udp", "containerPort": port, "protocol": "UDP"},
        ],
        "readinessProbe": {"tcpSocket": {"port": port}, "periodSeconds": 2},
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
    }
    not_there = [
        {"key": names.LABEL_NODE, "operator": "DoesNotExist"},
        {"key": names.LABEL_EXCLUDE, "operator": "NotIn", "values": ["true"]},
        {"key": names.LABEL_KWOK_NODE, "operator": "DoesNotExist"},
    ]
    pod: Obj = {
        "serviceAccountName": names.FLOATER,
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": 5,
        "containers": [container],
        "tolerations": [{"operator": "Exists"}],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": not_there}]
                }
            }
        },
    }
    if host:
        pod |= {"hostNetwork": True, "dnsPolicy": "ClusterFirstWithHostNet"}
    own = labels(name)
    return build.daemonset(
        build.metadata(name, own, namespace),
        selector={LABEL_NAME: name},
        pod_labels=own,
        pod_spec=pod,
    )


async def deploy(
    client: Client, namespace: str, image: str, port: int, *, sets: Sequence[str], log: Log
) -> None:
    """Namespace (when missing), ServiceAccount, DaemonSets; re-running updates them."""
    where = f"{client.cluster} cluster"
    current = await applier.get_or_none(client, NAMESPACES, namespace)
    if current is not None and is_deleting(current):  # a clean just before: let it finish
        log(f"{where}: namespace {namespace} is terminating, waiting until it is gone")
        if await applier.wait_gone(client, [(NAMESPACES, namespace, None)], CLEAN_TIMEOUT):
            raise OperationError(f"{where}: namespace {namespace} is still terminating")
    try:
        await client.create(NAMESPACES, namespace_object(namespace))
        log(f"{where}: namespace {namespace} created")
    except AlreadyExists:
        log(f"{where}: namespace {namespace} exists")
    await client.apply(
        SERVICEACCOUNTS, service_account(namespace), field_manager=FIELD_MANAGER, force=True
    )
    log(f"{where}: ServiceAccount {names.FLOATER} (no token, no RBAC: the floater reads no API)")
    for name in sets:
        body = daemonset(name, namespace, image, port)
        await client.apply(DAEMONSETS, body, field_manager=FIELD_MANAGER, force=True)
        log(f"{where}: DaemonSet {name}, image {image}")


async def wait_ready(
    client: Client, namespace: str, sets: Sequence[str], timeout: float, log: Log
) -> dict[str, list[Obj]]:
    """Wait until every floater pod of ``sets`` is Ready; return them by DaemonSet.

    Fails at once when a pod cannot start (image pull, config) or when a DaemonSet wants no
    pod at all (no node can run a floater); at the deadline it names each pod that never
    became Ready, its node and why.
    """
    seen: set[str] = set()
    ready: dict[str, list[Obj]] = {}

    async def pending() -> str:
        out = []
        for name in sets:
            ds = await client.get(DAEMONSETS, name, namespace)
            pods = await _pods(client, namespace, name)
            waiting = _not_ready(ds, pods)
            if waiting == "no node":
                raise FloaterNotReady(await _no_node(client, namespace, name))
            for pod in pods:
                if condition_true(pod, "Ready") and name_of(pod) not in seen:
                    seen.add(name_of(pod))
                    log(f"{client.cluster} cluster: pod {name_of(pod)} on {_node(pod)} is ready")
                found = rollout.stuck(pod)
                if found is not None:
                    raise FloaterNotReady(_why(client, namespace, [pod]))
            ready[name] = pods
            if waiting:
                out.append(f"{name} ({waiting})")
        return "; ".join(out)

    try:
        await applier.poll("floaters to be ready", timeout, pending, interval=1.0)
    except applier.WaitTimeout:
        pods = [p for name in sets for p in await _pods(client, namespace, name)]
        unready = [p for p in pods if not condition_true(p, "Ready")]
        detail = (
            _why(client, namespace, unready) if unready else await _missing(client, namespace, sets)
        )
        raise FloaterNotReady(
            f"floaters not ready after {timeout:g} s (podWaitTime): {detail}"
        ) from None
    return ready


def _not_ready(ds: Obj, pods: list[Obj]) -> str:
    """ "" when the DaemonSet's pods are all Ready; "no node" when it schedules none."""
    status = ds.get("status") or {}
    if status.get("observedGeneration", 0) < ds["metadata"].get("generation", 0):
        return "rollout not observed yet"
    if status.get("desiredNumberScheduled", 0) == 0:
        return "no node"
    why = rollout.daemonset_unready(ds)
    if why:
        return why
    if any(not condition_true(p, "Ready") for p in pods):
        return "a pod is not Ready"
    return ""


async def _pods(client: Client, namespace: str, name: str) -> list[Obj]:
    listed = await client.list(PODS, namespace, label_selector=f"{LABEL_NAME}={name}")
    return sorted((p for p in listed.items if not is_deleting(p)), key=_node)


def _node(pod: Obj) -> str:
    return str((pod.get("spec") or {}).get("nodeName") or "no node")


def _why(client: Client, namespace: str, pods: list[Obj]) -> str:
    """Each pod, its node and its reason: a stuck container's, else rollout's pending text."""
    parts = []
    for pod in pods:
        found = rollout.stuck(pod)
        reason = f"container {found[0]} {found[1]}" if found else rollout.pod_pending(pod)
        parts.append(f"pod {namespace}/{name_of(pod)} on {_node(pod)}: {reason}")
    return f"{client.cluster} cluster: " + "; ".join(parts)


async def _missing(client: Client, namespace: str, sets: Sequence[str]) -> str:
    """No pod exists: the DaemonSet controller's FailedCreate events say why."""
    events = (await client.list(EVENTS, namespace)).items
    found = [m for name in sets for m in rollout.failed_creates(events, "DaemonSet", name)]
    return f"{client.cluster} cluster: " + (found[-1] if found else "no floater pod was created")


async def _no_node(client: Client, namespace: str, name: str) -> str:
    return (
        f"{client.cluster} cluster: no node can run a floater (DaemonSet {namespace}/{name} "
        f"schedules no pod: every node is a leaf node, excluded ({names.LABEL_EXCLUDE}=true) "
        f"or simulated ({names.LABEL_KWOK_NODE}))"
    )


async def clean(client: Client, namespace: str, log: Log, timeout: float = CLEAN_TIMEOUT) -> None:
    """Delete what netdoctor created and wait until it is gone (idempotent).

    The namespace goes too when netdoctor created it; a namespace it found (kosmos-system of
    an installed Kosmos) keeps everything else in it.
    """
    where = f"{client.cluster} cluster"
    targets: list[applier.Target] = []
    current = await applier.get_or_none(client, NAMESPACES, namespace)
    if current is None:
        log(f"{where}: namespace {namespace} not found, nothing to clean")
        return
    if labels_of(current).get(names.LABEL_MANAGED_BY) == names.NETDOCTOR_MANAGED_BY:
        targets.append((NAMESPACES, namespace, None))
    else:
        for name in (names.FLOATER, names.FLOATER_HOST):
            targets.append((DAEMONSETS, name, namespace))
        targets.append((SERVICEACCOUNTS, names.FLOATER, namespace))
    for resource, name, ns in targets:
        if await applier.delete(client, resource, name, ns):
            log(f"{where}: {resource.kind} {name} deleted")
    left = await applier.wait_gone(client, targets, timeout)
    left_pods = await _leftover_pods(client, namespace, timeout)
    if left or left_pods:
        what = [applier.target_name(t) for t in left] + left_pods
        raise OperationError(f"{where}: still present after {timeout:g} s: {', '.join(what)}")


async def _leftover_pods(client: Client, namespace: str, timeout: float) -> list[str]:
    """Floater pods still terminating (the DaemonSet's deletion removes them in background)."""
    selector = f"{names.LABEL_MANAGED_BY}={names.NETDOCTOR_MANAGED_BY}"
    left: list[str] = []

    async def pending() -> str:
        try:
            listed = await client.list(PODS, namespace, label_selector=selector)
        except KubeError:
            return ""
        left[:] = [f"pod {namespace}/{name_of(p)}" for p in listed.items]
        return ", ".join(left)

    try:
        await applier.poll("floater pods to go", timeout, pending)
    except applier.WaitTimeout:
        return left
    return []
