import asyncio
import logging

import pytest

from kosmos.kube.clock import FakeClock
from kosmos.kube.controller import Controller, Request, Result, TerminalError

A = Request("c1", "default", "a")
B = Request("c1", "default", "b")


class RecordingObserver:
    def __init__(self):
        self.outcomes = []

    def observe(self, controller, seconds, outcome):
        self.outcomes.append((controller, seconds, outcome))


class QueueMetrics:
    def __init__(self):
        self.calls = []

    def __getattr__(self, kind):
        return lambda name, *args: self.calls.append((kind, name, *args))


class Harness:
    """A running controller on a fake clock; reconcile calls are recorded with their time.

    Reconcilers that must stay in flight await ``hold()``; leaving the harness releases every
    hold first, so a failing assertion fails the test instead of hanging its teardown.
    """

    def __init__(self, reconcile, **kwargs):
        self.clock = FakeClock()
        self.calls = []
        self.holds = []

        async def recording(request):
            self.calls.append((self.clock.now(), request))
            return await reconcile(request)

        self.controller = Controller("test", recording, clock=self.clock, **kwargs)
        self.task = None

    async def __aenter__(self):
        self.task = asyncio.ensure_future(self.controller.run())
        await self.clock.settle()
        return self

    async def __aexit__(self, *exc):
        self.release_all()
        await self.controller.stop()
        await self.task

    async def hold(self):
        """Park the calling reconcile until the test releases it."""
        future = asyncio.get_running_loop().create_future()
        self.holds.append(future)
        await future

    def release_all(self):
        for future in self.holds:
            if not future.done():
                future.set_result(None)

    async def step(self, seconds):
        self.clock.advance(seconds)
        await self.clock.settle()

    def times(self):
        return [t for t, _ in self.calls]


def test_request_str_names_cluster_namespace_and_name():
    assert str(A) == "c1/default/a"
    assert str(Request("c1", "", "node-1")) == "c1/node-1"


def test_terminal_error_carries_a_reason():
    err = TerminalError("spec.foo is invalid")
    assert (str(err), err.message, err.reason) == ("spec.foo is invalid",) * 2 + (
        "ReconcileFailed",
    )
    assert TerminalError("x", reason="Invalid").reason == "Invalid"


def test_a_controller_needs_a_worker():
    async def reconcile(request):
        return None

    with pytest.raises(ValueError, match="at least one worker"):
        Controller("x", reconcile, workers=0)


async def test_success_forgets_the_backoff():
    results = iter([RuntimeError("boom"), RuntimeError("boom"), None])

    async def reconcile(request):
        outcome = next(results)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async with Harness(reconcile) as h:
        h.controller.enqueue(A)
        await h.step(0)
        assert h.controller.queue.num_requeues(A) == 1
        await h.step(0.005)
        await h.step(0.01)
        assert len(h.calls) == 3
        assert h.controller.queue.num_requeues(A) == 0
        await h.step(1000)
        assert len(h.calls) == 3


async def test_requeue_after_redelivers_at_that_time():
    async def reconcile(request):
        return Result(requeue_after=30)

    async with Harness(reconcile) as h:
        h.controller.enqueue(A)
        await h.step(0)
        await h.step(29)
        assert h.times() == [0]
        await h.step(1)
        assert h.times() == [0, 30]
        await h.step(30)
        assert h.times() == [0, 30, 60]
        assert h.controller.queue.num_requeues(A) == 0


async def test_an_error_retries_with_growing_backoff_and_logs_the_traceback(caplog):
    async def reconcile(request):
        raise RuntimeError("apiserver said no")

    with caplog.at_level(logging.ERROR, logger="kosmos.kube.controller"):
        async with Harness(reconcile) as h:
            h.controller.enqueue(A)
            await h.step(0)
            for delay in (0.005, 0.01, 0.02, 0.04):
                await h.step(delay * 0.9)
                calls = len(h.calls)
                await h.step(delay * 0.1)
                assert len(h.calls) == calls + 1
            assert h.times() == pytest.approx([0, 0.005, 0.015, 0.035, 0.075])
            assert h.controller.queue.num_requeues(A) == 5
    record = caplog.records[0]
    assert "c1/default/a" in record.getMessage()
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)


async def test_a_terminal_error_is_reported_once_and_never_retried(caplog):
    reported = []

    async def reconcile(request):
        raise TerminalError("spec is invalid", reason="InvalidSpec")

    async def on_terminal(request, err):
        reported.append((request, err.reason))

    with caplog.at_level(logging.WARNING, logger="kosmos.kube.controller"):
        async with Harness(reconcile, on_terminal=on_terminal) as h:
            h.controller.enqueue(A)
            await h.step(0)
            await h.step(1000)
            assert len(h.calls) == 1
            assert h.controller.queue.num_requeues(A) == 0
    assert reported == [(A, "InvalidSpec")]
    assert any(
        r.levelno == logging.WARNING and "InvalidSpec" in r.getMessage() for r in caplog.records
    )


async def test_a_failing_on_terminal_is_logged_and_the_worker_carries_on(caplog):
    async def reconcile(request):
        if request == A:
            raise TerminalError("bad")
        return None

    async def on_terminal(request, err):
        raise RuntimeError("event sink down")

    async with Harness(reconcile, workers=1, on_terminal=on_terminal) as h:
        h.controller.enqueue(A)
        h.controller.enqueue(B)
        await h.step(0)
        assert [r for _, r in h.calls] == [A, B]
    failures = [r for r in caplog.records if "on_terminal" in r.getMessage()]
    assert len(failures) == 1
    assert isinstance(failures[0].exc_info[1], RuntimeError)


async def test_a_raising_reconcile_does_not_kill_the_only_worker():
    async def reconcile(request):
        if request == A:
            raise KeyError("bug")
        return None

    async with Harness(reconcile, workers=1) as h:
        h.controller.enqueue(A)
        h.controller.enqueue(B)
        await h.step(0)
        assert [r for _, r in h.calls] == [A, B]


async def test_a_request_is_never_reconciled_by_two_workers_at_once():
    in_flight = set()
    overlaps = []
    peak = 0

    async def reconcile(request):
        nonlocal peak
        if request in in_flight:
            overlaps.append(request)  # an assert here would only be retried as an error
        in_flight.add(request)
        peak = max(peak, len(in_flight))
        try:
            await h.hold()
        finally:
            in_flight.discard(request)

    keys = [Request("c1", "ns", n) for n in "abcd"]
    h = Harness(reconcile, workers=4)
    async with h:
        for key in keys:
            h.controller.enqueue(key)
        await h.step(0)
        assert in_flight == set(keys)  # four workers really run in parallel
        for _ in range(3):
            h.controller.enqueue(keys[0])  # re-added while in flight
        await h.step(0)
        assert len(h.calls) == 4  # no idle worker picked up the busy key
        h.holds[0].set_result(None)  # keys[0] finishes
        await h.step(0)
        assert len(h.calls) == 5  # handed out again after done, once
        assert h.calls[-1][1] == keys[0]
        h.release_all()
        await h.step(0)
        assert len(h.calls) == 5
    assert overlaps == []
    assert peak == 4


async def test_stop_waits_for_in_flight_reconciles_and_starts_no_new_ones():
    async def reconcile(request):
        await h.hold()

    h = Harness(reconcile, workers=1)
    async with h:
        h.controller.enqueue(A)
        await h.step(0)
        h.controller.enqueue(B)
        stopping = asyncio.ensure_future(h.controller.stop())
        await h.clock.settle()
        assert not stopping.done()
        assert not h.task.done()
        h.release_all()
        await h.clock.settle()
        assert stopping.done()
        assert h.task.done()
    assert [r for _, r in h.calls] == [A]


async def test_cancelling_run_drains_in_flight_work_then_propagates():
    finished = []

    async def reconcile(request):
        await h.hold()
        finished.append(request)

    h = Harness(reconcile)
    await h.__aenter__()
    try:
        h.controller.enqueue(A)
        await h.step(0)
        h.task.cancel()
        await h.clock.settle()
        assert not h.task.done()
        h.release_all()
        await h.clock.settle()
        assert h.task.cancelled()
        assert finished == [A]
    finally:
        h.release_all()
        h.task.cancel()


async def test_observer_sees_every_outcome_with_its_duration():
    outcomes = {
        "ok": None,
        "again": Result(requeue_after=10),
        "terminal": TerminalError("no"),
        "error": RuntimeError("boom"),
    }
    observer = RecordingObserver()
    clock_holder = []

    async def reconcile(request):
        await clock_holder[0].sleep(2)
        outcome = outcomes[request.name]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async with Harness(reconcile, workers=4, observer=observer) as h:
        clock_holder.append(h.clock)
        for name in outcomes:
            h.controller.enqueue(Request("c1", "", name))
        await h.step(0)
        await h.step(2)
    assert sorted(observer.outcomes) == [
        ("test", 2, "error"),
        ("test", 2, "requeue"),
        ("test", 2, "success"),
        ("test", 2, "terminal"),
    ]


async def test_queue_metrics_are_wired_through_the_controller():
    metrics = QueueMetrics()

    async def reconcile(request):
        raise RuntimeError("boom")

    async with Harness(reconcile, queue_metrics=metrics) as h:
        h.controller.enqueue(A)
        await h.step(0)
    kinds = {kind for kind, *_ in metrics.calls}
    assert {"add", "depth", "latency", "work_duration", "retry"} <= kinds
    assert all(name == "test" for _, name, *_ in metrics.calls)
