"""A rate-limiting, delaying work queue with the semantics of client-go's ``util/workqueue``.

Controllers are level-triggered: an event only says "look at this key again", so the queue
holds keys, not events, and three guarantees make that safe:

* a key waiting to be handed out is held once, however often it is added (dedup);
* a key is never handed to two workers at once: adding a key that is being processed marks
  it dirty, and it is queued again only when the worker calls ``done``;
* distinct keys come out in the order they were first added.

Retries go through ``add_after``/``add_rate_limited``, whose deadlines are kept in a heap
watched by a single background task that sleeps on the injected clock.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, Protocol, TypeVar

from kosmos.kube.clock import Clock, RealClock
from kosmos.kube.ratelimit import RateLimiter, default_controller_rate_limiter

K = TypeVar("K", bound=Hashable)


class ShutDown(Exception):
    """Raised by ``get`` once the queue is shut down and nothing is left to hand out."""


class QueueMetrics(Protocol):
    """Hooks for queue metrics; ``name`` is the queue's name (one label per controller)."""

    def add(self, name: str) -> None:
        """A key became pending (duplicates of a pending key are not counted)."""

    def depth(self, name: str, n: int) -> None:
        """Keys added and not yet handed out, including ones waiting for their ``done``."""

    def latency(self, name: str, seconds: float) -> None:
        """Time a key waited between being added and being handed out by ``get``."""

    def work_duration(self, name: str, seconds: float) -> None:
        """Time a key spent being processed, from ``get`` to ``done``."""

    def retry(self, name: str) -> None:
        """A key was re-added through the rate limiter."""


class NoQueueMetrics:
    """Metrics that go nowhere, so the queue never has to check whether it has any."""

    def add(self, name: str) -> None:
        pass

    def depth(self, name: str, n: int) -> None:
        pass

    def latency(self, name: str, seconds: float) -> None:
        pass

    def work_duration(self, name: str, seconds: float) -> None:
        pass

    def retry(self, name: str) -> None:
        pass


class _DelayedAdds(Generic[K]):
    """Keys waiting for a deadline; one task sleeps until the earliest and releases them.

    One task, not one per key: a controller with thousands of objects on a resync period
    would otherwise hold thousands of timers. Superseded heap entries are skipped lazily.
    """

    def __init__(self, name: str, clock: Clock, release: Callable[[K], None]) -> None:
        self._name = name
        self._clock = clock
        self._release = release
        self._heap: list[tuple[float, int, K]] = []
        self._deadlines: dict[K, tuple[float, int]] = {}
        self._order = itertools.count()  # unique, so the heap never compares keys
        self._waiter: asyncio.Task[None] | None = None
        self._waiter_deadline = math.inf

    def __len__(self) -> int:
        return len(self._deadlines)

    def schedule(self, key: K, ready_at: float) -> None:
        """Release ``key`` at ``ready_at``, unless it is already due to be released earlier."""
        current = self._deadlines.get(key)
        if current is not None and current[0] <= ready_at:
            return
        entry = (ready_at, next(self._order))
        self._deadlines[key] = entry
        heapq.heappush(self._heap, (entry[0], entry[1], key))
        self._wake_for(ready_at)

    def clear(self) -> None:
        self._heap.clear()
        self._deadlines.clear()
        if self._waiter is not None:
            self._waiter.cancel()

    def _wake_for(self, ready_at: float) -> None:
        """Make sure the waiter wakes by ``ready_at``: restart it if it sleeps past that."""
        if self._waiter is not None and not self._waiter.done():
            if self._waiter_deadline <= ready_at:
                return
            self._waiter.cancel()  # it only ever awaits the clock, so cancelling loses nothing
        self._waiter_deadline = ready_at
        loop = asyncio.get_running_loop()
        self._waiter = loop.create_task(self._wait(), name=f"workqueue-{self._name}-delayed")

    async def _wait(self) -> None:
        while (deadline := self._release_due()) is not None:
            self._waiter_deadline = deadline
            await self._clock.sleep(deadline - self._clock.now())

    def _release_due(self) -> float | None:
        """Release every key whose deadline has passed; return the next deadline, if any."""
        now = self._clock.now()
        while self._heap:
            ready_at, order, key = self._heap[0]
            if self._deadlines.get(key) != (ready_at, order):
                heapq.heappop(self._heap)  # superseded by an earlier deadline
                continue
            if ready_at > now:
                return ready_at
            heapq.heappop(self._heap)
            del self._deadlines[key]
            self._release(key)
        return None


class WorkQueue(Generic[K]):
    """Deduplicating FIFO of keys, with delayed and rate-limited adds (see module docstring)."""

    def __init__(
        self,
        name: str,
        *,
        clock: Clock | None = None,
        rate_limiter: RateLimiter[K] | None = None,
        metrics: QueueMetrics | None = None,
    ) -> None:
        self.name = name
        self._clock: Clock = clock if clock is not None else RealClock()
        self._limiter: RateLimiter[K] = (
            rate_limiter
            if rate_limiter is not None
            else default_controller_rate_limiter(self._clock)
        )
        self._metrics: QueueMetrics = metrics if metrics is not None else NoQueueMetrics()
        self._queue: deque[K] = deque()
        self._dirty: set[K] = set()  # added and not yet handed out (queued or awaiting done)
        self._processing: set[K] = set()
        self._added_at: dict[K, float] = {}
        self._started_at: dict[K, float] = {}
        self._getters: deque[asyncio.Future[None]] = deque()
        self._idle = asyncio.Event()
        self._idle.set()
        self._delayed: _DelayedAdds[K] = _DelayedAdds(name, self._clock, self.add)
        self._shutting_down = False

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def add(self, key: K) -> None:
        """Mark ``key`` as needing work; queued now unless a worker is processing it."""
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        self._metrics.add(self.name)
        self._added_at.setdefault(key, self._clock.now())
        if key not in self._processing:  # otherwise ``done`` queues it
            self._push(key)
        self._report_depth()

    async def get(self) -> K:
        """Wait for the next key and take it into processing; the caller must call ``done``."""
        while not self._queue:
            if self._shutting_down:
                raise ShutDown(self.name)
            await self._wait_for_key()
        key = self._queue.popleft()
        self._dirty.discard(key)
        self._processing.add(key)
        self._idle.clear()
        now = self._clock.now()
        self._metrics.latency(self.name, now - self._added_at.pop(key, now))
        self._started_at[key] = now
        self._report_depth()
        return key

    def done(self, key: K) -> None:
        """Finish processing ``key``; if it was added meanwhile, queue it again now."""
        if key not in self._processing:
            return
        self._processing.discard(key)
        started = self._started_at.pop(key, None)
        if started is not None:
            self._metrics.work_duration(self.name, self._clock.now() - started)
        if key in self._dirty:
            self._push(key)
        if not self._processing:
            self._idle.set()

    def add_after(self, key: K, delay: float) -> None:
        """Add ``key`` once ``delay`` seconds have passed (an earlier pending deadline wins)."""
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        self._delayed.schedule(key, self._clock.now() + delay)

    def add_rate_limited(self, key: K) -> None:
        """Add ``key`` after the delay its rate limiter asks for (one more retry)."""
        if self._shutting_down:
            return
        self._metrics.retry(self.name)
        self.add_after(key, self._limiter.when(key))

    def forget(self, key: K) -> None:
        """Reset ``key``'s backoff: it succeeded, so its next failure starts small again."""
        self._limiter.forget(key)

    def num_requeues(self, key: K) -> int:
        return self._limiter.retries(key)

    def shutdown(self) -> None:
        """Stop taking keys and drop delayed ones; getters drain what is queued, then stop."""
        self._shutting_down = True
        self._delayed.clear()
        while self._getters:
            self._wake(self._getters.popleft())

    async def shutdown_with_drain(self) -> None:
        """Shut down, then wait until every key being processed is ``done``."""
        self.shutdown()
        await self._idle.wait()

    def _push(self, key: K) -> None:
        self._queue.append(key)
        self._wake_one_getter()  # one wake per queued key, so no key sits while getters wait

    async def _wait_for_key(self) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._getters.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future in self._getters:
                self._getters.remove(future)
            elif future.done() and not future.cancelled() and self._queue:
                self._wake_one_getter()  # we were woken for a key but will not take it: pass it on
            raise

    def _wake_one_getter(self) -> None:
        while self._getters:  # skip getters whose wait was cancelled
            if self._wake(self._getters.popleft()):
                return

    @staticmethod
    def _wake(future: asyncio.Future[None]) -> bool:
        if future.done():
            return False
        future.set_result(None)
        return True

    def _report_depth(self) -> None:
        self._metrics.depth(self.name, len(self._dirty))
