"""The extender process: health, metrics, and what pods say while it is down."""

from __future__ import annotations

from tests.fixtures.scheduler import SchedulerEnv
from tests.integration.scheduler.support import bound, events, pod
from tests.support import apply, get, wait_for


def test_health_readiness_and_latency_metrics(workers: SchedulerEnv, namespace):
    apply(workers.host, pod("probe"), namespace=namespace)
    bound(workers.host, namespace, 1)
    assert workers.extender_get("/healthz") == (200, "ok")
    assert workers.extender_get("/readyz") == (200, "ok")
    status, metrics = workers.extender_get("/metrics")
    assert status == 200
    counts = [
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith(
            'kosmos_scheduler_extender_request_duration_seconds_count{verb="filter"}'
        )
    ]
    assert counts and counts[0] >= 1
    assert 'kosmos_cache_objects{cluster="cluster1",resource="pods"}' in metrics  # member caches


def test_a_down_extender_makes_pods_wait_with_a_clear_reason_then_they_are_scheduled(
    workers: SchedulerEnv, namespace
):
    workers.stop_extender()
    try:
        apply(workers.host, pod("waiting"), namespace=namespace)
        messages = wait_for(
            lambda: events(workers.host, namespace, "waiting"), 60, "FailedScheduling"
        )
        assert any(
            "kosmos-scheduler-extender/filter" in m and "connection refused" in m for m in messages
        ), messages
        condition = {
            c["type"]: c
            for c in get(workers.host, "pod", "waiting", "-n", namespace)["status"]["conditions"]
        }["PodScheduled"]
        assert (
            condition["status"] == "False" and "kosmos-scheduler-extender" in condition["message"]
        )
    finally:
        workers.start()
    # a failed extender call is an error, retried with backoff (<= 10 s): no event needed
    (scheduled,) = bound(workers.host, namespace, 1, t=60)
    assert scheduled["metadata"]["name"] == "waiting"
