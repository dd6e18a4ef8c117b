"""The MCS controllers as a part of ``kosmos cluster-manager``: flags and a builder.

Components never import each other, so the launcher composes the cluster-manager command
from ClusterTree's flags and these, and runs both builders on one Runtime (one manager,
one member set, one Lease). The MCS controllers use the members ClusterTree registers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from kosmos.kube import component
from kosmos.kube.builder import controller
from kosmos.kube.controller import Reconciler, Request, Result
from kosmos.mcs import metrics
from kosmos.mcs.auto import AutoExport
from kosmos.mcs.hub import DEFAULT_RESERVED, Hub, Options
from kosmos.mcs.sync import ServiceSync
from kosmos.mcs.watches import Members, wire

F = TypeVar("F", bound=Callable[..., Any])
#: the keyword arguments these options give the command
KEYS = ("multi_cluster_service", "auto_mcs_prefix", "reserved_namespaces", "mcs_workers")


def click_options(func: F) -> F:
    """Add the MCS flags (the seed's names) to a command."""
    decorators = [
        click.option(
            "--multi-cluster-service/--no-multi-cluster-service",
            default=True,
            show_default=True,
            help="Run the MCS controllers (ServiceExport -> ServiceImport, derived Services, "
            "EndpointSlices in every cluster). Off: pods on leaf nodes resolve names through "
            "the host's DNS instead.",
        ),
        click.option(
            "--auto-mcs-prefix",
            multiple=True,
            help="Export every host Service in namespaces with this prefix (repeatable, or "
            "comma-separated).",
        ),
        click.option(
            "--reserved-namespaces",
            default=",".join(sorted(DEFAULT_RESERVED)),
            show_default=True,
            help="Namespaces never auto-exported (comma-separated).",
        ),
        click.option("--mcs-workers", default=4, show_default=True, help="MCS sync workers."),
    ]
    for decorate in reversed(decorators):
        func = decorate(func)
    return func


def options_from(kwargs: dict[str, Any]) -> Options:
    """Pop the MCS flags out of a command's keyword arguments."""
    prefixes = tuple(
        p.strip() for raw in kwargs.pop("auto_mcs_prefix") for p in raw.split(",") if p.strip()
    )
    reserved = frozenset(
        n.strip() for n in str(kwargs.pop("reserved_namespaces")).split(",") if n.strip()
    )
    return Options(
        enabled=bool(kwargs.pop("multi_cluster_service")),
        auto_prefixes=prefixes,
        reserved_namespaces=reserved,
        workers=int(kwargs.pop("mcs_workers")),
    )


def build_hub(runtime: component.Runtime, options: Options) -> Hub:
    """The hub with its three controllers, wired to the host and every future member."""
    hub = Hub(runtime.manager, options, runtime.recorder)
    members = Members(hub)
    reconcilers: dict[str, tuple[Reconciler, int]] = {
        "members": (members, 1),
        "services": (ServiceSync(hub), options.workers),
        "auto": (AutoExport(hub), 1),
    }
    for name, (reconcile, workers) in reconcilers.items():
        hub.controllers[name] = controller(
            runtime.manager, f"mcs-{name}", _counting_errors(name, reconcile), workers=workers
        )
    wire(hub, members)
    return hub


def builder(options: Options) -> Callable[[component.Runtime], None]:
    """The component's ``build``: nothing at all when ``--no-multi-cluster-service``."""

    def build(runtime: component.Runtime) -> None:
        if options.enabled:
            build_hub(runtime, options)

    return build


def _counting_errors(name: str, reconcile: Reconciler) -> Reconciler:
    async def counted(request: Request) -> Result | None:
        try:
            return await reconcile(request)
        except Exception:
            metrics.reconcile_errors.labels(name).inc()
            raise

    return counted
