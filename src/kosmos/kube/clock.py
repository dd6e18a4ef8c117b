"""Time as a dependency, so that queues and controllers can be tested without waiting.

Everything in ``kosmos.kube`` that waits (rate limiters, delayed requeues, backoff) asks a
``Clock`` instead of calling ``time``/``asyncio.sleep`` directly. Production code passes
``RealClock``; unit tests pass ``FakeClock`` and move time by hand, which makes a test of a
1000-second backoff take microseconds and never flake on a slow machine.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol


class Clock(Protocol):
    """Monotonic time and a way to wait for it to pass."""

    def now(self) -> float:
        """Monotonic seconds; only differences between two readings mean anything."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return once ``seconds`` have passed on this clock."""
        ...


class RealClock:
    """The wall-independent clock of the running process."""

    def now(self) -> float:
        # Monotonic, not wall time: a clock step (NTP, suspend) must not fire or stall timers.
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class FakeClock:
    """A clock that only moves when told to. For unit tests only.

    ``sleep`` parks the caller on a future until ``advance`` moves time past its deadline.
    ``advance`` only resolves futures; the woken tasks run when the test yields to the loop,
    which ``settle`` does. Tests therefore read ``clock.advance(x); await clock.settle()``.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()  # ties in deadline wake in the order they slept

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            # Still a suspension point, like asyncio.sleep(0), so callers cannot starve the loop.
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._order), future))
        await future

    def advance(self, seconds: float) -> None:
        """Move time forward and wake, earliest deadline first, every sleeper now due."""
        if seconds < 0:
            raise ValueError(f"a monotonic clock cannot go back ({seconds}s)")
        self._now += seconds
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():  # a cancelled sleeper's future is already done
                future.set_result(None)

    async def settle(self, rounds: int = 20) -> None:
        """Yield ``rounds`` times so that chains of woken tasks run on to their next wait."""
        for _ in range(rounds):
            await asyncio.sleep(0)

    @property
    def pending_sleepers(self) -> int:
        """How many tasks are parked in ``sleep`` (cancelled sleeps do not count)."""
        return sum(1 for _, _, future in self._sleepers if not future.done())
