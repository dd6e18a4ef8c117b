"""``kosmosctl local up``'s metrics-server step: apply it to the host and wait until the
``metrics.k8s.io`` API answers (the objects: :mod:`kosmos.local.metrics_server`).

Only a host with real nodes gets it: on kwok's simulated nodes no container runs. The wait
ends when the APIService is Available, which the host apiserver decides by calling
metrics-server's discovery endpoint itself, so it proves the whole path ``kubectl top`` takes:
the route from the apiserver to the pod, the proxy client certificate and metrics-server's
delegated authentication. The first ``kubectl top`` answers one scrape later (at most
``--metric-resolution``).
"""

from __future__ import annotations

import time

from kosmos.api.objects import Obj, condition_of
from kosmos.api.resources import APISERVICES, DEPLOYMENTS
from kosmos.kube.client import Client
from kosmos.local import metrics_server
from kosmos.local.topology import ClusterPlan
from kosmos.ops import apply as applier
from kosmos.ops import rollout
from kosmos.ops.errors import OperationError
from kosmos.ops.host import Host
from kosmos.ops.progress import Progress

__all__ = [
    "METRICS_TIMEOUT",
    "MetricsServerError",
    "ensure_metrics_server",
    "not_available",
    "set_up",
    "tear_down",
]

#: The pod starts in seconds; the APIService turns Available at the apiserver's next check.
METRICS_TIMEOUT = 180.0


class MetricsServerError(OperationError):
    """metrics-server did not become available; the message carries the apiserver's reason."""


def set_up(hosts: Host, host: ClusterPlan, progress: Progress) -> None:
    """:func:`ensure_metrics_server` on its own client (``local up``'s last step)."""

    async def run() -> None:
        await ensure_metrics_server(await hosts.client(), host, progress)

    hosts.run(run())


def tear_down(hosts: Host, progress: Progress) -> None:
    """Remove what :func:`set_up` applied, the APIService first (``local up``'s tear-down).

    An APIService whose backend is gone makes discovery of ``metrics.k8s.io`` fail, and the
    namespace controller then leaves deleted namespaces Terminating: it must not outlive
    metrics-server, e.g. when the host's real nodes go.
    """

    async def run() -> None:
        client = await hosts.client()
        removed = 0
        for resource, body in reversed(metrics_server.objects()):
            meta = body["metadata"]
            removed += await applier.delete(client, resource, meta["name"], meta.get("namespace"))
        if removed:
            progress(f"metrics-server: {removed} objects removed")

    hosts.run(run())


async def ensure_metrics_server(client: Client, host: ClusterPlan, progress: Progress) -> None:
    """Apply metrics-server to a host with real nodes and wait until ``kubectl top`` works."""
    if not host.real_nodes:
        return
    actions = []
    for resource, body in metrics_server.objects():
        actions.append((await applier.apply(client, resource, body, dry_run=False)).action)
    progress(f"metrics-server: {applier.summarize(actions)}")

    def report(why: str) -> None:
        progress(f"metrics-server: waiting for {why}")

    hint = f"(kubectl -n {metrics_server.NAMESPACE} logs deploy/{metrics_server.NAME})"
    deadline = time.monotonic() + METRICS_TIMEOUT
    workload = [(DEPLOYMENTS, metrics_server.NAMESPACE, metrics_server.NAME)]
    try:  # rollout.wait also fails at once on a pod that cannot start, naming why
        await rollout.wait(client, workload, METRICS_TIMEOUT, report=report)
    except rollout.RolloutFailed as exc:
        raise MetricsServerError(f"{exc} {hint}") from exc

    async def pending() -> str:
        return not_available(
            await applier.get_or_none(client, APISERVICES, metrics_server.API_SERVICE)
        )

    try:  # what is left of the one budget
        await applier.poll(
            f"APIService {metrics_server.API_SERVICE}",
            max(0.0, deadline - time.monotonic()),
            pending,
            report=report,
        )
    except applier.WaitTimeout as exc:
        raise MetricsServerError(f"{exc} {hint}") from exc
    progress(f"metrics-server: APIService {metrics_server.API_SERVICE} Available")


def not_available(api_service: Obj | None) -> str:
    """Why an APIService is not Available, in the apiserver's words; "" when it is."""
    name = metrics_server.API_SERVICE
    if api_service is None:
        return f"APIService {name} (not found)"
    available = condition_of(api_service, "Available")
    if available is not None and available.get("status") == "True":
        return ""
    if available is None:
        return f"APIService {name} (no Available condition yet)"
    return f"APIService {name} ({available.get('reason')}: {available.get('message')})"
