import asyncio

import pytest

from kosmos.kube.clock import FakeClock
from kosmos.kube.ratelimit import ItemExponentialBackoff
from kosmos.kube.workqueue import ShutDown, WorkQueue


class RecordingMetrics:
    def __init__(self):
        self.calls = []

    def add(self, name):
        self.calls.append(("add", name))

    def depth(self, name, n):
        self.calls.append(("depth", name, n))

    def latency(self, name, seconds):
        self.calls.append(("latency", name, seconds))

    def work_duration(self, name, seconds):
        self.calls.append(("work_duration", name, seconds))

    def retry(self, name):
        self.calls.append(("retry", name))

    def of(self, kind):
        return [c[1:] for c in self.calls if c[0] == kind]


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
async def queue(clock):
    q = WorkQueue("test", clock=clock, rate_limiter=ItemExponentialBackoff())
    yield q
    q.shutdown()
    await clock.settle()


async def drain(q):
    """Everything currently pending, in the order get() hands it out (each marked done)."""
    keys = []
    while len(q):
        key = await q.get()
        q.done(key)
        keys.append(key)
    return keys


async def test_distinct_keys_come_out_in_fifo_order(queue):
    for key in "cab":
        queue.add(key)
    assert await drain(queue) == ["c", "a", "b"]


async def test_a_pending_key_is_held_once(queue):
    queue.add("a")
    queue.add("b")
    queue.add("a")
    assert len(queue) == 2
    assert await drain(queue) == ["a", "b"]


async def test_a_key_added_while_processing_waits_for_done(queue, clock):
    queue.add("a")
    assert await queue.get() == "a"
    queue.add("a")
    queue.add("a")
    assert len(queue) == 0  # dirty, but not handed out while a worker holds it
    getter = asyncio.ensure_future(queue.get())
    await clock.settle()
    assert not getter.done()
    queue.done("a")
    await clock.settle()
    assert getter.result() == "a"
    queue.done("a")
    assert len(queue) == 0  # added twice while processing, handed out once


async def test_done_without_re_add_does_not_requeue(queue):
    queue.add("a")
    queue.done(await queue.get())
    assert len(queue) == 0


async def test_get_waits_for_an_add(queue, clock):
    getter = asyncio.ensure_future(queue.get())
    await clock.settle()
    assert not getter.done()
    queue.add("a")
    await clock.settle()
    assert getter.result() == "a"


async def test_a_cancelled_getter_does_not_swallow_its_key(queue, clock):
    first = asyncio.ensure_future(queue.get())
    second = asyncio.ensure_future(queue.get())
    await clock.settle()
    queue.add("a")  # wakes the first getter...
    first.cancel()  # ...which is cancelled before it runs
    await clock.settle()
    assert first.cancelled()
    assert second.result() == "a"


async def test_add_after_releases_keys_in_deadline_order(queue, clock):
    queue.add_after("a", 3)
    queue.add_after("b", 1)
    queue.add_after("c", 2)
    await clock.settle()
    assert clock.pending_sleepers == 1  # one waiter for all delayed keys
    clock.advance(0.5)
    await clock.settle()
    assert len(queue) == 0
    released = []
    for _ in range(3):
        clock.advance(1)
        await clock.settle()
        released += await drain(queue)
    assert released == ["b", "c", "a"]
    await clock.settle()
    assert clock.pending_sleepers == 0


async def test_add_after_keeps_the_earlier_deadline(queue, clock):
    queue.add_after("a", 5)
    queue.add_after("a", 1)  # earlier: replaces
    queue.add_after("a", 3)  # later: ignored
    clock.advance(1)
    await clock.settle()
    assert await drain(queue) == ["a"]
    clock.advance(10)
    await clock.settle()
    assert len(queue) == 0


async def test_an_earlier_delayed_key_wakes_the_waiter_early(queue, clock):
    queue.add_after("late", 100)
    await clock.settle()
    queue.add_after("soon", 1)
    await clock.settle()
    clock.advance(1)
    await clock.settle()
    assert await drain(queue) == ["soon"]
    clock.advance(99)
    await clock.settle()
    assert await drain(queue) == ["late"]


async def test_a_delayed_key_already_pending_is_not_duplicated(queue, clock):
    queue.add("a")
    queue.add_after("a", 1)
    clock.advance(1)
    await clock.settle()
    assert await drain(queue) == ["a"]


async def test_add_after_without_delay_adds_now(queue):
    queue.add_after("a", 0)
    queue.add_after("b", -1)
    assert await drain(queue) == ["a", "b"]


async def test_add_rate_limited_backs_off_until_forget(queue, clock):
    for expected_delay in (0.005, 0.01, 0.02):
        queue.add_rate_limited("a")
        clock.advance(expected_delay / 2)
        await clock.settle()
        assert len(queue) == 0
        clock.advance(expected_delay / 2)
        await clock.settle()
        assert await drain(queue) == ["a"]
    assert queue.num_requeues("a") == 3
    queue.forget("a")
    assert queue.num_requeues("a") == 0


async def test_shutdown_wakes_every_getter_with_shutdown(queue, clock):
    getters = [asyncio.ensure_future(queue.get()) for _ in range(3)]
    await clock.settle()
    queue.shutdown()
    await clock.settle()
    for getter in getters:
        assert isinstance(getter.exception(), ShutDown)


async def test_shutdown_hands_out_what_is_queued_then_stops(queue, clock):
    queue.add("a")
    queue.add_after("later", 1)
    queue.shutdown()
    queue.add("b")
    queue.add_after("c", 1)
    queue.add_rate_limited("d")
    assert await queue.get() == "a"
    with pytest.raises(ShutDown):
        await queue.get()
    clock.advance(10)
    await clock.settle()
    assert len(queue) == 0
    assert clock.pending_sleepers == 0


async def test_shutdown_with_drain_waits_for_keys_in_processing(queue, clock):
    queue.add("a")
    queue.add("b")
    a = await queue.get()
    b = await queue.get()
    draining = asyncio.ensure_future(queue.shutdown_with_drain())
    await clock.settle()
    assert not draining.done()
    queue.done(a)
    await clock.settle()
    assert not draining.done()
    queue.done(b)
    await clock.settle()
    assert draining.done()


async def test_shutdown_with_drain_returns_at_once_when_idle(queue):
    await queue.shutdown_with_drain()
    assert queue.shutting_down


async def test_metrics_hooks_see_adds_depth_latency_work_and_retries(clock):
    metrics = RecordingMetrics()
    q = WorkQueue("m", clock=clock, rate_limiter=ItemExponentialBackoff(), metrics=metrics)
    q.add("a")
    q.add("a")  # duplicate: not an add
    q.add("b")
    assert metrics.of("add") == [("m",), ("m",)]
    assert metrics.of("depth")[-1] == ("m", 2)
    clock.advance(2)
    key = await q.get()
    assert metrics.of("latency") == [("m", 2)]
    assert metrics.of("depth")[-1] == ("m", 1)
    clock.advance(3)
    q.done(key)
    assert metrics.of("work_duration") == [("m", 3)]
    q.add_rate_limited("a")
    assert metrics.of("retry") == [("m",)]
    q.shutdown()
    await clock.settle()
