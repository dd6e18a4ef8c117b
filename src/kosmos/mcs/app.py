"""The MCS controllers as a part of ``kosmos cluster-manager``: flags and a builder.

Components never import each other, so the launcher composes the cluster-manager command
from ClusterTree's flags and these, and runs both builders on one Runtime (one manager,
one member set, one Lease). The MCS controllers use the members ClusterTree registers.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import click

from kosmos.api import names
from kosmos.api.objects import annotations_of
from kosmos.api.resources import ENDPOINTSLICES, SERVICE_EXPORTS, SERVICE_IMPORTS, SERVICES
from kosmos.kube import component
from kosmos.kube.builder import controller
from kosmos.kube.client import Client
from kosmos.kube.controller import Reconciler, Request, Result
from kosmos.kube.errors import Conflict, NotFound
from kosmos.mcs import forge, metrics
from kosmos.mcs.auto import AutoExport
from kosmos.mcs.hub import DEFAULT_RESERVED, Hub, Options
from kosmos.mcs.sync import ServiceSync
from kosmos.mcs.watches import Members, wire

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("kosmos.mcs")
MANAGED_SELECTOR = f"{names.LABEL_MANAGED_BY}={names.MANAGED_BY_KOSMOS}"
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


async def forget_member(member: Client) -> None:
    """Remove what the MCS controller made in a cluster that leaves the clusterset (a member
    at unjoin, the host at uninstall): its ServiceImports, derived Services and EndpointSlices
    (a user's imports stay), and release its finalizer on the cluster's ServiceExports, which
    no controller would release any more (deleting them would hang)."""
    targets = (
        (SERVICE_IMPORTS, MANAGED_SELECTOR, None),
        (SERVICES, MANAGED_SELECTOR, forge.ANNOTATION_SERVICE_IMPORT),
        (ENDPOINTSLICES, f"{names.LABEL_SLICE_MANAGED_BY}={names.MCS_CONTROLLER}", None),
    )
    for resource, selector, annotation in targets:
        try:
            items = (await member.list(resource, label_selector=selector)).items
        except NotFound:
            continue  # no MCS CRDs there: nothing was made
        for obj in items:
            if annotation and annotation not in annotations_of(obj):
                continue
            meta = obj["metadata"]
            with contextlib.suppress(NotFound):
                await member.delete(resource, meta["name"], meta.get("namespace"), uid=meta["uid"])
    await _release_exports(member)
    log.info("member %s: MCS imports, derived Services and slices removed", member.cluster)


async def _release_exports(client: Client) -> None:
    try:
        exports = (await client.list(SERVICE_EXPORTS)).items
    except NotFound:
        return
    for export in exports:
        meta = export["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        if names.FINALIZER_MCS not in finalizers:
            continue
        kept = [f for f in finalizers if f != names.FINALIZER_MCS]
        body = {
            "metadata": {"finalizers": kept or None, "resourceVersion": meta["resourceVersion"]}
        }
        with contextlib.suppress(NotFound, Conflict):
            await client.patch(SERVICE_EXPORTS, meta["name"], body, namespace=meta.get("namespace"))


def _counting_errors(name: str, reconcile: Reconciler) -> Reconciler:
    async def counted(request: Request) -> Result | None:
        try:
            return await reconcile(request)
        except Exception:
            metrics.reconcile_errors.labels(name).inc()
            raise

    return counted
