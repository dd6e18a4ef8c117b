"""Waiting until Kosmos's pods run, and saying why they do not.

A Deployment or DaemonSet whose image cannot be pulled, or whose container crashes, never
becomes Available; waiting out the timeout and printing "0/1 available" hides the cause. So
the waits here read the workload's pods too: a pod stuck for a reason that waiting cannot fix
(:data:`STUCK`) fails the wait at once with the pod, the container, the kubelet's reason and
message, and for a crash the last lines of the container's log.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from kosmos.api.objects import Obj, condition_true, is_deleting, name_of, namespace_of
from kosmos.api.resources import DAEMONSETS, DEPLOYMENTS, EVENTS, PODS, Resource
from kosmos.kube.client import Client
from kosmos.kube.errors import KubeError
from kosmos.ops import apply as applier
from kosmos.ops.errors import OperationError

#: Waiting reasons of a container that the kubelet will not get past by itself.
STUCK = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "ErrImageNeverPull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
        "CrashLoopBackOff",
    }
)
LOG_LINES = 8

Workload = tuple[Resource, str, str]  # (DEPLOYMENTS | DAEMONSETS, namespace, name)


class RolloutFailed(OperationError):
    """A pod of the workload cannot start; the message names the pod and the reason."""


def _statuses(pod: Obj) -> list[Obj]:
    status = pod.get("status") or {}
    return [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]


def stuck(pod: Obj) -> tuple[str, str] | None:
    """(container, "Reason: message") of a container stuck for a reason in STUCK, else None."""
    for status in _statuses(pod):
        waiting = (status.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason") or ""
        if reason in STUCK:
            message = (waiting.get("message") or "").strip()
            return str(status.get("name")), f"{reason}: {message}" if message else reason
    return None


def pod_pending(pod: Obj) -> str:
    """Why a pod is not Ready yet ("" when it is): phase, then a container's waiting reason."""
    if condition_true(pod, "Ready"):
        return ""
    for status in _statuses(pod):
        waiting = (status.get("state") or {}).get("waiting") or {}
        if waiting.get("reason"):
            return f"{status.get('name')} {waiting['reason']}"
    scheduled = next(
        (
            c
            for c in (pod.get("status") or {}).get("conditions") or []
            if c["type"] == "PodScheduled"
        ),
        None,
    )
    if scheduled is not None and scheduled.get("status") == "False":
        return f"unschedulable: {scheduled.get('message', '')}".strip()
    phase = str((pod.get("status") or {}).get("phase") or "Pending")
    return f"{phase}, not Ready" if phase == "Running" else phase


def daemonset_unready(daemonset: Obj) -> str:
    """Why a DaemonSet is not rolled out with every pod Ready; "" when it is."""
    status = daemonset.get("status") or {}
    if status.get("observedGeneration", 0) < daemonset["metadata"].get("generation", 0):
        return "rollout not observed yet"
    want = status.get("desiredNumberScheduled", 0)
    for key, word in (("updatedNumberScheduled", "updated"), ("numberReady", "ready")):
        if status.get(key, 0) < want:
            return f"{status.get(key, 0)}/{want} {word}"
    return ""


def selector_of(workload: Obj) -> str:
    labels = ((workload.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


async def last_log_lines(client: Client, pod: Obj, container: str, *, previous: bool = True) -> str:
    """The last lines the container wrote (a crashed one's previous run), "" if unreadable."""
    params = {"container": container, "tailLines": LOG_LINES, "previous": str(previous).lower()}
    with contextlib.suppress(KubeError, OSError):
        response = await client.stream(PODS, name_of(pod), namespace_of(pod), "log", params)
        try:
            return (await response.text()).rstrip()
        finally:
            response.release()
    return ""


async def _check_pods(client: Client, namespace: str, selector: str) -> list[str]:
    """Raise ``RolloutFailed`` for a stuck pod; return the pending ones' descriptions."""
    pods = (await client.list(PODS, namespace, label_selector=selector or None)).items
    pending = []
    for pod in pods:
        if is_deleting(pod):
            continue
        found = stuck(pod)
        if found is not None:
            container, why = found
            where = (pod.get("spec") or {}).get("nodeName") or "no node"
            message = f"pod {namespace}/{name_of(pod)} on {where}: container {container} {why}"
            if why.startswith("CrashLoopBackOff"):
                lines = await last_log_lines(client, pod, container)
                message += f"\n--- its last log lines ---\n{lines}" if lines else ""
            raise RolloutFailed(message)
        why = pod_pending(pod)
        if why:
            pending.append(f"{name_of(pod)} {why}")
    return pending


async def _failed_creates(
    client: Client, namespace: str, resource: Resource, name: str
) -> list[str]:
    """The controller's FailedCreate events for the workload (or, for a Deployment, its
    ReplicaSets): why no pod exists. Forbidden (PodSecurity, quota, RBAC) fails the wait."""
    with contextlib.suppress(KubeError):
        events = (await client.list(EVENTS, namespace)).items
        found = failed_creates(events, resource.kind, name)
        forbidden = [f for f in found if "forbidden" in f]
        if forbidden:
            raise RolloutFailed(f"{resource.kind} {namespace}/{name}: {forbidden[-1]}")
        return found[-1:]
    return []


def failed_creates(events: list[Obj], kind: str, name: str) -> list[str]:
    """Messages of FailedCreate events of ``kind``/``name`` (a Deployment's ReplicaSets
    are named ``<name>-<hash>``), oldest first."""
    out = []
    for event in sorted(events, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or ""):
        involved = event.get("involvedObject") or {}
        owner = involved.get("name", "")
        ours = (involved.get("kind") == kind and owner == name) or (
            kind == "Deployment"
            and involved.get("kind") == "ReplicaSet"
            and owner.rsplit("-", 1)[0] == name
        )
        if ours and event.get("reason") == "FailedCreate":
            out.append(f"FailedCreate: {event.get('message', '')}")
    return out


async def wait(
    client: Client,
    workloads: list[Workload],
    timeout: float,
    report: Callable[[str], None] | None = None,
) -> None:
    """Wait until every workload is rolled out with its pods Ready; fail fast on a stuck pod."""

    async def pending() -> str:
        out = []
        for resource, namespace, name in workloads:
            current = await applier.get_or_none(client, resource, name, namespace)
            if current is None:
                out.append(f"{name} (not found)")
                continue
            check = applier.unavailable if resource == DEPLOYMENTS else daemonset_unready
            why = check(current)
            pods = await _check_pods(client, namespace, selector_of(current))
            if why and not pods:
                pods = await _failed_creates(client, namespace, resource, name)
            if why:
                out.append(f"{name} ({why}{': ' + ', '.join(pods) if pods else ''})")
        return "; ".join(out)

    kinds = {DEPLOYMENTS: "Deployments", DAEMONSETS: "DaemonSets"}
    what = " and ".join(sorted({kinds.get(r, r.kind) for r, _, _ in workloads}))
    try:
        await applier.poll(f"{what} to be ready", timeout, pending, report=report)
    except applier.WaitTimeout as exc:
        raise RolloutFailed(f"{exc}{await _unready_logs(client, workloads)}") from exc


async def _unready_logs(client: Client, workloads: list[Workload]) -> str:
    """The last log lines of the first Running-but-unready pod: why it is not Ready (an
    agent the host's RBAC refuses logs the forbidden lists)."""
    for resource, namespace, name in workloads:
        current = await applier.get_or_none(client, resource, name, namespace)
        if current is None:
            continue
        pods = await client.list(PODS, namespace, label_selector=selector_of(current) or None)
        for pod in pods.items:
            if pod_pending(pod).endswith("not Ready"):
                container = ((pod.get("spec") or {}).get("containers") or [{}])[0].get("name", "")
                lines = await last_log_lines(client, pod, container, previous=False)
                if lines:
                    return f"\n--- last log lines of pod {namespace}/{name_of(pod)} ---\n{lines}"
    return ""


async def wait_in(
    client: Client,
    cluster: str,
    workloads: list[Workload],
    wait_seconds: float,
    progress: Callable[[str], None],
) -> None:
    """:func:`wait` as join's steps run it: nothing with ``--wait 0``, progress named by the
    cluster it waits in."""
    if wait_seconds > 0:
        await wait(
            client,
            workloads,
            wait_seconds,
            report=lambda why: progress(f"{cluster}: waiting for {why}"),
        )


async def wait_namespace(
    client: Client, namespace: str, timeout: float, report: Callable[[str], None] | None = None
) -> None:
    """Wait until every pod in ``namespace`` is Ready; fail fast on a stuck one."""

    async def pending() -> str:
        return ", ".join(await _check_pods(client, namespace, ""))

    try:
        await applier.poll(f"the pods in {namespace} to be Ready", timeout, pending, report=report)
    except applier.WaitTimeout as exc:
        raise RolloutFailed(str(exc)) from exc
