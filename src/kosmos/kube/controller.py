"""Workers that take requests off a work queue and reconcile them (controller-runtime style).

A reconciler is an async function of a ``Request`` that drives one object towards its desired
state. It reports what should happen next by what it returns or raises, and ``_process`` is
the single place that turns that outcome into queue operations, so every controller retries,
backs off and gives up in the same way:

* ``Result(requeue_after=x)``: done for now, look again in ``x`` seconds;
* ``Result()`` or ``None``: done; the backoff of the request is reset;
* ``TerminalError``: retrying cannot help; report it through ``on_terminal``, never retry;
* any other exception: retry with per-request exponential backoff.

The work queue guarantees a request is never reconciled by two workers at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from kosmos.kube import logs
from kosmos.kube.clock import Clock, RealClock
from kosmos.kube.ratelimit import RateLimiter, default_controller_rate_limiter
from kosmos.kube.workqueue import QueueMetrics, ShutDown, WorkQueue

logger = logging.getLogger("kosmos.kube.controller")


@dataclass(frozen=True)
class Request:
    """Which object to reconcile: a key, not the object, because reconciles are level-based."""

    cluster: str
    namespace: str
    name: str

    def __str__(self) -> str:
        if self.namespace:
            return f"{self.cluster}/{self.namespace}/{self.name}"
        return f"{self.cluster}/{self.name}"


@dataclass(frozen=True)
class Result:
    """A successful reconcile; ``requeue_after`` asks to look again after that many seconds."""

    requeue_after: float | None = None


class TerminalError(Exception):
    """A reconcile failure that retrying cannot fix (e.g. an invalid spec): report, not retry."""

    def __init__(self, message: str, reason: str = "ReconcileFailed") -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


Reconciler = Callable[[Request], Awaitable[Result | None]]
TerminalHandler = Callable[[Request, TerminalError], Awaitable[None]]


class ReconcileObserver(Protocol):
    """Hook for reconcile metrics; ``outcome`` is success, requeue, terminal or error."""

    def observe(self, controller: str, seconds: float, outcome: str) -> None: ...


class NoReconcileObserver:
    """Observes nothing, so the controller never has to check whether it has an observer."""

    def observe(self, controller: str, seconds: float, outcome: str) -> None:
        pass


class Controller:
    """Runs ``workers`` concurrent reconcile loops over one work queue of ``Request``s."""

    def __init__(
        self,
        name: str,
        reconcile: Reconciler,
        *,
        workers: int = 2,
        clock: Clock | None = None,
        rate_limiter: RateLimiter[Request] | None = None,
        queue_metrics: QueueMetrics | None = None,
        on_terminal: TerminalHandler | None = None,
        observer: ReconcileObserver | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"controller {name} needs at least one worker (got {workers})")
        self.name = name
        self._reconcile = reconcile
        self._workers = workers
        self._clock: Clock = clock if clock is not None else RealClock()
        limiter: RateLimiter[Request] = (
            rate_limiter
            if rate_limiter is not None
            else default_controller_rate_limiter(self._clock)
        )
        self._queue: WorkQueue[Request] = WorkQueue(
            name, clock=self._clock, rate_limiter=limiter, metrics=queue_metrics
        )
        self._on_terminal = on_terminal
        self._observer: ReconcileObserver = (
            observer if observer is not None else NoReconcileObserver()
        )
        self._stop_requested = asyncio.Event()
        self._stopped = asyncio.Event()
        self._worker_tasks: list[asyncio.Task[None]] = []

    @property
    def queue(self) -> WorkQueue[Request]:
        return self._queue

    def enqueue(self, request: Request) -> None:
        self._queue.add(request)

    async def run(self) -> None:
        """Reconcile until ``stop`` or cancellation; return once in-flight reconciles finished.

        Queued requests that were not started are dropped on stop: the next start re-lists
        every object, so nothing is lost, and shutdown takes one reconcile, not a backlog.
        """
        if self._worker_tasks:
            raise RuntimeError(f"controller {self.name} can run only once")
        loop = asyncio.get_running_loop()
        self._worker_tasks = [
            loop.create_task(self._work(), name=f"controller-{self.name}-worker-{i}")
            for i in range(self._workers)
        ]
        try:
            await self._stop_requested.wait()
        finally:
            await self._drain()

    async def stop(self) -> None:
        """Ask ``run`` to stop, and wait until it has (unless called from one of its workers)."""
        self._stop_requested.set()
        self._queue.shutdown()
        if self._worker_tasks and asyncio.current_task() not in self._worker_tasks:
            await self._stopped.wait()

    async def _drain(self) -> None:
        self._stop_requested.set()
        self._queue.shutdown()
        try:
            # Workers catch every Exception themselves; what is left here is cancellation.
            await asyncio.gather(*self._worker_tasks, return_exceptions=True)
        finally:
            self._stopped.set()

    async def _work(self) -> None:
        while True:
            try:
                request = await self._queue.get()
            except ShutDown:
                return
            if self._stop_requested.is_set():
                self._queue.done(request)  # stopping: start nothing new
                return
            try:
                await self._process(request)
            except Exception:
                # Only a broken hook (observer, metrics) gets here; losing a worker to it would
                # silently shrink the controller, so log and carry on.
                logger.exception("controller %s: processing %s failed", self.name, request)

    async def _process(self, request: Request) -> None:
        """Reconcile ``request`` once, apply the outcome to the queue, and always ``done`` it."""
        try:
            started = self._clock.now()
            result: Result | None = None
            error: Exception | None = None
            with logs.fields(**self._log_fields(request)):
                try:
                    result = await self._reconcile(request)
                except Exception as err:  # CancelledError is not an Exception: it propagates
                    error = err
                elapsed = self._clock.now() - started
                outcome = await self._apply(request, result, error)
            self._observer.observe(self.name, elapsed, outcome)
        finally:
            self._queue.done(request)

    def _log_fields(self, request: Request) -> dict[str, str]:
        """What a JSON log line of this reconcile carries (``kosmos.kube.logs``)."""
        key = f"{request.namespace}/{request.name}" if request.namespace else request.name
        return {"controller": self.name, "cluster": request.cluster, "key": key}

    async def _apply(self, request: Request, result: Result | None, error: Exception | None) -> str:
        """The single mapping from a reconcile outcome to what the queue does next."""
        if isinstance(error, TerminalError):
            self._queue.forget(request)
            logger.warning(
                "controller %s: reconcile of %s failed for good (%s): %s",
                self.name,
                request,
                error.reason,
                error.message,
            )
            await self._notify_terminal(request, error)
            return "terminal"
        if error is not None:
            logger.error(
                "controller %s: reconcile of %s failed, will retry",
                self.name,
                request,
                exc_info=error,
            )
            self._queue.add_rate_limited(request)
            return "error"
        self._queue.forget(request)
        if result is None or result.requeue_after is None:
            return "success"
        self._queue.add_after(request, result.requeue_after)
        return "requeue"

    async def _notify_terminal(self, request: Request, err: TerminalError) -> None:
        if self._on_terminal is None:
            return
        try:
            await self._on_terminal(request, err)
        except Exception:
            # Reporting a failure must not become a failure of its own that kills the worker.
            logger.exception("controller %s: on_terminal for %s failed", self.name, request)
