"""Prometheus metrics of the runtime, in one registry served at ``/metrics``.

One module-level registry (not the global default) so several managers in one test process
share series instead of failing on duplicate registration.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry()

_LATENCY = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

client_request_seconds = Histogram(
    "kosmos_client_request_duration_seconds",
    "Latency of requests to an apiserver, by cluster, verb and HTTP code.",
    ["cluster", "verb", "code"],
    buckets=_LATENCY,
    registry=REGISTRY,
)
watch_restarts = Counter(
    "kosmos_watch_restarts_total",
    "Watch streams re-opened after an error or a stall (resuming from the last version).",
    ["cluster", "resource"],
    registry=REGISTRY,
)
watch_relists = Counter(
    "kosmos_watch_relists_total",
    "Full relists, e.g. after 410 Gone.",
    ["cluster", "resource"],
    registry=REGISTRY,
)
watch_events = Counter(
    "kosmos_watch_events_total",
    "Watch events received, by type.",
    ["cluster", "resource", "type"],
    registry=REGISTRY,
)
cache_objects = Gauge(
    "kosmos_cache_objects",
    "Objects held by an informer's cache.",
    ["cluster", "resource"],
    registry=REGISTRY,
)
workqueue_depth = Gauge(
    "kosmos_workqueue_depth", "Keys waiting in a workqueue.", ["name"], registry=REGISTRY
)
workqueue_adds = Counter(
    "kosmos_workqueue_adds_total", "Keys added to a workqueue.", ["name"], registry=REGISTRY
)
workqueue_retries = Counter(
    "kosmos_workqueue_retries_total", "Rate-limited re-adds.", ["name"], registry=REGISTRY
)
workqueue_queue_seconds = Histogram(
    "kosmos_workqueue_queue_duration_seconds",
    "Time a key waits in the queue before a worker takes it.",
    ["name"],
    buckets=_LATENCY,
    registry=REGISTRY,
)
workqueue_work_seconds = Histogram(
    "kosmos_workqueue_work_duration_seconds",
    "Time from a worker taking a key to marking it done.",
    ["name"],
    buckets=_LATENCY,
    registry=REGISTRY,
)
reconcile_seconds = Histogram(
    "kosmos_reconcile_duration_seconds",
    "Duration of reconcile calls, by controller.",
    ["controller"],
    buckets=_LATENCY,
    registry=REGISTRY,
)
reconcile_total = Counter(
    "kosmos_reconcile_total",
    "Reconcile calls by outcome (success, requeue, terminal, error).",
    ["controller", "outcome"],
    registry=REGISTRY,
)
leader = Gauge(
    "kosmos_leader", "1 while this process holds the lease.", ["lease"], registry=REGISTRY
)


class PrometheusQueueMetrics:
    """The workqueue's metrics hooks, bound to the series above."""

    def add(self, name: str) -> None:
        workqueue_adds.labels(name).inc()

    def depth(self, name: str, n: int) -> None:
        workqueue_depth.labels(name).set(n)

    def latency(self, name: str, seconds: float) -> None:
        workqueue_queue_seconds.labels(name).observe(seconds)

    def work_duration(self, name: str, seconds: float) -> None:
        workqueue_work_seconds.labels(name).observe(seconds)

    def retry(self, name: str) -> None:
        workqueue_retries.labels(name).inc()


class PrometheusReconcileObserver:
    """The controller's reconcile observer, bound to the series above."""

    def observe(self, controller: str, seconds: float, outcome: str) -> None:
        reconcile_seconds.labels(controller).observe(seconds)
        reconcile_total.labels(controller, outcome).inc()
