"""Requests first, cache upkeep second: a gate informers wait at while a request is served.

A process that answers latency-bound requests (the scheduler extender, called inside
kube-scheduler's one-pod-at-a-time cycle) shares its event loop with informers. During a
burst the informers always have events ready, and every await in a request handler lets a
few of them run first: the answer waits behind cache upkeep that could as well come after.
Handlers hold the gate (``urgent``) while they work; informers ``pause`` at their yield
points until no request is in progress — at most ``max_wait`` at a time, so a stream of
requests slows the caches down but never stops them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator


class Gate:
    def __init__(self, max_wait: float = 0.02) -> None:
        self.max_wait = max_wait
        self._urgent = 0
        self._clear = asyncio.Event()
        self._clear.set()

    @property
    def held(self) -> bool:
        return self._urgent > 0

    @contextlib.contextmanager
    def urgent(self) -> Iterator[None]:
        """Hold the gate for the duration of one request."""
        self._urgent += 1
        self._clear.clear()
        try:
            yield
        finally:
            self._urgent -= 1
            if not self._urgent:
                self._clear.set()

    async def pause(self) -> None:
        """Wait (briefly) until no request holds the gate."""
        if self._urgent:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._clear.wait(), self.max_wait)
