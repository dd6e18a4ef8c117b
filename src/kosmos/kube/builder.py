"""Declaring a controller: its name, reconciler, workers and the watches that wake it.

Every component builds controllers the same way (the idea of controller-runtime's builder):
queue and reconcile metrics on, terminal failures logged, each watch mapping an object to
the requests it should wake. The controller is added to the manager, so it runs while the
manager leads and stops with it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from kosmos.api.objects import Obj
from kosmos.kube.controller import Controller, Reconciler, Request, TerminalError, TerminalHandler
from kosmos.kube.informer import EnqueueHandler, Informer
from kosmos.kube.manager import Manager
from kosmos.kube.metrics import PrometheusQueueMetrics, PrometheusReconcileObserver

log = logging.getLogger("kosmos.kube.builder")

#: which requests an object's add, update or delete wakes
Mapper = Callable[[Obj], Iterable[Request]]


@dataclass(frozen=True)
class Watch:
    """Events of ``informer`` enqueue ``keys(obj)`` in the controller."""

    informer: Informer
    keys: Mapper


def by_name(cluster: str) -> Mapper:
    """The usual mapping: an object wakes the request of its own namespace and name."""

    def keys(obj: Obj) -> Iterable[Request]:
        meta = obj["metadata"]
        return (Request(cluster, meta.get("namespace") or "", meta["name"]),)

    return keys


def log_terminal(name: str) -> TerminalHandler:
    """The default report of a failure that retrying cannot fix: one warning, no retry."""

    async def report(request: Request, error: TerminalError) -> None:
        log.warning("%s %s: %s (not retried)", name, request, error.message)

    return report


def controller(
    manager: Manager,
    name: str,
    reconcile: Reconciler,
    *,
    workers: int = 1,
    watches: Iterable[Watch] = (),
    on_terminal: TerminalHandler | None = None,
) -> Controller:
    """A controller with metrics and terminal logging, woken by ``watches``, run by ``manager``."""
    built = standalone(name, reconcile, workers=workers, on_terminal=on_terminal)
    for watch in watches:
        watch.informer.add_handler(EnqueueHandler(_enqueuer(built, watch.keys)))
    manager.add_controller(built)
    return built


def standalone(
    name: str,
    reconcile: Reconciler,
    *,
    workers: int = 1,
    on_terminal: TerminalHandler | None = None,
) -> Controller:
    """A controller with the same defaults that no manager runs: for one the component runs
    itself, e.g. afresh for each term of a Lease the manager does not hold."""
    return Controller(
        name,
        reconcile,
        workers=workers,
        queue_metrics=PrometheusQueueMetrics(),
        observer=PrometheusReconcileObserver(),
        on_terminal=on_terminal or log_terminal(name),
    )


def _enqueuer(target: Controller, keys: Mapper) -> Callable[[Obj], None]:
    def enqueue(obj: Obj) -> None:
        for request in keys(obj):
            target.enqueue(request)

    return enqueue
